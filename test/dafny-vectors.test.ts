// Messages written by another implementation than the official JavaScript SDK: the Dafny one (the official .NET
// SDK is generated from it), through its raw AES, raw RSA, multi and hierarchical keyrings and its required
// encryption context materials manager (test/fixtures/dafny/README.md).
import { readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import {
  decrypt,
  decryptStream,
  EnvelopeError,
  MultiKeyring,
  type NoDecryptableKeyError,
  RawAesKeyring,
  RawRsaKeyring,
  RequiredEncryptionContextMaterialsManager,
  type Keyring,
  type MaterialsManager,
  type MessageHeader,
  type RsaPadding,
} from '../src/index.js'
import * as browser from '../src/browser.js'
import { StaticBranchKeyKeyring } from './support/branch-key.js'
import { rejectionOf } from './helpers/fixtures.js'
import { chunked, readAll } from './helpers/web-streams.js'

const root = new URL('fixtures/dafny/', import.meta.url)
const readJson = (name: string) => JSON.parse(readFileSync(new URL(name, root), 'utf8'))
const readBytes = (file: string) => new Uint8Array(readFileSync(new URL(file.replace(/^file:\/\//, ''), root)))

type KeyDescription =
  | { type: 'raw'; key: string; 'provider-id': string; 'encryption-algorithm': 'aes' | 'rsa'; 'padding-algorithm'?: string; 'padding-hash'?: string }
  | { type: 'multi-keyring'; generator?: KeyDescription; childKeyrings: KeyDescription[] }
  | { type: 'required-encryption-context-cmm'; underlying: KeyDescription; requiredEncryptionContextKeys: string[] }
  | { type: 'aws-kms-hierarchy'; key: string }

interface Scenario {
  ciphertext: string
  result: string
  algorithmSuiteId: string
  'frame-size': number
  description: string
  decryptKeyDescription: KeyDescription
  'reproduced-encryption-context': Record<string, string>
}

const decryptTests = readJson('decrypt-manifest.json').tests as Record<string, { 'decryption-scenario': Scenario }>
const encryptTests = readJson('encrypt-manifest.json').tests as Record<string, { 'encryption-scenario': { 'encryption-context': Record<string, string> } }>
const keys = readJson('keys.json').keys as Record<string, Record<string, string>>

const SIGNING_SUITES = new Set([0x0214, 0x0346, 0x0378, 0x0578])
const COMMITTING_SUITES = new Set([0x0478, 0x0578])

function rsaPadding(description: { 'padding-algorithm'?: string; 'padding-hash'?: string }): RsaPadding {
  if (description['padding-algorithm'] === 'pkcs1') return 'PKCS1'
  if (description['padding-algorithm'] !== 'oaep-mgf1') throw new Error(`unknown padding ${description['padding-algorithm']}`)
  return `OAEP-${description['padding-hash']!.toUpperCase()}` as RsaPadding
}

function keyringFor(description: KeyDescription): Keyring {
  switch (description.type) {
    case 'raw': {
      const entry = keys[description.key]!
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
      const entry = keys[description.key]!
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

/** The provider IDs the description's keyrings write, in the order a multi-keyring writes them. */
function providerIds(description: KeyDescription): string[] {
  switch (description.type) {
    case 'raw':
      return [description['provider-id']]
    case 'multi-keyring':
      return [...(description.generator === undefined ? [] : providerIds(description.generator)), ...description.childKeyrings.flatMap(providerIds)]
    case 'required-encryption-context-cmm':
      return providerIds(description.underlying)
    case 'aws-kms-hierarchy':
      return ['aws-kms-hierarchy']
  }
}

/** The raw keyrings of a multi-keyring, each of which alone must decrypt. */
function rawKeyrings(description: KeyDescription): KeyDescription[] {
  if (description.type === 'multi-keyring') return [...(description.generator === undefined ? [] : [description.generator]), ...description.childKeyrings]
  return []
}

function expectHeader(header: MessageHeader, id: string, scenario: Scenario): void {
  const suiteId = Number.parseInt(scenario.algorithmSuiteId, 16)
  const description = scenario.decryptKeyDescription
  const requiredKeys = description.type === 'required-encryption-context-cmm' ? description.requiredEncryptionContextKeys : []
  const context = encryptTests[id]!['encryption-scenario']['encryption-context']
  const stored = Object.fromEntries(Object.entries(context).filter(([key]) => !requiredKeys.includes(key)))
  const { 'aws-crypto-public-key': publicKey, ...rest } = header.encryptionContext
  expect(rest).toEqual(stored)
  if (SIGNING_SUITES.has(suiteId)) expect(Buffer.from(publicKey!, 'base64').length).toBe(suiteId === 0x0214 ? 33 : 49)
  else expect(publicKey).toBeUndefined()
  expect(header.algorithmSuiteId).toBe(suiteId)
  expect(header.version).toBe(COMMITTING_SUITES.has(suiteId) ? 2 : 1)
  expect(header.contentType).toBe('framed')
  // The manifests say 512, but every message has 4096-byte frames (the official JavaScript SDK reads the same).
  expect(scenario['frame-size']).toBe(512)
  expect(header.frameLength).toBe(4096)
  expect(header.encryptedDataKeys.map((edk) => edk.providerId)).toEqual(providerIds(description))
}

const vectors = Object.entries(decryptTests).map(([id, test]) => [id, test['decryption-scenario']] as const)
const requiredContextVectors = vectors.filter(([, scenario]) => scenario.decryptKeyDescription.type === 'required-encryption-context-cmm')

describe('vectors written by the Dafny implementation of the AWS Encryption SDK', () => {
  it('cover every suite with every kind of keyring kept', () => {
    const kinds = new Map<string, Set<string>>()
    for (const [, scenario] of vectors) {
      const description = scenario.decryptKeyDescription
      const kind = description.type === 'raw' ? `${description['encryption-algorithm']} ${description['padding-algorithm'] ?? ''}` : description.type
      kinds.set(kind, (kinds.get(kind) ?? new Set()).add(scenario.algorithmSuiteId))
    }
    expect([...kinds.keys()].sort()).toEqual(['aes ', 'aws-kms-hierarchy', 'multi-keyring', 'required-encryption-context-cmm', 'rsa oaep-mgf1', 'rsa pkcs1'])
    for (const suites of kinds.values()) expect(suites.size).toBe(11)
    expect(vectors).toHaveLength(198)
  })

  describe.each(vectors)('%s', (id, scenario) => {
    const ciphertext = readBytes(scenario.ciphertext)
    const expected = Buffer.from(readBytes(scenario.result))
    const options = {
      commitmentPolicy: 'REQUIRE_ENCRYPT_ALLOW_DECRYPT' as const,
      encryptionContext: scenario['reproduced-encryption-context'],
    }

    it(`decrypts (${scenario.description}, suite ${scenario.algorithmSuiteId})`, async () => {
      const { plaintext, header } = await decrypt(decryptorFor(scenario.decryptKeyDescription), ciphertext, options)
      expect(Buffer.from(plaintext).equals(expected)).toBe(true)
      expectHeader(header, id, scenario)
      for (const raw of rawKeyrings(scenario.decryptKeyDescription)) {
        const alone = await decrypt(keyringFor(raw), ciphertext, options)
        expect(Buffer.from(alone.plaintext).equals(expected)).toBe(true)
      }
    })

    it('decrypts with the browser build (WebCrypto), which has no RSA PKCS1', async () => {
      const description = scenario.decryptKeyDescription
      const outcome = browser.decrypt(decryptorFor(description), ciphertext, options)
      if (description.type === 'raw' && description['padding-algorithm'] === 'pkcs1') {
        const error = (await rejectionOf(outcome)) as NoDecryptableKeyError
        expect(error.code).toBe('NO_DECRYPTABLE_KEY')
        expect(error.failures.map((failure) => (failure.error as EnvelopeError).code)).toEqual(['UNSUPPORTED_OPERATION'])
        return
      }
      const { plaintext, header } = await outcome
      expect(Buffer.from(plaintext).equals(expected)).toBe(true)
      expectHeader(header, id, scenario)
    })

    it('decrypts as a stream', async () => {
      const stream = decryptStream(decryptorFor(scenario.decryptKeyDescription), options)
      const plaintext = await readAll(chunked(ciphertext, 1000).pipeThrough(stream))
      expect(Buffer.from(plaintext).equals(expected)).toBe(true)
      expectHeader(await stream.header, id, scenario)
    })
  })

  describe.each(requiredContextVectors)('%s without its reproduced context', (_id, scenario) => {
    const ciphertext = readBytes(scenario.ciphertext)
    const description = scenario.decryptKeyDescription as Extract<KeyDescription, { type: 'required-encryption-context-cmm' }>
    const reproduced = scenario['reproduced-encryption-context']
    const decryptWith = (encryptionContext: Record<string, string>, decryptor = decryptorFor(description)) =>
      decrypt(decryptor, ciphertext, { commitmentPolicy: 'REQUIRE_ENCRYPT_ALLOW_DECRYPT', encryptionContext }).then(
        () => undefined,
        (error: unknown) => error,
      )

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
