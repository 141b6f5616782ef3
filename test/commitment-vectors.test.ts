// Known answers for message format 2 (key commitment), written by the official C, Python, Java and JavaScript
// SDKs (test/fixtures/commitment/README.md). Each vector gives its plaintext data key, so a keyring that hands
// it over stands in for AWS KMS; and its derived encryption key and commitment, checked against our derivation.
import { readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import { nodeBackend } from '../src/backend/node.js'
import * as browser from '../src/browser.js'
import { deriveKeys } from '../src/derive.js'
import { isAllZero } from '../src/format/bytes.js'
import { parseHeader } from '../src/format/header.js'
import { decrypt, decryptStream, EnvelopeError, type Keyring } from '../src/index.js'
import { suiteFromMessage } from '../src/suites.js'
import { rejectionOf } from './helpers/fixtures.js'
import { chunked, readAll } from './helpers/web-streams.js'

interface CommitmentVector {
  comment: string
  ciphertext: string
  'decrypted-dek': string
  'content-encryption-key'?: string
  commitment: string
  'message-id': string
  'encryption-context': Record<string, string>
  'plaintext-frames'?: string[]
  'keyring-type': 'static' | 'aws-kms'
  status: boolean
  exception: string | null
}

const { tests } = JSON.parse(readFileSync(new URL('fixtures/commitment/commitment-test-vectors.json', import.meta.url), 'utf8')) as {
  tests: CommitmentVector[]
}
const base64 = (text: string) => new Uint8Array(Buffer.from(text, 'base64'))

/** Hands over the vector's data key for its one kind of encrypted data key (a fresh copy: decrypt zeroes it). */
function dataKeyKeyring(vector: CommitmentVector): Keyring {
  const providerId = vector['keyring-type'] === 'static' ? 'ProviderName' : 'aws-kms'
  return {
    onEncrypt: () => Promise.reject(new Error('decrypt only')),
    onDecrypt: async (materials, encryptedDataKeys) => {
      if (!encryptedDataKeys.some((edk) => edk.providerId === providerId)) return materials
      return { ...materials, plaintextDataKey: base64(vector['decrypted-dek']) }
    },
  }
}

const cases = tests.map((vector) => [vector.comment, vector] as const)
const decrypting = cases.filter(([, vector]) => vector.status && !isAllZero(base64(vector['decrypted-dek'])))
const wrongCommitment = cases.filter(([, vector]) => !vector.status)
const zeroKey = cases.filter(([, vector]) => vector.status && isAllZero(base64(vector['decrypted-dek'])))

describe('key commitment known answers of the official SDKs', () => {
  it('has vectors of each kind', () => {
    expect(tests).toHaveLength(46)
    expect([decrypting.length, wrongCommitment.length, zeroKey.length]).toEqual([35, 5, 6])
    for (const writer of ['[C ESDK]', '[Python ESDK]', '[Java ESDK]', 'JS encrypt']) {
      expect(decrypting.some(([comment]) => comment.includes(writer)), writer).toBe(true)
    }
  })

  it.each(cases)('%s: our derivation gives its encryption key and commitment', async (_comment, vector) => {
    const ciphertext = base64(vector.ciphertext)
    const { header, suiteData: stored } = parseHeader(ciphertext)
    const suite = suiteFromMessage(header.algorithmSuiteId)
    const { encryptionKey, commitment } = await deriveKeys(nodeBackend, suite, base64(vector['decrypted-dek']), base64(vector['message-id']))
    if (!vector.status) {
      // Its data key is not the one the message was written with.
      expect(Buffer.from(commitment).equals(stored)).toBe(false)
      return
    }
    expect(Buffer.from(commitment).toString('base64')).toBe(vector.commitment)
    expect(Buffer.from(stored).toString('base64')).toBe(vector.commitment)
    // Only the first 21 vectors give the encryption key.
    if (vector['content-encryption-key'] !== undefined) expect(Buffer.from(encryptionKey).toString('base64')).toBe(vector['content-encryption-key'])
  })

  describe.each(decrypting)('%s', (_comment, vector) => {
    const ciphertext = base64(vector.ciphertext)
    const expected = vector['plaintext-frames']!.join('')

    it('decrypts, one-shot and as a stream, with the Node and browser builds', async () => {
      for (const run of [decrypt, browser.decrypt]) {
        const { plaintext, header } = await run(dataKeyKeyring(vector), ciphertext)
        expect(Buffer.from(plaintext).toString()).toBe(expected)
        expect(Buffer.from(header.messageId).toString('base64')).toBe(vector['message-id'])
        expect(header.encryptionContext).toEqual(vector['encryption-context'])
        expect(header.version).toBe(2)
      }
      for (const stream of [decryptStream(dataKeyKeyring(vector)), browser.decryptStream(dataKeyKeyring(vector))]) {
        const plaintext = await readAll(chunked(ciphertext, 7).pipeThrough(stream))
        expect(Buffer.from(plaintext).toString()).toBe(expected)
      }
    })
  })

  it.each(wrongCommitment)('%s: refused with COMMITMENT_MISMATCH', async (_comment, vector) => {
    for (const run of [decrypt, browser.decrypt]) {
      const error = await rejectionOf(run(dataKeyKeyring(vector), base64(vector.ciphertext)))
      expect(error).toBeInstanceOf(EnvelopeError)
      expect((error as EnvelopeError).code).toBe('COMMITMENT_MISMATCH')
    }
  })

  it.each(zeroKey)('%s: refused, as kms-envelope takes a data key of zeros for one already used', async (_comment, vector) => {
    const error = await rejectionOf(decrypt(dataKeyKeyring(vector), base64(vector.ciphertext)))
    expect(error).toBeInstanceOf(EnvelopeError)
    expect((error as EnvelopeError).code).toBe('KEYRING_FAILURE')
    expect((error as Error).message).toContain('data key of zeros')
  })
})
