import { describe, expect, it } from 'vitest'
import { recentKeys } from '../src/backend/recent-keys.js'
import type { CurveName } from '../src/suites.js'

/** A loader that counts its calls and makes a fresh object per import (or fails for points starting 0xff). */
function counting(): { load: (curve: CurveName, point: Uint8Array) => Promise<object>; calls: () => number } {
  let calls = 0
  return {
    calls: () => calls,
    load: async (_curve, point) => {
      calls++
      if (point[0] === 0xff) throw new TypeError('not a point')
      return { point: Array.from(point) }
    },
  }
}

describe('recentKeys', () => {
  it('hands every caller for a point the same key object, asked at once or later; other points and curves get their own', async () => {
    const { load, calls } = counting()
    const recent = recentKeys(load)
    const point = Uint8Array.of(2, 1, 2, 3)
    const [first, second] = await Promise.all([recent('P-384', point), recent('P-384', Uint8Array.from(point))])
    expect(second).toBe(first)
    expect(await recent('P-384', point)).toBe(first)
    expect(calls()).toBe(1)
    expect(await recent('P-256', point)).not.toBe(first)
    expect(await recent('P-384', Uint8Array.of(3, 1, 2, 3))).not.toBe(first)
    expect(calls()).toBe(3)
  })

  it('forgets a point that fails to import, and never keeps what is longer than a compressed point', async () => {
    const { load, calls } = counting()
    const recent = recentKeys(load)
    const bad = Uint8Array.of(0xff, 1)
    await expect(recent('P-384', bad)).rejects.toThrow(TypeError)
    await expect(recent('P-384', bad)).rejects.toThrow(TypeError)
    expect(calls()).toBe(2)
    const long = new Uint8Array(50).fill(2)
    expect(await recent('P-384', long)).not.toBe(await recent('P-384', long))
    expect(calls()).toBe(4)
  })

  it('keeps the most recently used points up to its capacity', async () => {
    const { load, calls } = counting()
    const recent = recentKeys(load, 2)
    const a = await recent('P-256', Uint8Array.of(2, 0xa))
    await recent('P-256', Uint8Array.of(2, 0xb))
    expect(await recent('P-256', Uint8Array.of(2, 0xa))).toBe(a) // a is now the most recent
    await recent('P-256', Uint8Array.of(2, 0xc)) // evicts b
    expect(calls()).toBe(3)
    expect(await recent('P-256', Uint8Array.of(2, 0xa))).toBe(a)
    await recent('P-256', Uint8Array.of(2, 0xb))
    expect(calls()).toBe(4)
  })
})
