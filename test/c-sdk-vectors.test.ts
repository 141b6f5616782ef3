// A message from the official C SDK's tests (test/fixtures/c-sdk/README.md), mangled by a text conversion.
import { readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import { decrypt, EnvelopeError, type Keyring } from '../src/index.js'
import { rejectionOf } from './helpers/fixtures.js'

const keyring: Keyring = {
  onEncrypt: () => Promise.reject(new Error('decrypt only')),
  onDecrypt: () => Promise.reject(new Error('the header must be refused before any keyring runs')),
}

describe('vectors of the official C SDK', () => {
  it('refuses a message whose bytes went through a text conversion (0x80 became C2 80)', async () => {
    const ciphertext = new Uint8Array(readFileSync(new URL('fixtures/c-sdk/ct_x_aes128_hkdf_bad_header.bin', import.meta.url)))
    const error = await rejectionOf(decrypt(keyring, ciphertext, { commitmentPolicy: 'REQUIRE_ENCRYPT_ALLOW_DECRYPT' }))
    expect(error).toBeInstanceOf(EnvelopeError)
    expect((error as EnvelopeError).code).toBe('MALFORMED_MESSAGE')
    expect((error as Error).message).toContain('message type 0xc2')
  })
})
