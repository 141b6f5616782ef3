/**
 * Short, fixed-seed run of the decrypt mutation fuzzer (scripts/fuzz-lib.ts) for CI.
 * Longer runs: `npm run fuzz -- --iterations 20000`.
 */
import { describe, expect, it } from 'vitest'

import { MUTATION_KINDS, Rng, buildCorpus, formatFailures, parseLayout, runFuzz, streamReference, summaryLine } from '../scripts/fuzz-lib.js'
import { pieceSizes, piecesOf, streamFinding, type StreamOutcome } from '../scripts/fuzz-stream.js'

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

  it('the stream path flags output that is not the start of the plaintext, no error, a foreign error, a hang and slowness', () => {
    const original = Uint8Array.of(1, 2, 3, 4)
    const outcome = (kind: StreamOutcome['kind'], emitted: number[], durationMs = 1): StreamOutcome => ({
      kind,
      emitted: Uint8Array.from(emitted),
      durationMs,
      ...(kind === 'rejected' ? { code: 'FRAME_AUTHENTICATION_FAILED' } : {}),
      ...(kind === 'foreign' ? { error: new RangeError('boom') } : {}),
    })
    expect(streamFinding(outcome('rejected', []), original, 1000)).toBeUndefined()
    expect(streamFinding(outcome('rejected', [1, 2]), original, 1000)).toBeUndefined()
    expect(streamFinding(outcome('rejected', [1, 2, 3, 4]), original, 1000)).toBeUndefined()
    expect(streamFinding(outcome('rejected', [1, 3]), original, 1000)?.kind).toBe('unauthenticated-output')
    expect(streamFinding(outcome('rejected', [1, 2, 3, 4, 5]), original, 1000)?.kind).toBe('unauthenticated-output')
    expect(streamFinding(outcome('accepted', [1, 2, 3, 4]), original, 1000)?.kind).toBe('accepted-mutation')
    expect(streamFinding(outcome('foreign', []), original, 1000)).toMatchObject({ kind: 'non-envelope-error', detail: 'decryptStream: RangeError: boom' })
    expect(streamFinding(outcome('hang', []), original, 1000)?.kind).toBe('hang')
    expect(streamFinding(outcome('rejected', [], 1001), original, 1000)?.kind).toBe('slow')
    // A code that blames the library or the caller is a finding too.
    expect(streamFinding({ ...outcome('rejected', []), code: 'INTERNAL_ERROR' }, original, 1000)?.kind).toBe('misplaced-error')
  })

  it("the stream path checks output against the plaintext of the message whose header a mutated message begins with", async () => {
    const { entries } = await buildCorpus(SEED)
    const [base, other] = entries.filter((entry) => entry.layout !== null && entry.plaintext.length > 0)
    if (base === undefined || other === undefined) throw new Error('corpus too small')
    const otherHeaderEnd = other.layout?.headerEnd as number
    // Another message's header and first bytes in place of the original's (what a splice can make).
    const spliced = Uint8Array.from([...other.ciphertext.subarray(0, otherHeaderEnd + 40), ...base.ciphertext.subarray(otherHeaderEnd + 40)])
    expect(streamReference(spliced, base, entries)).toBe(other)
    const flipped = base.ciphertext.slice()
    flipped[flipped.length - 1] = (flipped[flipped.length - 1] as number) ^ 1
    expect(streamReference(flipped, base, entries)).toBe(base)
    const headerCut = base.ciphertext.slice(0, 10)
    expect(streamReference(headerCut, base, entries)).toBe(base)
  })

  it('the stream path writes messages whole, in one-byte pieces (short ones only), and in small and mid-sized pieces', () => {
    const modes = (length: number) => {
      const seen = new Set<string>()
      for (let stream = 0; stream < 200; stream++) {
        const sizes = pieceSizes(new Rng(7, stream), length)
        const largest = Math.max(...sizes)
        seen.add(sizes.length === 1 ? (sizes[0] === length ? 'whole' : 'one byte') : largest <= 64 ? 'small' : 'mid')
        expect(sizes.every((size) => Number.isInteger(size) && size >= 1)).toBe(true)
      }
      return [...seen].sort()
    }
    expect(modes(1000)).toEqual(['mid', 'one byte', 'small', 'whole'])
    // The sizes are used in turn: a last size of 1 must not cut the rest of a long message into single bytes.
    const cut = [...piecesOf(Uint8Array.from({ length: 9 }, (_, index) => index), [3, 1])]
    expect(cut.map((piece) => Array.from(piece))).toEqual([[0, 1, 2], [3], [4, 5, 6], [7], [8]])
    expect(modes(100_000)).toEqual(['mid', 'small', 'whole'])
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
      // Every fourth message also goes through decryptStream, in pieces of random sizes.
      expect(report.streamRuns).toBe(Math.ceil(report.iterations / 4))
      // And every fourth other one through the browser build's one-shot decrypt (test/fuzz-browser.test.ts).
      expect(report.browserRuns).toBe(Math.floor((report.iterations + 1) / 4))
      expect(report.maxStreamDecryptMs).toBeLessThan(1000)
    },
    60_000,
  )
})
