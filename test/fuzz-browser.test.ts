/**
 * The fuzzer's browser paths: every fourth iteration's one-shot decrypt is the browser build's (WebCrypto), and
 * so is every second decrypt stream. Here those are wrapped, to count their calls and, for one test, to accept
 * what they are given: the fuzzer must report that, say which build did it, and replay it through that build.
 */
import { describe, expect, it, vi } from 'vitest'

import { replayCase, runFuzz } from '../scripts/fuzz-lib.js'

const browser = vi.hoisted(() => ({ calls: 0, streams: 0, acceptEverything: false, failInternally: false }))

vi.mock('../src/browser.js', async (importOriginal) => {
  const original = await importOriginal<typeof import('../src/browser.js')>()
  const decrypt: typeof original.decrypt = async (...args) => {
    browser.calls++
    const result = await original.decrypt(...args).catch((error: unknown) => {
      if (browser.failInternally) throw new original.InternalError('planted: a failure that blames the library')
      if (!browser.acceptEverything) throw error
      return undefined
    })
    return result ?? ({ plaintext: new Uint8Array([1, 2, 3]), header: undefined, encryptionContext: {} } as never)
  }
  const decryptStream: typeof original.decryptStream = (...args) => {
    browser.streams++
    if (!browser.acceptEverything) return original.decryptStream(...args)
    // A stream that takes everything, emits nothing and ends without an error.
    const swallow = new TransformStream<Uint8Array, Uint8Array>({ transform: () => undefined })
    return Object.assign(swallow, { header: new Promise<never>(() => undefined) }) as never
  }
  return { ...original, decrypt, decryptStream }
})

const SEED = 0xb20_5e12

describe('fuzzing the browser build', () => {
  it("decrypts every fourth message with the browser build's one-shot decrypt (iterations 2, 6, 10, ...), or none with browserEvery 0", async () => {
    browser.calls = 0
    const report = await runFuzz({ iterations: 40, seed: SEED, streamEvery: 0 })
    expect(report.failureList).toEqual([])
    expect([report.browserRuns, browser.calls]).toEqual([10, 10])
    browser.calls = 0
    const none = await runFuzz({ iterations: 12, seed: SEED, streamEvery: 0, browserEvery: 0 })
    expect([none.failures, none.browserRuns, browser.calls]).toEqual([0, 0, 0])
  }, 60_000)

  it("streams every second streamed message through the browser build's decryptStream (iterations 4, 12, 20, ...)", async () => {
    browser.streams = 0
    const report = await runFuzz({ iterations: 40, seed: SEED, browserEvery: 0 })
    expect(report.failureList).toEqual([])
    expect([report.streamRuns, report.browserStreamRuns, browser.streams]).toEqual([10, 5, 5])
  }, 60_000)

  it('reports what the browser build accepted, names that build, and replays the case through it', async () => {
    browser.acceptEverything = true
    try {
      const report = await runFuzz({ iterations: 8, seed: SEED })
      // Iterations 2 and 6 decrypt one-shot with the browser build, 0 and 4 also stream (Node's, then the browser build's).
      expect(report.failureList.map((failure) => [failure.iteration, failure.kind, failure.case?.build, failure.case?.pieces !== undefined])).toEqual([
        [2, 'accepted-mutation', 'browser', false],
        [4, 'accepted-mutation', 'browser', true],
        [6, 'accepted-mutation', 'browser', false],
      ])
      expect(report.failureList[0]?.detail).toMatch(/^the browser build: decrypt returned a 3-byte plaintext/)
      expect(report.failureList[1]?.detail).toMatch(/^the browser build: decryptStream ended without an error/)
      for (const [found, accepted] of [[report.failureList[0]?.case, 'accepted'], [report.failureList[1]?.case, 'accepted-mutation']] as const) {
        if (found === undefined) throw new Error('no case saved')
        expect((await replayCase(found)).outcome).toBe(accepted)
        // The same message through Node's decrypt is refused: the replay followed the case's build.
        const { build: _build, ...nodeCase } = found
        expect((await replayCase(nodeCase)).outcome).toMatch(/^rejected:/)
      }
    } finally {
      browser.acceptEverything = false
    }
  }, 60_000)

  it('reports a decrypt that fails with a code blaming the library or the caller (INTERNAL_ERROR), not the message', async () => {
    browser.failInternally = true
    try {
      const report = await runFuzz({ iterations: 8, seed: SEED })
      expect(report.failureList.map((failure) => [failure.iteration, failure.kind, failure.errorCode])).toEqual([
        [2, 'misplaced-error', 'INTERNAL_ERROR'],
        [6, 'misplaced-error', 'INTERNAL_ERROR'],
      ])
      expect(report.failureList[0]?.detail).toBe('the browser build: decrypt failed with INTERNAL_ERROR, which blames the library or the caller, not the message')
    } finally {
      browser.failInternally = false
    }
  }, 60_000)
})
