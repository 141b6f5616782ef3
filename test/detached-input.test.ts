// Input whose ArrayBuffer is transferred away (postMessage, structuredClone with `transfer`) or resized reads as
// fewer bytes, or none: it must be refused as the caller's mistake, not taken as empty input or reported as a
// message that failed to authenticate.
import { describe, expect, it } from 'vitest'
import { Readable, Writable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { detached } from '../src/detached.js'
import * as node from '../src/index.js'
import type { EnvelopeStream } from '../src/stream.js'
import type { Keyring } from '../src/types.js'
import { rejectionOf } from './helpers/fixtures.js'

const ENTRIES = {
  node: () => import('../src/index.js'),
  browser: () => import('../src/browser.js'),
}
type Entry = Awaited<ReturnType<(typeof ENTRIES)['node']>> | Awaited<ReturnType<(typeof ENTRIES)['browser']>>

const SUITES = [0x0478, 0x0578]
const WRAPPING_KEY = new Uint8Array(32).fill(5)

function transfer(bytes: Uint8Array): void {
  structuredClone(bytes.buffer, { transfer: [bytes.buffer as ArrayBuffer] })
}

function filled(length: number): Uint8Array {
  return new Uint8Array(length).map((_, index) => index % 251)
}

/** A view of a resizable ArrayBuffer that tracks its length, holding `length` bytes. */
type ResizableBuffer = ArrayBuffer & { resize(length: number): void }
/** (ES2024's resizable ArrayBuffer; the project's TypeScript library is older.) */
const ResizableArrayBuffer = ArrayBuffer as unknown as new (length: number, options: { maxByteLength: number }) => ResizableBuffer

function resizable(length: number): { view: Uint8Array; buffer: ResizableBuffer } {
  const buffer = new ResizableArrayBuffer(length, { maxByteLength: length * 2 })
  const view = new Uint8Array(buffer)
  view.set(filled(length))
  return { view, buffer }
}

/** `inner`, running `meanwhile` once its keyring work has begun (as a caller's other code would, while KMS answers). */
function keyringDuring(inner: Keyring, meanwhile: () => void): Keyring {
  return {
    onEncrypt: async (materials, backend) => {
      meanwhile()
      return inner.onEncrypt(materials, backend)
    },
    onDecrypt: async (materials, edks, backend) => {
      meanwhile()
      return inner.onDecrypt(materials, edks, backend)
    },
  }
}

async function codeAndMessage(promise: Promise<unknown>, api: Entry): Promise<{ code: string; message: string }> {
  const error = await rejectionOf(promise)
  expect(error).toBeInstanceOf(api.EnvelopeError)
  const { code, message } = error as { code: string; message: string }
  return { code, message }
}

describe('detached()', () => {
  it('tells a view of a transferred buffer from empty views of live ones', () => {
    const gone = new Uint8Array(8)
    transfer(gone)
    expect(detached(gone)).toBe(true)
    expect(detached(new Uint8Array(0))).toBe(false)
    expect(detached(new Uint8Array(new ArrayBuffer(8), 8))).toBe(false)
    expect(detached(new Uint8Array(new SharedArrayBuffer(0)))).toBe(false)
    expect(detached(new Uint8Array(8))).toBe(false)
  })
})

describe.each(Object.keys(ENTRIES) as Array<keyof typeof ENTRIES>)('detached or resized input, %s entry', (entry) => {
  const load = async () => {
    const api = await ENTRIES[entry]()
    const keyring = new api.RawAesKeyring({ keyNamespace: 'detached', keyName: 'k', wrappingKey: WRAPPING_KEY })
    return { api, keyring }
  }

  it.each(SUITES)('empty input that is not detached still round trips, suite %i', async (algorithmSuite) => {
    const { api, keyring } = await load()
    for (const empty of [new Uint8Array(0), new Uint8Array(new ArrayBuffer(16), 16)]) {
      const { ciphertext } = await api.encrypt(keyring, empty, { algorithmSuite })
      expect((await api.decrypt(keyring, ciphertext)).plaintext).toEqual(new Uint8Array(0))
    }
  })

  it.each(SUITES)('a plaintext detached before encrypt is refused as such, suite %i', async (algorithmSuite) => {
    const { api, keyring } = await load()
    const plaintext = filled(100)
    transfer(plaintext)
    const { code, message } = await codeAndMessage(api.encrypt(keyring, plaintext, { algorithmSuite }), api)
    expect(code).toBe('INVALID_CONFIGURATION')
    expect(message).toMatch(/plaintext's ArrayBuffer was detached/)
  })

  it.each(SUITES)('a plaintext detached while the keyring works is refused as such, suite %i', async (algorithmSuite) => {
    const { api, keyring } = await load()
    for (const length of [100, 300_000]) {
      const plaintext = filled(length)
      const outcome = api.encrypt(keyringDuring(keyring, () => transfer(plaintext)), plaintext, { algorithmSuite })
      expect((await codeAndMessage(outcome, api)).code).toBe('INVALID_CONFIGURATION')
    }
  })

  // The browser entry encrypts a copy of a plaintext on a resizable buffer (WebCrypto refuses views of one), taken at
  // the call; the Node entry reads the caller's buffer.
  it.each(SUITES)(
    entry === 'browser'
      ? 'a plaintext resized while the keyring works: the copy encrypt took at the call is encrypted, suite %i'
      : 'a plaintext resized while the keyring works is refused, not encrypted at its new length, suite %i',
    async (algorithmSuite) => {
      const { api, keyring } = await load()
      for (const newLength of [60, 0, 150, 'detached'] as const) {
        const { view, buffer } = resizable(100)
        const change = () => (newLength === 'detached' ? transfer(view) : buffer.resize(newLength))
        const outcome = api.encrypt(keyringDuring(keyring, change), view, { algorithmSuite })
        if (entry === 'browser') {
          expect((await api.decrypt(keyring, (await outcome).ciphertext)).plaintext).toEqual(filled(100))
          continue
        }
        const { code, message } = await codeAndMessage(outcome, api)
        expect(code).toBe('INVALID_CONFIGURATION')
        expect(message).toMatch(/detached .*or resized/)
      }
      // The same buffer left alone encrypts; detached before the call, it is refused as such (not copied: a view of
      // a detached buffer cannot be).
      const { view } = resizable(100)
      const { ciphertext } = await api.encrypt(keyring, view, { algorithmSuite })
      expect((await api.decrypt(keyring, ciphertext)).plaintext).toEqual(filled(100))
      const gone = resizable(100).view
      transfer(gone)
      const refused = await codeAndMessage(api.encrypt(keyring, gone, { algorithmSuite }), api)
      expect(refused.code).toBe('INVALID_CONFIGURATION')
      expect(refused.message).toMatch(/plaintext's ArrayBuffer was detached/)
    },
  )

  it.each(SUITES)('a ciphertext detached before or while decrypt reads it is refused as such, suite %i', async (algorithmSuite) => {
    const { api, keyring } = await load()
    const { ciphertext } = await api.encrypt(keyring, filled(20_000), { algorithmSuite, frameLength: 1024 })
    const before = ciphertext.slice()
    transfer(before)
    const first = await codeAndMessage(api.decrypt(keyring, before), api)
    expect(first.code).toBe('INVALID_CONFIGURATION')
    expect(first.message).toMatch(/ciphertext's ArrayBuffer was detached/)
    const during = ciphertext.slice()
    expect((await codeAndMessage(api.decrypt(keyringDuring(keyring, () => transfer(during)), during), api)).code).toBe('INVALID_CONFIGURATION')
  })

  // The browser entry decrypts a copy of a ciphertext on a resizable buffer (WebCrypto refuses views of one), so a
  // resize after the call began no longer reaches what it reads; the Node entry reads the caller's buffer.
  it.each(SUITES)(
    entry === 'browser'
      ? 'a ciphertext shrunk while the keyring works: the copy decrypt took at the call decrypts, suite %i'
      : 'a ciphertext shrunk while the keyring works is refused as such, not as a truncated message, suite %i',
    async (algorithmSuite) => {
      const { api, keyring } = await load()
      const plaintext = filled(20_000)
      const { ciphertext } = await api.encrypt(keyring, plaintext, { algorithmSuite, frameLength: 1024 })
      const { view, buffer } = resizable(ciphertext.length)
      view.set(ciphertext)
      const outcome = api.decrypt(keyringDuring(keyring, () => buffer.resize(ciphertext.length - 5000)), view)
      if (entry === 'browser') expect((await outcome).plaintext).toEqual(plaintext)
      else expect((await codeAndMessage(outcome, api)).code).toBe('INVALID_CONFIGURATION')
    },
  )

  it('a detached chunk of one-shot input in pieces is refused, not taken as an empty one', async () => {
    const { api, keyring } = await load()
    const { ciphertext } = await api.encrypt(keyring, filled(5000))
    async function* pieces(input: Uint8Array): AsyncGenerator<Uint8Array> {
      yield input.slice(0, 100)
      const gone = input.slice(100, 200)
      transfer(gone)
      yield gone
      yield input.slice(200)
    }
    const { code, message } = await codeAndMessage(api.encrypt(keyring, pieces(filled(5000))), api)
    expect(code).toBe('INVALID_CONFIGURATION')
    expect(message).toMatch(/chunk's ArrayBuffer is detached/)
    expect((await codeAndMessage(api.decrypt(keyring, pieces(ciphertext)), api)).code).toBe('INVALID_CONFIGURATION')
  })

  it.each(['encrypt', 'decrypt'] as const)('a detached chunk written to a %s stream errors it; an empty live chunk does not', async (direction) => {
    const { api, keyring } = await load()
    const { ciphertext } = await api.encrypt(keyring, filled(5000))
    const input = direction === 'encrypt' ? filled(5000) : ciphertext
    const run = async (stream: EnvelopeStream, middle: Uint8Array) => {
      const output = new Response(stream.readable).arrayBuffer()
      const writer = stream.writable.getWriter()
      const writes = [writer.write(input.slice(0, 100)), writer.write(middle), writer.write(input.slice(100)), writer.close()]
      const settled = await Promise.allSettled([output, ...writes])
      return settled[0]!
    }
    const make = () => (direction === 'encrypt' ? api.encryptStream(keyring) : api.decryptStream(keyring))
    const fine = await run(make(), new Uint8Array(0))
    expect(fine.status).toBe('fulfilled')
    const gone = filled(10)
    transfer(gone)
    const failed = await run(make(), gone)
    expect(failed.status).toBe('rejected')
    const reason = (failed as PromiseRejectedResult).reason as { code: string }
    expect(reason).toBeInstanceOf(api.EnvelopeError)
    expect(reason.code).toBe('INVALID_CONFIGURATION')
  })
})

describe('detached chunks written to a Node Transform', () => {
  const keyring = new node.RawAesKeyring({ keyNamespace: 'test', keyName: 'key', wrappingKey: WRAPPING_KEY })
  const makers = {
    encryptNodeStream: () => node.encryptNodeStream(keyring),
    decryptNodeStream: () => node.decryptNodeStream(keyring),
    'encryptStream().toNode()': () => node.encryptStream(keyring).toNode(),
    'decryptStream().toNode()': () => node.decryptStream(keyring).toNode(),
  }

  /** What `write(chunk)` or `end(chunk)` threw, after the stream is gone. */
  function thrownBy(name: keyof typeof makers, method: 'write' | 'end', chunk: unknown): unknown {
    const transform = makers[name]()
    transform.on('error', () => undefined)
    try {
      transform[method](chunk)
      return undefined
    } catch (error) {
      return error
    } finally {
      transform.destroy()
    }
  }

  // Node's own write() throws for a chunk it cannot take (null, a number); a detached one is refused the same way.
  describe.each(Object.keys(makers) as Array<keyof typeof makers>)('%s', (name) => {
    it.each(['write', 'end'] as const)('%s() of a detached chunk throws a ConfigurationError, not the platform TypeError', (method) => {
      for (const view of [filled(10), new DataView(new ArrayBuffer(10))]) {
        transfer(new Uint8Array(view.buffer))
        const thrown = thrownBy(name, method, view)
        expect(thrown).toBeInstanceOf(node.ConfigurationError)
        expect((thrown as Error).message).toMatch(/chunk's ArrayBuffer is detached/)
      }
    })

    it.each(['write', 'end'] as const)('%s() of a chunk that is not bytes throws a ConfigurationError saying what it got', (method) => {
      const cases: Array<[unknown, RegExp]> = [
        // end(null), as end(), only ends.
        ...(method === 'write' ? [[null, /got null/] as [unknown, RegExp]] : []),
        [42, /got number/],
        [new ArrayBuffer(4), /got an ArrayBuffer: pass new Uint8Array\(buffer\)/],
        [[1, 2], /got an array/],
      ]
      for (const [chunk, says] of cases) {
        const thrown = thrownBy(name, method, chunk)
        expect(thrown).toBeInstanceOf(node.ConfigurationError)
        expect((thrown as Error).message).toMatch(says)
      }
    })
  })

  it('what Node takes still goes through: other views of bytes, strings in an encoding, end() with no chunk', async () => {
    const plaintext = filled(300)
    const encrypting = node.encryptNodeStream(keyring)
    const ciphertext = Buffer.concat(await Promise.all([encrypting.toArray(), (async () => {
      encrypting.write(new DataView(plaintext.buffer, 0, 100))
      encrypting.write(new Uint16Array(plaintext.buffer, 100, 50))
      encrypting.write(Buffer.from(plaintext.subarray(200)).toString('base64'), 'base64')
      encrypting.end()
    })()]).then(([chunks]) => chunks as Buffer[]))
    expect(new Uint8Array((await node.decrypt(keyring, ciphertext)).plaintext)).toEqual(plaintext)
  })

  it('a Readable piped in (Node\'s pipe, which calls write() in its data handler): the Transform fails with the error, the process goes on', async () => {
    // Node 20 and 22 let an error thrown there escape as an uncaught exception (their own PassThrough too),
    // which would end the process; from Node 24, pipe destroys the destination with it. Both now get the latter.
    const sink = () => new Writable({ write: (_chunk, _encoding, callback) => callback() })
    const gone = filled(10)
    transfer(gone)
    for (const [name, make] of Object.entries(makers)) {
      for (const [chunks, says] of [[[1, 2], /got number/], [[{ bytes: 1 }], /got object/], [[filled(5), gone], /detached/]] as const) {
        const error = await rejectionOf(pipeline(Readable.from(chunks as readonly unknown[]), make(), sink()))
        expect(error, name).toBeInstanceOf(node.ConfigurationError)
        expect((error as Error).message, name).toMatch(says)
      }
    }
  })

  it('a pipeline from input in pieces fails with that ConfigurationError; empty live chunks pass', async () => {
    async function* pieces(detach: boolean): AsyncGenerator<Uint8Array> {
      yield filled(100)
      const middle = detach ? filled(100) : new Uint8Array(0)
      if (detach) transfer(middle)
      yield middle
      yield filled(100)
    }
    const sink = () => new Writable({ write: (_chunk, _encoding, callback) => callback() })
    await pipeline(pieces(false), node.encryptNodeStream(keyring), sink())
    const error = await rejectionOf(pipeline(pieces(true), node.encryptNodeStream(keyring), sink()))
    expect(error).toBeInstanceOf(node.ConfigurationError)
  })
})
