import { describe, expect, it } from 'vitest'
import { decrypt, EnvelopeError } from '../src/index.js'
import { buildKeyring, manifest, readFixture } from './helpers/vectors.js'

const positives = manifest.vectors.filter((vector) => vector.expect === 'success')
const negatives = manifest.vectors.filter((vector) => vector.expect === 'error')

describe('official JavaScript SDK vectors', () => {
  it('the manifest has both kinds of vector', () => {
    expect(positives.length).toBeGreaterThanOrEqual(68)
    expect(negatives.length).toBeGreaterThanOrEqual(5)
  })

  describe.each(positives.map((vector) => [vector.id, vector] as const))('%s', (_id, vector) => {
    const ciphertext = readFixture(vector.ciphertext)
    const expected = readFixture(vector.plaintext as string)

    it.each(vector.decryptKeyrings.map((spec, index) => [index, spec] as const))('decrypts with keyring %i', async (_index, spec) => {
      const { plaintext, header } = await decrypt(buildKeyring(spec), ciphertext, {
        commitmentPolicy: vector.commitmentPolicy,
        encryptionContext: vector.encryptionContext ?? {},
      })
      expect(Buffer.from(plaintext).equals(Buffer.from(expected))).toBe(true)
      expect(header.encryptionContext).toEqual(vector.expectedEncryptionContext)
      expect(header.algorithmSuiteId).toBe(Number(vector.suiteId))
      expect(header.contentType).toBe(vector.contentType)
      expect(header.frameLength).toBe(vector.contentType === 'framed' ? vector.frameLength : 0)
      expect(header.version).toBe(vector.messageFormatVersion)
      expect(header.encryptedDataKeys.map((edk) => edk.providerId)).toEqual(vector.encryptedDataKeys?.map((edk) => edk.providerId))
    })
  })

  it.each(negatives.map((vector) => [vector.id, vector] as const))('rejects %s', async (_id, vector) => {
    const ciphertext = readFixture(vector.ciphertext)
    for (const spec of vector.decryptKeyrings) {
      const error = await decrypt(buildKeyring(spec), ciphertext, { commitmentPolicy: vector.commitmentPolicy }).then(
        () => undefined,
        (caught: unknown) => caught,
      )
      expect(error).toBeInstanceOf(EnvelopeError)
    }
  })
})
