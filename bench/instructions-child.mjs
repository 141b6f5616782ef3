// One process measured by bench/instructions.mjs under callgrind: WARM untimed operations, then COUNT more.
//   node bench/instructions-child.mjs <ours|floor> <suiteId> <encrypt|decrypt> <warm> <count>
// 1 KiB messages, raw AES keyring (ours) or the message floor (lib/message-floor.mjs); decrypts cycle
// through distinct messages, as in bench/run.mjs.
import { randomFillSync } from 'node:crypto'
import { cyclingDecryptor, distinctMessages, loadOurs } from './lib/contenders.mjs'
import { messageFloor } from './lib/message-floor.mjs'

const [name, suiteArg, op, warmArg, countArg] = process.argv.slice(2)
const suite = Number(suiteArg)
const plaintext = randomFillSync(Buffer.alloc(1024))
let contender
if (name === 'ours') contender = await loadOurs()
else {
  const floor = messageFloor(suite)
  contender = { encryptor: () => floor.encrypt, decryptor: () => floor.decrypt }
}
let run
if (op === 'encrypt') {
  const encrypt = contender.encryptor(suite, 4096)
  run = () => encrypt(plaintext)
} else {
  run = cyclingDecryptor(contender.decryptor(suite), await distinctMessages(contender.encryptor(suite, 4096), plaintext))
}
for (let i = 0; i < Number(warmArg); i++) await run()
for (let i = 0; i < Number(countArg); i++) await run()
