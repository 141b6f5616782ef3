// The node:crypto backend's own primitives against node:crypto's reference implementations.
import { hkdfSync } from 'node:crypto'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { nodeBackend } from '../src/backend/node.js'

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
      expect(whole.subarray(0, key!.byteOffset).every((byte) => byte === 0)).toBe(true)
      expect(whole.subarray(key!.byteOffset + 16).every((byte) => byte === 0)).toBe(true)
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
