// A one-shot decrypt that fails after it has written plaintext returns none, and zeroes what it wrote, also what
// cipher calls still in flight when it failed write later: on node:crypto when a frame fails in the first turn or
// a later one, or when the signature checked in the background fails; on an asynchronous cipher (WebCrypto) when
// the signature fails before the frames are open, without an unhandled rejection when a frame fails first. A decrypt
// stream likewise zeroes the plaintext of a chunk's frames when one of them fails. An encrypt stream zeroes what it
// holds of a frame short of whole once that frame is sealed, and when it ends however it ends. WebCrypto's own
// copy of what it decrypts is zeroed once copied out.
import { randomBytes } from 'node:crypto'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { nodeBackend } from '../src/backend/node.js'
import type { CryptoBackend } from '../src/backend/types.js'
import { webCryptoBackend } from '../src/backend/webcrypto.js'
import { decryptWith } from '../src/decrypt.js'
import { encryptWith } from '../src/encrypt.js'
import { isAllZero } from '../src/format/bytes.js'
import { parseHeader } from '../src/format/header.js'
import { FRAMES_PER_TURN } from '../src/next-turn.js'
import { decryptStreamWith } from '../src/stream-decrypt.js'
import { encryptStreamWith } from '../src/stream-encrypt.js'
import { aesKeyring, aroundAeadOpen, recordingAllocations, recordingSubtleDecrypt, rejectionOf, unhandledRejectionsDuring } from './helpers/fixtures.js'
import { chunked, drain } from './helpers/web-streams.js'

const keyring = aesKeyring()
const filled = (length: number) => new Uint8Array(length).fill(0x5a)
/** `message` with its last byte (the final frame's tag, or the signature) flipped. */
const lastByteFlipped = (message: Uint8Array) => {
  const altered = Uint8Array.from(message)
  altered[altered.length - 1]! ^= 1
  return altered
}

/** What a decrypt of `ciphertext` on `base` left: its error's code, and the buffers it allocated. */
async function failedDecrypt(base: CryptoBackend, ciphertext: Uint8Array) {
  const { backend, allocated } = recordingAllocations(base)
  const error = (await rejectionOf(decryptWith(backend, keyring, ciphertext))) as { code?: string }
  // Cipher calls that were in flight have landed by now.
  await new Promise((resolve) => setTimeout(resolve, 20))
  return { code: error.code, allocated }
}

afterEach(() => vi.restoreAllMocks())

/** The backends of the stream tests: a synchronous cipher and an asynchronous one. */
const BACKENDS = [
  ['node:crypto', nodeBackend],
  ['WebCrypto', webCryptoBackend],
] as const

describe('node:crypto', () => {
  it('a frame failing in the first turn: the frames before it are zeroed', async () => {
    const plaintext = filled(1000)
    const { ciphertext } = await encryptWith(nodeBackend, keyring, plaintext, { algorithmSuite: 0x0478, frameLength: 100 })
    // Unaltered, the buffer is the plaintext: the failure below has written to it.
    const { backend, allocated } = recordingAllocations(nodeBackend)
    expect((await decryptWith(backend, keyring, ciphertext)).plaintext).toBe(allocated[0])
    const failed = await failedDecrypt(nodeBackend, lastByteFlipped(ciphertext))
    expect(failed.code).toBe('FRAME_AUTHENTICATION_FAILED')
    expect(failed.allocated.map((buffer) => buffer.length)).toEqual([1000])
    expect(isAllZero(failed.allocated[0]!)).toBe(true)
  })

  it('a frame failing after the event loop has turned (more frames than one turn opens): all frames before it are zeroed', async () => {
    const length = FRAMES_PER_TURN + 10
    const { ciphertext } = await encryptWith(nodeBackend, keyring, filled(length), { algorithmSuite: 0x0478, frameLength: 1 })
    const failed = await failedDecrypt(nodeBackend, lastByteFlipped(ciphertext))
    expect(failed.code).toBe('FRAME_AUTHENTICATION_FAILED')
    expect(failed.allocated.map((buffer) => buffer.length)).toEqual([length])
    expect(isAllZero(failed.allocated[0]!)).toBe(true)
  })

  it('the signature checked in the background failing once every frame is open: the plaintext is zeroed', async () => {
    const length = 1024 * 1024 // in the range whose check begins before the keyrings run
    const { ciphertext } = await encryptWith(nodeBackend, keyring, filled(length), { algorithmSuite: 0x0578, frameLength: 65536 })
    const verifyMessage = vi.spyOn(nodeBackend, 'verifyMessage')
    const failed = await failedDecrypt(nodeBackend, lastByteFlipped(ciphertext))
    expect(verifyMessage).toHaveBeenCalledTimes(1)
    expect(failed.code).toBe('SIGNATURE_INVALID')
    expect(failed.allocated.map((buffer) => buffer.length)).toEqual([length])
    expect(isAllZero(failed.allocated[0]!)).toBe(true)
  })
})

