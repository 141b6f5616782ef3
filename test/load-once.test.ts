// Modules loaded on first use (src/load-on-demand.ts): one load shared by concurrent callers; a load that fails
// (in a browser, a chunk that did not arrive) is an InternalError carrying the cause, and is tried again.
import { describe, expect, it } from 'vitest'
import { ConfigurationError, EnvelopeError, InternalError } from '../src/index.js'
import { loadOnce } from '../src/load-on-demand.js'
import { rejectionOf } from './helpers/fixtures.js'

describe('loadOnce', () => {
  it('loads once, for concurrent and later callers alike', async () => {
    let loads = 0
    const load = loadOnce(async () => ({ loaded: ++loads }))
    const results = await Promise.all([load(), load(), load()])
    expect(results.map((result) => result.loaded)).toEqual([1, 1, 1])
    expect(await load()).toBe(results[0])
    expect(loads).toBe(1)
  })

  it('a failed load is an InternalError with its cause, shared by the callers waiting on it; the next call loads again', async () => {
    const network = new TypeError('Failed to fetch dynamically imported module: /chunk-1.js')
    let loads = 0
    const load = loadOnce(async () => {
      loads++
      if (loads === 1) throw network
      return 'module'
    })
    const [first, second] = await Promise.all([rejectionOf(load()), rejectionOf(load())])
    expect(first).toBeInstanceOf(InternalError)
    expect(first).toBeInstanceOf(EnvelopeError)
    expect((first as InternalError).code).toBe('INTERNAL_ERROR')
    expect((first as Error).cause).toBe(network)
    expect(second).toBe(first)
    expect(loads).toBe(1)
    expect(await load()).toBe('module')
    expect(await load()).toBe('module')
    expect(loads).toBe(2)
  })

  it('a failure function names the error (an optional peer dependency that is not installed, say)', async () => {
    const missing = new Error("Cannot find package '@aws-sdk/client-kms'")
    let loads = 0
    const load = loadOnce(
      async () => {
        loads++
        if (loads === 1) throw missing
        return 'sdk'
      },
      (error) => new ConfigurationError('Install @aws-sdk/client-kms.', { cause: error }),
    )
    const error = await rejectionOf(load())
    expect(error).toBeInstanceOf(ConfigurationError)
    expect((error as Error).cause).toBe(missing)
    expect(await load()).toBe('sdk')
  })
})
