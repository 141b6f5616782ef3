// Peak memory of a one-shot encrypt + decrypt, one contender per fresh process.
//   node --expose-gc bench/memory-child.mjs <ours|official|floor> [bytes] [suiteId] [frameLength]
// Prints one JSON line on stdout.
//
// The encrypt and decrypt calls are (mostly) synchronous CPU work, so a setInterval sampler
// may be starved; process.resourceUsage().maxRSS (the kernel's high-water mark) is the reliable
// peak. The baseline is taken after loading modules, a small warm-up round trip, allocating
// and filling the input, and a full GC.

import { randomFillSync } from 'node:crypto'
import { loadContender } from './lib/contenders.mjs'

const [name = 'ours', bytesArg, suiteArg, frameArg] = process.argv.slice(2)
const bytes = Number(bytesArg ?? 64 * 1024 * 1024)
const suiteId = Number(suiteArg ?? 0x0478)
const frameLength = Number(frameArg ?? 4096)

const gc = typeof globalThis.gc === 'function' ? globalThis.gc : () => {}
const maxRss = () => process.resourceUsage().maxRSS * 1024 // KiB -> bytes

async function main() {
  const contender = await loadContender(name)
  const encrypt = contender.encryptor(suiteId, frameLength)
  const decrypt = contender.decryptor(suiteId)

  // warm-up: compile the code paths with a small message so JIT/code memory is in the baseline
  {
    const small = randomFillSync(Buffer.allocUnsafe(64 * 1024))
    const back = await decrypt(await encrypt(small))
    if (Buffer.compare(Buffer.from(back.buffer, back.byteOffset, back.byteLength), small) !== 0) {
      throw new Error('warm-up round trip mismatch')
    }
  }

  const input = randomFillSync(Buffer.allocUnsafe(bytes))
  gc()
  gc()
  await new Promise((r) => setTimeout(r, 20))
  const baselineRss = process.memoryUsage().rss
  const baselineMaxRss = maxRss()

  let sampledPeak = baselineRss
  const sampler = setInterval(() => {
    const rss = process.memoryUsage().rss
    if (rss > sampledPeak) sampledPeak = rss
  }, 2)

  const t0 = performance.now()
  const ciphertext = await encrypt(input)
  const t1 = performance.now()
  const afterEncryptMaxRss = maxRss()
  const afterEncryptSampled = sampledPeak
  const plaintext = await decrypt(ciphertext)
  const t2 = performance.now()
  const afterDecryptMaxRss = maxRss()
  clearInterval(sampler)
  const rssNow = process.memoryUsage().rss
  if (rssNow > sampledPeak) sampledPeak = rssNow

  const ok =
    plaintext.byteLength === input.byteLength &&
    Buffer.compare(Buffer.from(plaintext.buffer, plaintext.byteOffset, plaintext.byteLength), input) === 0

  const peak = Math.max(afterDecryptMaxRss, sampledPeak)
  const result = {
    contender: name,
    bytes,
    suiteId,
    frameLength,
    ok,
    ciphertextBytes: ciphertext.byteLength,
    baselineRss,
    baselineMaxRss,
    peakRss: peak,
    // the number that matters: how far above the (input-holding) baseline the process went
    peakDelta: peak - baselineRss,
    encryptPeakDelta: Math.max(afterEncryptMaxRss, afterEncryptSampled) - baselineRss,
    sampledPeakDelta: sampledPeak - baselineRss,
    maxRssPeakDelta: afterDecryptMaxRss - baselineRss,
    encryptMs: t1 - t0,
    decryptMs: t2 - t1,
  }
  process.stdout.write(JSON.stringify(result) + '\n')
}

main().catch((err) => {
  process.stdout.write(JSON.stringify({ contender: name, error: String(err && err.stack ? err.stack : err) }) + '\n')
  process.exitCode = 1
})
