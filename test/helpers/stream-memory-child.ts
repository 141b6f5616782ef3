/**
 * Child process for test/stream-memory.test.ts: pipes a generated plaintext of N MiB through
 * encryptStream -> decryptStream with stream.pipeline, hashing what goes in and what comes out, and prints one
 * JSON line with both hashes, the RSS before the pipeline starts, the highest RSS sampled while it runs (every
 * 1 MiB of input), the process's peak RSS (`process.resourceUsage().maxRSS`, startup included) and the elapsed time.
 *
 *   node --import tsx test/helpers/stream-memory-child.ts <MiB> <suite, e.g. 0x0578> [frameLength]
 */
import { createHash } from 'node:crypto'
import { Readable, Writable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { decryptStream, encryptStream, RawAesKeyring } from '../../src/index.js'

const mebibytes = Number(process.argv[2] ?? '256')
const suite = Number(process.argv[3] ?? '0x0578')
const frameLength = Number(process.argv[4] ?? '4096')
const CHUNK = 64 * 1024
const chunks = (mebibytes * 1024 * 1024) / CHUNK

const keyring = new RawAesKeyring({ keyNamespace: 'memory', keyName: 'key', wrappingKey: new Uint8Array(32).fill(3) })
const commitmentPolicy = suite === 0x0478 || suite === 0x0578 ? 'REQUIRE_ENCRYPT_REQUIRE_DECRYPT' : 'FORBID_ENCRYPT_ALLOW_DECRYPT'

const inputHash = createHash('sha256')
const outputHash = createHash('sha256')
let state = 0x9e3779b9
let inputBytes = 0
let outputBytes = 0
let peakSampledRss = 0

/** Fresh 64 KiB chunks of xorshift32 output (a fresh buffer each: pipeline stages may still hold earlier ones). */
async function* plaintext(): AsyncGenerator<Uint8Array> {
  for (let index = 0; index < chunks; index++) {
    const chunk = new Uint8Array(CHUNK)
    const words = new Uint32Array(chunk.buffer)
    let x = state
    for (let i = 0; i < words.length; i++) {
      x ^= x << 13
      x ^= x >>> 17
      x ^= x << 5
      words[i] = x >>> 0
    }
    state = x
    if (index % 16 === 0) peakSampledRss = Math.max(peakSampledRss, process.memoryUsage.rss())
    inputHash.update(chunk)
    inputBytes += chunk.length
    yield chunk
  }
}

const sink = new Writable({
  write(chunk: Buffer, _encoding, callback) {
    outputHash.update(chunk)
    outputBytes += chunk.length
    callback()
  },
})

const rssBefore = process.memoryUsage.rss()
const started = performance.now()
await pipeline(
  Readable.from(plaintext()),
  encryptStream(keyring, { algorithmSuite: suite, frameLength, commitmentPolicy }).toNode(),
  decryptStream(keyring, { commitmentPolicy }).toNode(),
  sink,
)
const seconds = (performance.now() - started) / 1000
console.log(
  JSON.stringify({
    suite,
    mebibytes,
    inputBytes,
    outputBytes,
    inputSha256: inputHash.digest('hex'),
    outputSha256: outputHash.digest('hex'),
    rssBeforeBytes: rssBefore,
    peakSampledRssBytes: Math.max(peakSampledRss, process.memoryUsage.rss()),
    maxRssBytes: process.resourceUsage().maxRSS * 1024,
    seconds,
  }),
)
