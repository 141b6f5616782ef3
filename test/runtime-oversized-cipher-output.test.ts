// A runtime whose node:crypto hands out cipher output in a buffer longer than the output (Bun's, at 1.4: one byte
// more, holding whatever memory held before). This file's decipher does the same, with a marker byte; the rest of
// node:crypto is Node's own. What reaches the caller must hold the output alone.
import { describe, expect, it, vi } from 'vitest'
import { isAllZero } from '../src/format/bytes.js'
import { decrypt, decryptStream, encrypt, RawAesKeyring } from '../src/index.js'
import { chunked, readAll } from './helpers/web-streams.js'

const STALE = 0xab
const outputs: Uint8Array[] = []

vi.mock('node:crypto', async (importOriginal) => {
  const actual = await importOriginal<typeof import('node:crypto')>()
  const createDecipheriv = (...args: Parameters<typeof actual.createDecipheriv>) => {
    const decipher = actual.createDecipheriv(...args)
    const update = decipher.update.bind(decipher) as (data: Uint8Array) => Buffer
    return Object.assign(decipher, {
      update(data: Uint8Array): Buffer {
        const exact = update(data)
        const longer = Buffer.from(new ArrayBuffer(exact.length + 1), 0, exact.length)
        longer.set(exact)
        new Uint8Array(longer.buffer)[exact.length] = STALE
        outputs.push(longer)
        return longer
      },
    })
  }
  return { ...actual, createDecipheriv }
})

const keyring = new RawAesKeyring({ keyNamespace: 'runtime', keyName: 'k', wrappingKey: new Uint8Array(32).fill(3) })
const data = new Uint8Array(3000).map((_, index) => index % 251)

/** The whole buffer behind `bytes` is `bytes`: nothing before or after it to see through `.buffer`. */
function expectOwnBuffer(bytes: Uint8Array): void {
  expect(bytes.byteOffset).toBe(0)
  expect(bytes.buffer.byteLength).toBe(bytes.length)
}

describe("a runtime whose cipher output sits in a longer buffer (Bun's)", () => {
  it('the case is real here: the decipher hands out the longer buffers', async () => {
    const { createDecipheriv, randomBytes } = await import('node:crypto')
    const output = createDecipheriv('aes-256-gcm', randomBytes(32), randomBytes(12)).update(new Uint8Array(10))
    expect(output.buffer.byteLength).toBe(11)
  })

  it.each([0x0478, 0x0578, 0x0014])('a one-frame message decrypts to a plaintext of its own buffer, suite %i', async (algorithmSuite) => {
    const { ciphertext } = await encrypt(keyring, data, { algorithmSuite, commitmentPolicy: algorithmSuite < 0x0400 ? 'FORBID_ENCRYPT_ALLOW_DECRYPT' : undefined })
    outputs.length = 0
    const { plaintext } = await decrypt(keyring, ciphertext, { commitmentPolicy: 'REQUIRE_ENCRYPT_ALLOW_DECRYPT' })
    expect(plaintext).toEqual(data)
    expectOwnBuffer(plaintext)
    // The data key and the frame went through the decipher, and what it handed out was zeroed once copied.
    expect(outputs.length).toBeGreaterThanOrEqual(2)
    for (const output of outputs) expect(isAllZero(output)).toBe(true)
  })

  it("a decrypt stream's chunks are of their own buffers too", async () => {
    const { ciphertext } = await encrypt(keyring, data, { algorithmSuite: 0x0478, frameLength: 1000 })
    const chunks: Uint8Array[] = []
    const reader = chunked(ciphertext, 1100).pipeThrough(decryptStream(keyring)).getReader()
    for (let next = await reader.read(); !next.done; next = await reader.read()) chunks.push(next.value)
    expect(chunks.length).toBeGreaterThan(1)
    for (const chunk of chunks) expect(new Uint8Array(chunk.buffer, chunk.byteOffset + chunk.length, chunk.buffer.byteLength - chunk.byteOffset - chunk.length)).not.toContain(STALE)
    expect(await readAll(chunked(ciphertext, 1100).pipeThrough(decryptStream(keyring)))).toEqual(data)
  })
})
