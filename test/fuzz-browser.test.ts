/**
 * The fuzzer's browser path: every fourth iteration's one-shot decrypt is the browser build's (WebCrypto). Here
 * that decrypt is wrapped, to count its calls and, for one test, to accept what it is given: the fuzzer must
 * report that, say which build did it, and replay it through the same build.
 */
import { describe, expect, it, vi } from 'vitest'

import { replayCase, runFuzz } from '../scripts/fuzz-lib.js'

const browser = vi.hoisted(() => ({ calls: 0, acceptEverything: false }))

vi.mock('../src/browser.js', async (importOriginal) => {
  const original = await importOriginal<typeof import('../src/browser.js')>()
  const decrypt: typeof original.decrypt = async (...args) => {
    browser.calls++
    const result = await original.decrypt(...args).catch((error: unknown) => {
      if (!browser.acceptEverything) throw error
      return undefined
    })
    return result ?? ({ plaintext: new Uint8Array([1, 2, 3]), header: undefined, encryptionContext: {} } as never)
  }
  return { ...original, decrypt }
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

  it('reports what the browser build accepted, names that build, and replays the case through it', async () => {
    browser.acceptEverything = true
    try {
      const report = await runFuzz({ iterations: 8, seed: SEED, streamEvery: 0 })
      expect(report.failureList.map((failure) => [failure.iteration, failure.kind, failure.case?.build])).toEqual([
        [2, 'accepted-mutation', 'browser'],
        [6, 'accepted-mutation', 'browser'],
      ])
      expect(report.failureList[0]?.detail).toMatch(/^the browser build: decrypt returned a 3-byte plaintext/)
      const found = report.failureList[0]?.case
      if (found === undefined) throw new Error('no case saved')
      expect((await replayCase(found)).outcome).toBe('accepted')
      // The same message through Node's decrypt is refused: the replay followed the case's build.
      const { build: _build, ...nodeCase } = found
      expect((await replayCase(nodeCase)).outcome).toMatch(/^rejected:/)
    } finally {
      browser.acceptEverything = false
    }
  }, 60_000)
})
