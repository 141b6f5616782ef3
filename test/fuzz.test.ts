/**
 * Short, fixed-seed run of the decrypt mutation fuzzer (scripts/fuzz-lib.ts) for CI.
 * Longer runs: `npm run fuzz -- --iterations 20000`.
 */
import { describe, expect, it } from 'vitest'

import { MUTATION_KINDS, Rng, formatFailures, parseLayout, runFuzz, summaryLine } from '../scripts/fuzz-lib.js'

const SEED = 0x5eed_c0de

describe('decrypt mutation fuzzing', () => {
  it('the PRNG is deterministic per (seed, stream)', () => {
    const draw = (seed: number, stream: number) => {
      const rng = new Rng(seed, stream)
      return Array.from({ length: 8 }, () => rng.next())
    }
    expect(draw(1, 2)).toEqual(draw(1, 2))
    expect(draw(1, 2)).not.toEqual(draw(1, 3))
    expect(draw(1, 2)).not.toEqual(draw(2, 2))
  })

  it('the structural parser rejects garbage', () => {
    expect(() => parseLayout(new Uint8Array([1, 0x80, 0, 0x14]))).toThrow()
    expect(() => parseLayout(new Uint8Array(0))).toThrow()
  })

  it(
    'rejects 3,000 mutated messages with EnvelopeErrors, each quickly, without memory growth',
    async () => {
      const report = await runFuzz({ iterations: 3000, seed: SEED, timeBudgetMs: 15_000 })
      console.log(summaryLine(report))
      if (report.failures > 0) console.error(formatFailures(report, 20))

      expect(report.failureList.map((f) => `${f.kind} iteration=${f.iteration} ${f.mutation}: ${f.detail}`)).toEqual([])
      expect(report.failures).toBe(0)
      // The structural parser must understand every corpus message, or structured mutations lose coverage.
      expect(report.corpusWarnings).toEqual([])
      expect(report.corpusSize).toBeGreaterThanOrEqual(11 * 6)
      expect(report.iterations).toBeGreaterThanOrEqual(report.stoppedEarly ? 500 : 3000)
      for (const kind of MUTATION_KINDS) expect(report.byMutation[kind]?.runs ?? 0, kind).toBeGreaterThan(0)
      expect(report.maxDecryptMs).toBeLessThan(1000)
    },
    60_000,
  )
})
