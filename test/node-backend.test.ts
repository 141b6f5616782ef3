// The node:crypto backend's own primitives against node:crypto's reference implementations.
import { generateKeyPairSync, hkdfSync } from 'node:crypto'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { nodeBackend } from '../src/backend/node.js'
import { ConfigurationError, KeyringError } from '../src/errors.js'
import { isAllZero } from '../src/format/bytes.js'

describe('node backend HKDF', () => {
  it('equals hkdfSync for every hash, salt (empty too), info and output length up to several blocks', () => {
    fc.assert(
      fc.property(
        fc.constantFrom('sha256', 'sha384', 'sha512' as const),
        fc.uint8Array({ minLength: 1, maxLength: 64 }),
        fc.uint8Array({ maxLength: 64 }),
        fc.array(fc.record({ info: fc.uint8Array({ maxLength: 40 }), length: fc.integer({ min: 1, max: 200 }) }), { minLength: 1, maxLength: 3 }),
        (hash, ikm, salt, outputs) => {
          const ours = nodeBackend.hkdf(hash, ikm, salt, outputs) as Uint8Array[]
          expect(ours.map((key) => Buffer.from(key).toString('hex'))).toEqual(
            outputs.map(({ info, length }) => Buffer.from(hkdfSync(hash, ikm, salt, info, length)).toString('hex')),
          )
        },
      ),
      { numRuns: 300 },
    )
  })

  it('leaves no derived bytes beyond a short output in the buffer under it', () => {
    for (const hash of ['sha256', 'sha384', 'sha512'] as const) {
      const [key] = nodeBackend.hkdf(hash, new Uint8Array(32).fill(1), new Uint8Array(0), [{ info: Uint8Array.of(9), length: 16 }]) as Uint8Array[]
      const whole = new Uint8Array(key!.buffer)
      expect(key!.length).toBe(16)
      expect(isAllZero(whole.subarray(0, key!.byteOffset))).toBe(true)
      expect(isAllZero(whole.subarray(key!.byteOffset + 16))).toBe(true)
    }
  })

  it('leaves its inputs unchanged', () => {
    const ikm = Uint8Array.from({ length: 32 }, (_, i) => i)
    const salt = Uint8Array.from({ length: 32 }, (_, i) => 100 + i)
    const info = Uint8Array.of(1, 2, 3)
    nodeBackend.hkdf('sha384', ikm, salt, [{ info, length: 100 }])
    expect([...ikm]).toEqual(Array.from({ length: 32 }, (_, i) => i))
    expect([...salt]).toEqual(Array.from({ length: 32 }, (_, i) => 100 + i))
    expect([...info]).toEqual([1, 2, 3])
  })
})

// Keyrings are handed the backend and may ask it for any number of random bytes, not only the library's keys and IVs.
describe('node backend random bytes', () => {
  it('gives exactly the length asked for, small (from a shared block) or large, each on a buffer of its own', () => {
    for (const length of [0, 1, 12, 32, 1023, 1024, 1025, 4095, 4096, 4097, 100_000]) {
      const bytes = nodeBackend.randomBytes(length)
      expect(bytes.length, `${length} bytes`).toBe(length)
      // Nothing else (another caller's key) is reachable through the result's buffer.
      expect(bytes.buffer.byteLength, `the buffer under ${length} bytes`).toBe(length)
    }
  })

  it('never gives the same bytes twice, across many blocks', () => {
    const seen = new Set<string>()
    for (let draw = 0; draw < 2000; draw++) {
      const hex = Buffer.from(nodeBackend.randomBytes(draw % 3 === 0 ? 12 : 32)).toString('hex')
      expect(seen.has(hex), `draw ${draw} repeats an earlier one`).toBe(false)
      seen.add(hex)
    }
    // A large draw is no copy of the block small ones come from.
    const large = Buffer.from(nodeBackend.randomBytes(5000)).toString('hex')
    for (const hex of seen) expect(large.includes(hex)).toBe(false)
  })
})

describe('node backend AES-GCM keys', () => {
  it('are 16, 24 or 32 bytes: another length is refused when the key is made, not at its first use', () => {
    for (const length of [0, 15, 20, 31, 33, 64]) {
      expect(() => nodeBackend.aeadKey(new Uint8Array(length)), `${length} bytes`).toThrow(ConfigurationError)
      expect(() => nodeBackend.aeadKey(new Uint8Array(length))).toThrow(`AES-GCM keys are 16, 24 or 32 bytes; got ${length}.`)
    }
    for (const length of [16, 24, 32]) expect(nodeBackend.aeadKey(new Uint8Array(length))).toBeDefined()
  })
})

describe('node backend whole-message signatures', () => {
  // The materials check refuses such keys before signing; the backend refuses them too, with node:crypto's error as
  // the cause, whether node:crypto throws at once or answers with the error (its thread pool's signing).
  it('refuse a key node:crypto cannot sign with, typed, never as an empty signature', async () => {
    const message = new Uint8Array(100).fill(1)
    for (const [kind, key] of [
      ['an X25519 key (refused by the signing job)', generateKeyPairSync('x25519').privateKey],
      ['not a key (refused at once)', 'not a key'],
    ] as const) {
      const error = await nodeBackend.signMessage('P-384', key, message).then(
        (signature) => signature,
        (error: unknown) => error,
      )
      expect(error, kind).toBeInstanceOf(KeyringError)
      expect((error as Error).message).toBe("The materials manager's signing key cannot sign this message: node:crypto needs an EC private KeyObject on the suite's curve.")
      expect((error as Error).cause, kind).toBeInstanceOf(Error)
    }
  })
})
