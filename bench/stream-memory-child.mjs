// Peak memory of a streaming encrypt -> decrypt round trip, one contender per fresh process.
//   node bench/stream-memory-child.mjs <ours|official|floor> [MiB=1024] [suiteId=0x0478] [frameLength=4096]
// A generated stream (64 KiB views of a pre-filled random 1 MiB buffer) goes through
// encrypt -> decrypt in one stream/promises pipeline into a sink that counts and hashes the bytes;
// the SHA-256 of the output must equal the SHA-256 of the input. Prints one JSON line on stdout.
// Peak memory is process.resourceUsage().maxRSS (the kernel's high-water mark, KiB -> bytes), which
// a starved sampler cannot miss; it covers the whole process life, imports included.
// Caveat (Linux): a process started by libuv's spawn (child_process.*) inherits its parent's peak RSS
// in maxRSS, because exec keeps the high-water mark of the address space it replaces. So the JSON also
// carries vmHWM (VmHWM from /proc/self/status: the peak of this process's own address space, which
// exec resets); peakRss is vmHWM where available, else maxRSS. bench/stream.mjs starts this script
// through /bin/sh (fork, then exec) so that maxRSS is clean as well.

import { createHash, randomFillSync } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { Writable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { loadStreamContender } from './lib/stream-floor.mjs'

const MiB = 1 << 20
const CHUNK = 64 * 1024
const [name = 'ours', mibArg, suiteArg, frameArg] = process.argv.slice(2)
const bytes = Math.round(Number(mibArg ?? 1024) * MiB)
const suiteId = Number(suiteArg ?? 0x0478)
const frameLength = Number(frameArg ?? 4096)
const maxRss = () => process.resourceUsage().maxRSS * 1024
/** VmHWM in bytes, or undefined off Linux. */
function vmHwm() {
  try {
    const m = /^VmHWM:\s+(\d+)\s+kB/m.exec(readFileSync('/proc/self/status', 'utf8'))
    return m ? Number(m[1]) * 1024 : undefined
  } catch {
    return undefined
  }
}

async function main() {
  const contender = await loadStreamContender(name)
  const pool = randomFillSync(Buffer.allocUnsafe(MiB))
  const inputHash = createHash('sha256')
  async function* source() {
    for (let offset = 0; offset < bytes; offset += CHUNK) {
      const at = offset % MiB
      const chunk = pool.subarray(at, at + Math.min(CHUNK, bytes - offset, MiB - at))
      inputHash.update(chunk)
      yield chunk
    }
  }
  const outputHash = createHash('sha256')
  let outputBytes = 0
  const sink = new Writable({
    write(chunk, _encoding, callback) {
      outputBytes += chunk.length
      outputHash.update(chunk)
      callback()
    },
  })
  const baselineRss = process.memoryUsage().rss
  const baselineMaxRss = maxRss()
  const t0 = performance.now()
  await pipeline(source, contender.encrypt(suiteId, frameLength), contender.decrypt(suiteId), sink)
  const seconds = (performance.now() - t0) / 1000
  const maxRSS = maxRss()
  const vmHWM = vmHwm()
  const ok = outputBytes === bytes && inputHash.digest('hex') === outputHash.digest('hex')
  process.stdout.write(
    JSON.stringify({
      contender: name,
      suiteId,
      frameLength,
      bytes,
      outputBytes,
      ok,
      seconds,
      mibPerSecond: bytes / MiB / seconds,
      baselineRss,
      baselineMaxRss,
      maxRSS,
      vmHWM,
      peakRss: vmHWM ?? maxRSS,
      rssAtEnd: process.memoryUsage().rss,
    }) + '\n',
  )
  if (!ok) process.exitCode = 1
}

main().catch((error) => {
  process.stdout.write(JSON.stringify({ contender: name, error: String(error?.stack ?? error) }) + '\n')
  process.exitCode = 1
})
