import { describe, expect, it, vi } from 'vitest'
import { parseHeader } from '../src/format/header.js'
import { decryptStream, encrypt, EnvelopeError, MultiKeyring, RawAesKeyring } from '../src/index.js'

// Counts how often a decrypt stream parses the header it is buffering (the parser itself is unchanged).
vi.mock(import('../src/format/header.js'), async (importOriginal) => {
  const original = await importOriginal()
  return { ...original, parseHeader: vi.fn(original.parseHeader) }
})
const parses = vi.mocked(parseHeader)

const aes = (name: string) => new RawAesKeyring({ keyNamespace: 'ns', keyName: name, wrappingKey: new Uint8Array(32).fill(3) })

/** Feeds `message` to a decrypt stream in pieces of `size` bytes; the stream's error, if any. */
async function feed(message: Uint8Array, size: number): Promise<{ error: unknown; output: number }> {
  const stream = decryptStream(aes('a'))
  stream.header.catch(() => undefined)
  let output = 0
  const reading = (async () => {
    const reader = stream.readable.getReader()
    for (let next = await reader.read(); !next.done; next = await reader.read()) output += next.value.length
  })()
  const writer = stream.writable.getWriter()
  let error: unknown
  try {
    for (let at = 0; at < message.length; at += size) await writer.write(message.subarray(at, at + size))
    await writer.close()
    await reading
  } catch (caught) {
    error = caught
    await reading.catch(() => undefined)
  }
  return { error, output }
}

describe('decrypt streams parsing a header that arrives in pieces', () => {
  it('parse a hostile header of 65,535 keys a few times, not once per piece', async () => {
    // A v2 header (suite 0x0578, empty context) claiming 65,535 keys of 7 bytes each, and no more: 459 KB.
    const count = 0xffff
    const message = new Uint8Array(39 + count * 7)
    message.set([2, 0x05, 0x78], 0)
    message.set([0, 0, 0xff, 0xff], 35)
    for (let at = 39; at < message.length; at += 7) message.set([0, 1, 0x61, 0, 0, 0, 0], at)
    parses.mockClear()
    const { error, output } = await feed(message, 64)
    expect(error).toBeInstanceOf(EnvelopeError)
    expect((error as EnvelopeError).code).toBe('TRUNCATED_MESSAGE')
    expect(output).toBe(0)
    // Once per 64-byte piece before: 7,169 parses of up to 65,535 keys each, half a minute of work.
    expect(parses.mock.calls.length).toBeLessThan(20)
  })

  it('still decrypt a message of many keys fed one byte at a time, parsing its header far fewer times than its length', async () => {
    const keyring = new MultiKeyring({ generator: aes('a'), children: Array.from({ length: 40 }, (_, index) => aes(`child-${index}`)) })
    const { ciphertext } = await encrypt(keyring, new Uint8Array(300).fill(9), { encryptionContext: { tenant: 'acme' } })
    const headerLength = parseHeader(ciphertext).length
    parses.mockClear()
    const { error, output } = await feed(ciphertext, 1)
    expect(error).toBeUndefined()
    expect(output).toBe(300)
    expect(parses.mock.calls.length).toBeLessThan(headerLength / 50)
  })
})
