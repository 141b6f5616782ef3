import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { nodeBackend } from '../src/backend/node.js'
import type { CryptoBackend } from '../src/backend/types.js'
import { encryptWith } from '../src/encrypt.js'
import { isAllZero } from '../src/format/bytes.js'
import { MAX_SIGNATURE_LENGTH } from '../src/format/footer.js'
import { decrypt, encrypt, EnvelopeError } from '../src/index.js'
import { encryptStreamWith } from '../src/stream-encrypt.js'
import { aesKeyring, policyFor, seededRandom, SIGNING, suites } from './helpers/fixtures.js'
import { chunked, readAll } from './helpers/web-streams.js'
import { signatureLength } from './helpers/wire.js'

const keyring = aesKeyring()

const contextArbitrary = fc.dictionary(
  fc.string({ minLength: 1, maxLength: 12, unit: 'binary' }).filter((key) => !key.startsWith('aws-crypto-')),
  fc.string({ maxLength: 20, unit: 'binary' }),
  { maxKeys: 5 },
)

const messageArbitrary = fc.record({
  plaintext: fc.uint8Array({ maxLength: 700 }),
  suite: fc.constantFrom(...suites),
  frameLength: fc.oneof(fc.integer({ min: 1, max: 64 }), fc.constantFrom(128, 256, 4096)),
  context: contextArbitrary,
})

type Sample = typeof messageArbitrary extends fc.Arbitrary<infer T> ? T : never

async function encryptSample(sample: Sample) {
  const { ciphertext } = await encrypt(keyring, sample.plaintext, {
    algorithmSuite: sample.suite,
    frameLength: sample.frameLength,
    encryptionContext: sample.context,
    commitmentPolicy: policyFor(sample.suite),
  })
  return ciphertext
}

/** `encryptSample` on node:crypto with randomness from `seed`, and every buffer it allocates filled with `fill` first. */
async function encryptSampleSeeded(sample: Sample, seed: number, fill: number, stream: boolean): Promise<Uint8Array> {
  const backend: CryptoBackend = {
    ...nodeBackend,
    randomBytes: seededRandom(seed),
    allocate: (length) => nodeBackend.allocate(length).fill(fill),
  }
  const options = { algorithmSuite: sample.suite, frameLength: sample.frameLength, encryptionContext: sample.context, commitmentPolicy: policyFor(sample.suite) }
  if (!stream) return (await encryptWith(backend, keyring, sample.plaintext, options)).ciphertext
  return readAll(chunked(sample.plaintext, 100).pipeThrough(encryptStreamWith(backend, keyring, options)))
}

/** Decrypt must reject with an EnvelopeError and hand back nothing. */
async function expectRejected(ciphertext: Uint8Array, suite: number): Promise<void> {
  let result: unknown
  let failure: unknown
  try {
    result = await decrypt(keyring, ciphertext, { commitmentPolicy: policyFor(suite) })
  } catch (error) {
    failure = error
  }
  expect(result).toBeUndefined()
  expect(failure).toBeInstanceOf(EnvelopeError)
}