describe('WebCrypto (an asynchronous cipher, which verifies while the frames decrypt)', () => {
  it("WebCrypto's own copy of what it decrypted (the data key the keyring unwraps, each frame) is zeroed once copied out", async () => {
    const plaintext = filled(2500)
    const { ciphertext } = await encryptWith(nodeBackend, keyring, plaintext, { algorithmSuite: 0x0478, frameLength: 1000 })
    const { outputs } = recordingSubtleDecrypt() // put back after each test
    expect((await decryptWith(webCryptoBackend, keyring, ciphertext)).plaintext).toEqual(plaintext)
    expect(outputs.map((output) => output.byteLength).sort((a, b) => a - b)).toEqual([0, 32, 500, 1000, 1000]) // the header's tag, the data key, the frames
    for (const output of outputs) expect(isAllZero(new Uint8Array(output))).toBe(true)
  })

  it('the signature failing before the frames are open: the plaintext they write is zeroed', async () => {
    const { ciphertext } = await encryptWith(nodeBackend, keyring, filled(3000), { algorithmSuite: 0x0578, frameLength: 1000 })
    const failed = await failedDecrypt(webCryptoBackend, lastByteFlipped(ciphertext))
    expect(failed.code).toBe('SIGNATURE_INVALID')
    expect(failed.allocated.map((buffer) => buffer.length)).toEqual([3000])
    expect(isAllZero(failed.allocated[0]!)).toBe(true)
  })

  it('a frame failing while the signature is still being checked: the signature error, and no unhandled rejection', async () => {
    const { ciphertext } = await encryptWith(nodeBackend, keyring, filled(3000), { algorithmSuite: 0x0578, frameLength: 1000 })
    const altered = Uint8Array.from(ciphertext)
    // A byte of the first frame's content (after its sequence number and IV): it fails, and so does the signature.
    altered[parseHeader(ciphertext).length + 4 + 12 + 10]! ^= 1
    let frameFailed = false
    const watchingFrames = aroundAeadOpen(webCryptoBackend, async (open) => {
      const authentic = await open()
      if (!authentic) frameFailed = true
      return authentic
    })
    const slowVerification: CryptoBackend = {
      ...watchingFrames,
      async verifyMessage(...args) {
        await vi.waitFor(() => expect(frameFailed).toBe(true))
        await new Promise((resolve) => setTimeout(resolve, 20))
        return webCryptoBackend.verifyMessage(...args)
      },
    }
    const unhandled = await unhandledRejectionsDuring(async () => {
      const failed = await failedDecrypt(slowVerification, altered)
      expect(frameFailed).toBe(true)
      expect(failed.code).toBe('SIGNATURE_INVALID')
      expect(isAllZero(failed.allocated[0]!)).toBe(true)
    })
    expect(unhandled).toEqual([])
  })
})

describe('a decrypt stream', () => {

  it.each(BACKENDS)('on %s, whose chunk of several frames has a bad one: none of that chunk is emitted, and the plaintext written for it is zeroed', async (_name, base) => {
    const { ciphertext } = await encryptWith(nodeBackend, keyring, filled(1000), { algorithmSuite: 0x0478, frameLength: 100 })
    const { backend, allocated } = recordingAllocations(base)
    const emitted: Uint8Array[] = []
    const reading = (async () => {
      for await (const chunk of chunked(lastByteFlipped(ciphertext), ciphertext.length).pipeThrough(decryptStreamWith(backend, keyring)) as unknown as AsyncIterable<Uint8Array>) {
        emitted.push(chunk)
      }
    })()
    expect(await rejectionOf(reading)).toMatchObject({ code: 'FRAME_AUTHENTICATION_FAILED' })
    await new Promise((resolve) => setTimeout(resolve, 20))
    expect(emitted).toEqual([])
    expect(allocated.map((buffer) => buffer.length)).toEqual([1000])
    expect(isAllZero(allocated[0]!)).toBe(true)
  })

  it.each(BACKENDS)("on %s, a signed message's final frame waits for the signature apart: the chunk released before it holds none of its plaintext, not even past its end", async (_name, backend) => {
    const { ciphertext } = await encryptWith(nodeBackend, keyring, filled(1050), { algorithmSuite: 0x0578, frameLength: 100 })
    const emitted: Uint8Array[] = []
    // Every frame in the first chunk, the signature's last 50 bytes in the second.
    for await (const chunk of chunked(ciphertext, ciphertext.length - 50).pipeThrough(decryptStreamWith(backend, keyring)) as unknown as AsyncIterable<Uint8Array>) {
      // As it is when released, before the signature is checked.
      emitted.push(new Uint8Array(chunk.buffer.slice(0)).subarray(chunk.byteOffset, chunk.byteOffset + chunk.length))
    }
    expect(emitted.map((chunk) => chunk.length)).toEqual([1000, 50])
    const first = emitted[0]!
    expect(isAllZero(new Uint8Array(first.buffer).subarray(first.byteOffset + first.length))).toBe(true)
  })

  it.each(BACKENDS)("on %s, a signed message's final frame held for the signature is zeroed when the stream is cancelled before the signature comes", async (_name, base) => {
    const { ciphertext } = await encryptWith(nodeBackend, keyring, filled(1050), { algorithmSuite: 0x0578, frameLength: 100 })
    const { backend, allocated } = recordingAllocations(base)
    const stream = decryptStreamWith(backend, keyring)
    const writer = stream.writable.getWriter()
    const reader = stream.readable.getReader()
    // Every frame, and not the signature's last 50 bytes.
    void writer.write(ciphertext.subarray(0, ciphertext.length - 50)).catch(() => undefined)
    expect((await reader.read()).value?.length).toBe(1000)
    const held = allocated.filter((buffer) => buffer.length === 50)
    expect(held).toHaveLength(1)
    expect(held[0]!.every((byte) => byte === 0x5a)).toBe(true)
    await reader.cancel(new Error('the reader gave up'))
    expect(isAllZero(held[0]!)).toBe(true)
  })
})

