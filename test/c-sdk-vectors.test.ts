// Messages from the official C SDK's tests (test/fixtures/c-sdk/README.md): a committing message that must
// decrypt, the same kind with a commitment that does not match its data key, and a message mangled by a text
// conversion.
import { createDecipheriv } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import { decrypt, EnvelopeError, type Keyring } from '../src/index.js'
import { rejectionOf } from './helpers/fixtures.js'
import { serializeContextByHand } from './helpers/wire.js'

const read = (name: string) => new Uint8Array(readFileSync(new URL(`fixtures/c-sdk/${name}`, import.meta.url)))

const KEY_NAMESPACE = 'ProviderName'
const KEY_NAME = 'KeyId'

/**
 * The C SDK's raw AES keyring over a wrapping key of 32 zero bytes. RawAesKeyring refuses such a key (it is no
 * secret), so this unwraps by hand: provider info = key name ‖ uint32 tag bits ‖ uint32 IV length ‖ IV;
 * ciphertext = AES-256-GCM(data key, AAD = the serialized context) ‖ tag. spec: framework/raw-aes-keyring.md
 */
const zeroKeyKeyring: Keyring = {
  onEncrypt: () => Promise.reject(new Error('decrypt only')),
  onDecrypt: async (materials, encryptedDataKeys) => {
    const edk = encryptedDataKeys.find((candidate) => candidate.providerId === KEY_NAMESPACE)!
    const info = Buffer.from(edk.providerInfo)
    expect(info.subarray(0, KEY_NAME.length).toString()).toBe(KEY_NAME)
    expect([info.readUInt32BE(KEY_NAME.length), info.readUInt32BE(KEY_NAME.length + 4)]).toEqual([128, 12])
    const decipher = createDecipheriv('aes-256-gcm', Buffer.alloc(32), info.subarray(KEY_NAME.length + 8))
    decipher.setAAD(serializeContextByHand(materials.encryptionContext))
    const wrapped = Buffer.from(edk.ciphertext)
    decipher.setAuthTag(wrapped.subarray(wrapped.length - 16))
    const dataKey = Buffer.concat([decipher.update(wrapped.subarray(0, wrapped.length - 16)), decipher.final()])
    return { ...materials, plaintextDataKey: new Uint8Array(dataKey) }
  },
}

describe('vectors of the official C SDK', () => {
  it('decrypts its committing message (0x0478)', async () => {
    const { plaintext, header } = await decrypt(zeroKeyKeyring, read('ct_good_commitment.bin'))
    expect(Buffer.from(plaintext).toString()).toBe(Buffer.from(read('good_commitment.pt')).toString())
    expect(Buffer.from(plaintext).toString()).toBe('GoodCommitment')
    expect(header.algorithmSuiteId).toBe(0x0478)
    expect(header.version).toBe(2)
    expect(header.encryptedDataKeys.map((edk) => edk.providerId)).toEqual([KEY_NAMESPACE])
  })

  it('refuses the message whose commitment does not match its data key, before any plaintext', async () => {
    const error = await rejectionOf(decrypt(zeroKeyKeyring, read('ct_bad_commitment.bin')))
    expect(error).toBeInstanceOf(EnvelopeError)
    expect((error as EnvelopeError).code).toBe('COMMITMENT_MISMATCH')
  })

  it('refuses a message whose bytes went through a text conversion (0x80 became C2 80)', async () => {
    const error = await rejectionOf(decrypt(zeroKeyKeyring, read('ct_x_aes128_hkdf_bad_header.bin'), { commitmentPolicy: 'REQUIRE_ENCRYPT_ALLOW_DECRYPT' }))
    expect(error).toBeInstanceOf(EnvelopeError)
    expect((error as EnvelopeError).code).toBe('MALFORMED_MESSAGE')
    expect((error as Error).message).toContain('message type 0xc2')
  })
})
