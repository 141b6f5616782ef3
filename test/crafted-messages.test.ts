// Unusual messages that are nonetheless authenticated, so that only the format's own rules can refuse them: the
// cases, and which official SDKs differ on them, are in helpers/crafted-cases.ts.
import { describe, expect, it } from 'vitest'
import * as browser from '../src/browser.js'
import { decrypt, decryptStream, EnvelopeError } from '../src/index.js'
import { craftV1, craftV2, dataKeyKeyring } from './helpers/craft.js'
import { ACCEPTED, REFUSED, V2_ACCEPTED, V2_REFUSED, type Crafted } from './helpers/crafted-cases.js'
import { rejectionOf } from './helpers/fixtures.js'
import { chunked, readAll } from './helpers/web-streams.js'

const allow = { commitmentPolicy: 'FORBID_ENCRYPT_ALLOW_DECRYPT' } as const

/** One-shot, by both builds, and streamed in chunks of 1, 7 and all bytes: the plaintext, and this stored context (public key aside). */
async function expectAccepted({ ciphertext, plaintext, dataKey }: Crafted, context: Record<string, string>): Promise<void> {
  for (const run of [decrypt, browser.decrypt]) {
    const result = await run(dataKeyKeyring(dataKey), ciphertext, allow)
    expect(Buffer.from(result.plaintext).equals(plaintext)).toBe(true)
    const { 'aws-crypto-public-key': _publicKey, ...stored } = result.header.encryptionContext
    expect(stored).toEqual(context)
  }
  for (const size of [1, 7, ciphertext.length]) {
    const stream = decryptStream(dataKeyKeyring(dataKey), allow)
    const streamed = await readAll(chunked(ciphertext, size).pipeThrough(stream))
    expect(Buffer.from(streamed).equals(plaintext)).toBe(true)
  }
}

/** One-shot by both builds and streamed in chunks of 7: an EnvelopeError of that code. */
async function expectRefused({ ciphertext, dataKey }: Crafted, code: string): Promise<void> {
  const errors = await Promise.all(
    [
      decrypt(dataKeyKeyring(dataKey), ciphertext, allow),
      browser.decrypt(dataKeyKeyring(dataKey), ciphertext, allow),
      readAll(chunked(ciphertext, 7).pipeThrough(decryptStream(dataKeyKeyring(dataKey), allow))),
    ].map(rejectionOf),
  )
  for (const error of errors) {
    expect(error).toBeInstanceOf(EnvelopeError)
    expect((error as EnvelopeError).code).toBe(code)
  }
}

describe('authenticated messages with unusual fields', () => {
  it.each(ACCEPTED)('accepted: %s, one-shot, as a stream and by the browser build', (_name, options, context = { a: '1', b: '2' }) =>
    expectAccepted(craftV1(options), context),
  )

  it.each(REFUSED)('refused: %s, one-shot, as a stream and by the browser build', (_name, options) => expectRefused(craftV1(options), 'MALFORMED_MESSAGE'))

  it.each(V2_ACCEPTED)('accepted: %s, one-shot, as a stream and by the browser build', (_name, options) => expectAccepted(craftV2(options), { a: '1', b: '2' }))

  it.each(V2_REFUSED)('refused: %s, one-shot, as a stream and by the browser build', (_name, craft, code) => expectRefused(craft(), code))

  it('the unchanged crafted messages decrypt, so each refusal above comes from its one change', async () => {
    for (const { ciphertext, plaintext, dataKey } of [craftV1(), craftV2(), craftV2({ suite: 0x0578 })]) {
      expect(Buffer.from((await decrypt(dataKeyKeyring(dataKey), ciphertext, allow)).plaintext).equals(plaintext)).toBe(true)
    }
  })
})