describe('an encrypt stream', () => {
  /** Whether any of `buffers` still holds a 16-byte piece of `plaintext` (pieces at every multiple of 16). */
  const holdsAnyOf = (buffers: Uint8Array[], plaintext: Uint8Array) =>
    buffers.some((buffer) => {
      const bytes = Buffer.from(buffer.buffer, buffer.byteOffset, buffer.length)
      for (let at = 0; at + 16 <= plaintext.length; at += 16) if (bytes.indexOf(plaintext.subarray(at, at + 16)) >= 0) return true
      return false
    })
  const countHolding = (buffers: Uint8Array[], part: Uint8Array) =>
    buffers.filter((buffer) => Buffer.from(buffer.buffer, buffer.byteOffset, buffer.length).indexOf(part) >= 0).length

  /** A stream of 4096-byte frames on a recording `base`, read as it goes; the caller writes to it. */
  function started(base: CryptoBackend, options: { signal?: AbortSignal; maxPlaintextLength?: number } = {}) {
    const { backend, allocated } = recordingAllocations(base)
    const stream = encryptStreamWith(backend, keyring, { algorithmSuite: 0x0478, frameLength: 4096, ...options })
    const writer = stream.writable.getWriter()
    const reader = stream.readable.getReader()
    return { allocated, writer, reader, reading: drain(reader) }
  }

  it.each(BACKENDS)('on %s, what it holds of a frame short of whole is kept once, and zeroed once the frame is sealed and when the stream ends', async (_name, base) => {
    const plaintext = randomBytes(5000)
    const { allocated, writer, reading } = started(base)
    await writer.write(plaintext.subarray(0, 1000))
    await writer.write(plaintext.subarray(1000, 3000)) // a larger buffer: the first one is zeroed
    expect(countHolding(allocated, plaintext.subarray(0, 1000))).toBe(1)
    await writer.write(plaintext.subarray(3000, 5000)) // the first frame sealed; 904 bytes held
    expect(holdsAnyOf(allocated, plaintext.subarray(0, 4096))).toBe(false)
    expect(holdsAnyOf(allocated, plaintext.subarray(4096))).toBe(true)
    await writer.close()
    await reading
    expect(holdsAnyOf(allocated, plaintext)).toBe(false)
  })

  it.each(
    BACKENDS.flatMap(([name, base]) =>
      (['aborted', 'cancelled by its reader', 'failed (longer than its maxPlaintextLength)'] as const).map((how) => [name, how, base] as const),
    ),
  )('on %s, %s: what it held of a frame short of whole is zeroed', async (_name, how, base) => {
    const plaintext = randomBytes(3000)
    const controller = new AbortController()
    const { allocated, writer, reader, reading } = started(base, { signal: controller.signal, maxPlaintextLength: 3500 })
    await writer.write(plaintext)
    expect(holdsAnyOf(allocated, plaintext)).toBe(true)
    if (how === 'aborted') controller.abort()
    else if (how === 'cancelled by its reader') await reader.cancel(new Error('enough'))
    else expect(await rejectionOf(writer.write(new Uint8Array(1000)))).toMatchObject({ code: 'LIMIT_EXCEEDED' })
    await reading.catch(() => undefined)
    expect(holdsAnyOf(allocated, plaintext)).toBe(false)
  })
})