describe('properties', () => {
  it('encrypt writes every byte of the message: allocations holding other bytes give the same message, one-shot and streamed', async () => {
    // Unsigned suites: a signing suite's key pair and signature come from node:crypto's own randomness.
    const unsigned = suites.filter((suite) => !SIGNING.has(suite))
    await fc.assert(
      fc.asyncProperty(messageArbitrary, fc.constantFrom(...unsigned), fc.integer(), fc.boolean(), async (sample, suite, seed, stream) => {
        const written = { ...sample, suite }
        const onZeros = await encryptSampleSeeded(written, seed, 0, stream)
        const onOthers = await encryptSampleSeeded(written, seed, 0xa5, stream)
        expect(Buffer.from(onOthers).equals(Buffer.from(onZeros))).toBe(true)
        expect(Buffer.from((await decrypt(keyring, onOthers, { commitmentPolicy: policyFor(suite) })).plaintext).equals(Buffer.from(sample.plaintext))).toBe(true)
      }),
      { numRuns: 60 },
    )
  })

  it('round trip over plaintext, context, suite and frame length', async () => {
    await fc.assert(
      fc.asyncProperty(messageArbitrary, async (sample) => {
        const ciphertext = await encryptSample(sample)
        // The ciphertext's buffer shows nothing but the message and zeros: a signature shorter than the room
        // kept for the longest leaves bytes that must not be uninitialized memory.
        const whole = new Uint8Array(ciphertext.buffer)
        expect(isAllZero(whole.subarray(0, ciphertext.byteOffset)) && isAllZero(whole.subarray(ciphertext.byteOffset + ciphertext.length))).toBe(true)
        // And no more room than that: an unsigned message fills its buffer exactly.
        const signed = SIGNING.has(sample.suite)
        expect(whole.length - ciphertext.length).toBe(signed ? MAX_SIGNATURE_LENGTH - signatureLength(ciphertext) : 0)
        const { plaintext, header } = await decrypt(keyring, ciphertext, {
          commitmentPolicy: policyFor(sample.suite),
          encryptionContext: sample.context,
        })
        expect(Buffer.from(plaintext).equals(Buffer.from(sample.plaintext))).toBe(true)
        // The plaintext owns its whole buffer (one frame or many): plaintext.buffer shows nothing else.
        expect([plaintext.byteOffset, plaintext.buffer.byteLength]).toEqual([0, sample.plaintext.length])
        expect(header.algorithmSuiteId).toBe(sample.suite)
        expect(header.frameLength).toBe(sample.frameLength)
        const { ['aws-crypto-public-key']: publicKey, ...rest } = header.encryptionContext
        expect(rest).toEqual({ ...sample.context })
        expect(publicKey !== undefined).toBe(signed)
      }),
      { numRuns: 150 },
    )
  })

  it('any single-bit flip is rejected', async () => {
    await fc.assert(
      fc.asyncProperty(messageArbitrary, fc.nat(), fc.integer({ min: 0, max: 7 }), async (sample, position, bit) => {
        const ciphertext = await encryptSample(sample)
        const mutated = ciphertext.slice()
        const index = position % mutated.length
        mutated[index] = (mutated[index] as number) ^ (1 << bit)
        await expectRejected(mutated, sample.suite)
      }),
      { numRuns: 300 },
    )
  })

  it('any truncation is rejected', async () => {
    await fc.assert(
      fc.asyncProperty(messageArbitrary, fc.nat(), async (sample, cut) => {
        const ciphertext = await encryptSample(sample)
        await expectRejected(ciphertext.subarray(0, cut % ciphertext.length), sample.suite)
      }),
      { numRuns: 200 },
    )
  })

  it('any appended bytes are rejected, for every suite', async () => {
    await fc.assert(
      fc.asyncProperty(messageArbitrary, fc.uint8Array({ minLength: 1, maxLength: 40 }), async (sample, extra) => {
        const ciphertext = await encryptSample(sample)
        await expectRejected(Buffer.concat([ciphertext, extra]), sample.suite)
      }),
      { numRuns: 150 },
    )
  })

  it('swapping two frames is rejected', async () => {
    const frameLength = 16
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...suites),
        fc.integer({ min: 3, max: 12 }),
        fc.nat(),
        fc.nat(),
        async (suite, frames, first, second) => {
          const plaintext = new Uint8Array(frames * frameLength + 5).map((_, index) => index)
          const { ciphertext } = await encrypt(keyring, plaintext, { algorithmSuite: suite, frameLength, commitmentPolicy: policyFor(suite) })
          const frameSize = 4 + 12 + frameLength + 16
          const finalFrameSize = 4 + 4 + 12 + 4 + 5 + 16
          const bodyStart = findBodyEnd(ciphertext, suite) - finalFrameSize - frames * frameSize
          expect(bodyStart).toBeGreaterThan(0)
          const a = first % frames
          let b = second % frames
          if (a === b) b = (b + 1) % frames
          const mutated = ciphertext.slice()
          const frameA = ciphertext.subarray(bodyStart + a * frameSize, bodyStart + (a + 1) * frameSize)
          const frameB = ciphertext.subarray(bodyStart + b * frameSize, bodyStart + (b + 1) * frameSize)
          mutated.set(frameB, bodyStart + a * frameSize)
          mutated.set(frameA, bodyStart + b * frameSize)
          await expectRejected(mutated, suite)
        },
      ),
      { numRuns: 60 },
    )
  })
})

/** End of the body: the message end, or before the footer for signing suites. */
function findBodyEnd(ciphertext: Uint8Array, suite: number): number {
  if (!SIGNING.has(suite)) return ciphertext.length
  return ciphertext.length - 2 - signatureLength(ciphertext)
}
