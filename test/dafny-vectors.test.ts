// Messages written by another implementation than the official JavaScript SDK: the Dafny one (the official .NET
// SDK is generated from it), through its raw AES, raw RSA, multi and hierarchical keyrings and its required
// encryption context materials manager (test/fixtures/dafny/README.md).
import { describe, expect, it } from 'vitest'
import {
  decrypt,
  decryptStream,
  EnvelopeError,
  MultiKeyring,
  RawAesKeyring,
  RawRsaKeyring,
  RequiredEncryptionContextMaterialsManager,
  type Keyring,
  type MaterialsManager,
} from '../src/index.js'
import * as browser from '../src/browser.js'
import { StaticBranchKeyKeyring } from './support/branch-key.js'
import { expectPkcs1Refused, rejectionOf } from './helpers/fixtures.js'
import { chunked, readAll } from './helpers/web-streams.js'
import {
  dafnyKeys,
  dafnyVectors,
  expectDafnyHeader,
  headerSummary,
  readDafnyFile,
  rsaPadding,
  type KeyDescription,
} from './helpers/dafny-vectors.js'

function keyringFor(description: KeyDescription): Keyring {
  switch (description.type) {
    case 'raw': {
      const entry = dafnyKeys[description.key]!
      const names = { keyNamespace: description['provider-id'], keyName: entry['key-id']! }
      if (description['encryption-algorithm'] === 'aes') {
        return new RawAesKeyring({ ...names, wrappingKey: new Uint8Array(Buffer.from(entry.material!, 'base64')) })
      }
      return new RawRsaKeyring({ ...names, privateKey: entry.material!, padding: rsaPadding(description) })
    }
    case 'multi-keyring':
      return new MultiKeyring({
        ...(description.generator === undefined ? {} : { generator: keyringFor(description.generator) }),
        children: description.childKeyrings.map(keyringFor),
      })
    case 'aws-kms-hierarchy': {
      const entry = dafnyKeys[description.key]!
      const key = new Uint8Array(Buffer.from(entry.branchKey!, 'base64'))
      return new StaticBranchKeyKeyring({ branchKeyId: entry['key-id']!, version: entry.branchKeyVersion!, key })
    }
    default:
      throw new Error(`${description.type} is described by a materials manager`)
  }
}

function decryptorFor(description: KeyDescription): Keyring | MaterialsManager {
  if (description.type !== 'required-encryption-context-cmm') return keyringFor(description)
  return new RequiredEncryptionContextMaterialsManager({
    requiredKeys: description.requiredEncryptionContextKeys,
    keyring: keyringFor(description.underlying),
  })
}

/** The raw keyrings of a multi-keyring, each of which alone must decrypt. */
function rawKeyrings(description: KeyDescription): KeyDescription[] {
  if (description.type === 'multi-keyring') return [...(description.generator === undefined ? [] : [description.generator]), ...description.childKeyrings]
  return []
}

const requiredContextVectors = dafnyVectors.filter(([, scenario]) => scenario.decryptKeyDescription.type === 'required-encryption-context-cmm')

describe('vectors written by the Dafny implementation of the AWS Encryption SDK', () => {
  it('cover every suite with every kind of keyring kept', () => {
    const kinds = new Map<string, Set<string>>()
    for (const [, scenario] of dafnyVectors) {
      const description = scenario.decryptKeyDescription
      const kind = description.type === 'raw' ? `${description['encryption-algorithm']} ${description['padding-algorithm'] ?? ''}` : description.type
      kinds.set(kind, (kinds.get(kind) ?? new Set()).add(scenario.algorithmSuiteId))
    }
    expect([...kinds.keys()].sort()).toEqual(['aes ', 'aws-kms-hierarchy', 'multi-keyring', 'required-encryption-context-cmm', 'rsa oaep-mgf1', 'rsa pkcs1'])
    for (const suites of kinds.values()) expect(suites.size).toBe(11)
    expect(dafnyVectors).toHaveLength(198)
  })

  describe.each(dafnyVectors)('%s', (id, scenario) => {
    const ciphertext = readDafnyFile(scenario.ciphertext)
    const expected = Buffer.from(readDafnyFile(scenario.result))
    const options = {
      commitmentPolicy: 'REQUIRE_ENCRYPT_ALLOW_DECRYPT' as const,
      encryptionContext: scenario['reproduced-encryption-context'],
    }

    it(`decrypts (${scenario.description}, suite ${scenario.algorithmSuiteId})`, async () => {
      const { plaintext, header } = await decrypt(decryptorFor(scenario.decryptKeyDescription), ciphertext, options)
      expect(Buffer.from(plaintext).equals(expected)).toBe(true)
      expectDafnyHeader(headerSummary(header), id, scenario)
      for (const raw of rawKeyrings(scenario.decryptKeyDescription)) {
        const alone = await decrypt(keyringFor(raw), ciphertext, options)
        expect(Buffer.from(alone.plaintext).equals(expected)).toBe(true)
      }
    })

    it('decrypts with the browser build (WebCrypto), which has no RSA PKCS1', async () => {
      const description = scenario.decryptKeyDescription
      const outcome = browser.decrypt(decryptorFor(description), ciphertext, options)
      if (description.type === 'raw' && description['padding-algorithm'] === 'pkcs1') return expectPkcs1Refused(outcome)
      const { plaintext, header } = await outcome
      expect(Buffer.from(plaintext).equals(expected)).toBe(true)
      expectDafnyHeader(headerSummary(header), id, scenario)
    })

    it('decrypts as a stream', async () => {
      const stream = decryptStream(decryptorFor(scenario.decryptKeyDescription), options)
      const plaintext = await readAll(chunked(ciphertext, 1000).pipeThrough(stream))
      expect(Buffer.from(plaintext).equals(expected)).toBe(true)
      expectDafnyHeader(headerSummary(await stream.header), id, scenario)
    })
  })

  describe.each(requiredContextVectors)('%s without its reproduced context', (_id, scenario) => {
    const ciphertext = readDafnyFile(scenario.ciphertext)
    const description = scenario.decryptKeyDescription as Extract<KeyDescription, { type: 'required-encryption-context-cmm' }>
    const reproduced = scenario['reproduced-encryption-context']
    const decryptWith = (encryptionContext: Record<string, string>, decryptor = decryptorFor(description)) =>
      rejectionOf(decrypt(decryptor, ciphertext, { commitmentPolicy: 'REQUIRE_ENCRYPT_ALLOW_DECRYPT', encryptionContext }))

    it('is refused when a required pair is missing or differs', async () => {
      for (const key of description.requiredEncryptionContextKeys) {
        const { [key]: _dropped, ...without } = reproduced
        const missing = await decryptWith(without)
        expect(missing).toBeInstanceOf(EnvelopeError)
        expect((missing as EnvelopeError).code).toBe('ENCRYPTION_CONTEXT_MISMATCH')
        // The keyring binds the whole context, unstored pairs included.
        const differs = await decryptWith({ ...reproduced, [key]: `${reproduced[key]}!` })
        expect(differs).toBeInstanceOf(EnvelopeError)
        expect((differs as EnvelopeError).code).toBe('NO_DECRYPTABLE_KEY')
      }
    })

    it('is refused by the bare keyring, which cannot know the unstored pairs', async () => {
      const error = await decryptWith({}, keyringFor(description.underlying))
      expect(error).toBeInstanceOf(EnvelopeError)
      expect((error as EnvelopeError).code).toBe('NO_DECRYPTABLE_KEY')
    })
  })
})
