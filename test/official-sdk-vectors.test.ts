// Messages written by the official AWS Encryption SDKs for Python, Java and C, under raw AES keys, raw RSA keys with
// each padding the SDK has, and a multi-keyring, for every suite; some non-framed. And by the AWS Encryption CLI,
// under an AWS KMS key and a multi-Region key, on a KMS emulator started from the keys saved with them
// (test/fixtures/official-sdks/README.md).
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  ALGORITHM_SUITE_IDS,
  decrypt,
  decryptStream,
  defaultKmsClientSupplier,
  EnvelopeError,
  KmsKeyring,
  KmsMrkKeyring,
  MultiKeyring,
  RawAesKeyring,
  RawRsaKeyring,
  type Keyring,
  type MessageHeader,
  type RsaPadding,
} from '../src/index.js'
import * as browser from '../src/browser.js'
import { startKmsEmulator, type KmsEmulator } from '../src/testing/index.js'
import { COMMITTING, expectPkcs1Refused, rejectionOf, SIGNING } from './helpers/fixtures.js'
import type { SdkMessage, SdkVectors } from './helpers/sdk-vectors.js'
import { chunked, readAll } from './helpers/web-streams.js'

const WRITERS = {
  python: 'Python SDK 4.0.4',
  java: 'Java SDK 2.4.1',
  c: 'C SDK 2.4.1',
  cli: 'AWS Encryption CLI 4.3.0 (Python SDK 3.3.0)',
} as const
const SHAPES = ['empty', 'one-byte frames', 'three whole frames', '1,000 bytes, non-framed from the other SDK']
const KMS_KEYRINGS = ['kms', 'kms-mrk']
const fromBase64 = (text: string) => new Uint8Array(Buffer.from(text, 'base64'))

/** The keyring classes of one build. */
type Build = {
  RawAesKeyring: typeof RawAesKeyring
  RawRsaKeyring: typeof RawRsaKeyring
  MultiKeyring: typeof MultiKeyring
  KmsKeyring: typeof KmsKeyring
  KmsMrkKeyring: typeof KmsMrkKeyring
  defaultKmsClientSupplier: typeof defaultKmsClientSupplier
}

/**
 * kms-envelope's match for a keyring the other SDK wrote with, from either build; the KMS keyrings call the emulator
 * at `kmsEndpoint`, a multi-Region key's messages decrypting through its replica, in the replica's Region.
 */
function keyringFor(vectors: SdkVectors, name: string, build: Build, kmsEndpoint?: string): Keyring {
  if (name === 'multi') {
    return new build.MultiKeyring({ generator: keyringFor(vectors, 'aes-256', build), children: [keyringFor(vectors, 'rsa-OAEP-SHA256', build)] })
  }
  if (KMS_KEYRINGS.includes(name)) {
    const credentials = { accessKeyId: 'AKIDVECTORS', secretAccessKey: 'vectors' } // the emulator does not check signatures
    const clientSupplier = build.defaultKmsClientSupplier({ clientConfig: { endpoint: kmsEndpoint, credentials } })
    if (name === 'kms') return new build.KmsKeyring({ generatorKeyId: vectors.kms!.key, clientSupplier })
    return new build.KmsMrkKeyring({ keyId: vectors.kms!.replica, clientSupplier })
  }
  const names = { keyNamespace: vectors.namespace, keyName: name }
  if (name.startsWith('aes-')) return new build.RawAesKeyring({ ...names, wrappingKey: fromBase64(vectors.keys[name]!) })
  return new build.RawRsaKeyring({ ...names, privateKey: vectors.keys['rsa-private']!, padding: name.slice(4) as RsaPadding })
}

const NODE: Build = { RawAesKeyring, RawRsaKeyring, MultiKeyring, KmsKeyring, KmsMrkKeyring, defaultKmsClientSupplier }
const BROWSER = browser as unknown as Build

/** What the header must say of a message the SDK wrote: suite, version, framing, context, one data key per keyring. */
function expectHeader(header: MessageHeader, vectors: SdkVectors, message: SdkMessage) {
  const { 'aws-crypto-public-key': signingKey, ...context } = header.encryptionContext
  expect(context).toEqual(vectors.context)
  expect(signingKey !== undefined).toBe(SIGNING.has(message.suite))
  expect(header.algorithmSuiteId).toBe(message.suite)
  expect(header.version).toBe(COMMITTING.has(message.suite) ? 2 : 1)
  expect(header.contentType).toBe(message.frameLength === 0 ? 'non-framed' : 'framed')
  expect(header.frameLength).toBe(message.frameLength)
  const wrappedKeys = message.keyring === 'multi' ? 2 : 1
  const providerId = KMS_KEYRINGS.includes(message.keyring) ? 'aws-kms' : vectors.namespace
  expect(header.encryptedDataKeys.map((key) => key.providerId)).toEqual(Array(wrappedKeys).fill(providerId))
}

describe.each(Object.entries(WRITERS).map(([file, writer]) => [writer, file] as const))('messages written by the official %s', (writer, file) => {
  const vectors = JSON.parse(readFileSync(new URL(`fixtures/official-sdks/${file}.json`, import.meta.url), 'utf8')) as SdkVectors
  const cases = vectors.messages.map((message) => [`0x${message.suite.toString(16).padStart(4, '0')} ${message.keyring} ${message.shape}`, message] as const)
  const options = { commitmentPolicy: 'REQUIRE_ENCRYPT_ALLOW_DECRYPT' as const, encryptionContext: vectors.context }
  // The KMS emulator the saved keys are in, started from a copy of them (it writes its state file as it goes).
  let kms: KmsEmulator | undefined
  let stateFolder: string | undefined
  beforeAll(async () => {
    if (vectors.kms === undefined) return
    stateFolder = mkdtempSync(join(tmpdir(), 'kms-envelope-sdk-vectors-'))
    writeFileSync(join(stateFolder, 'kms.json'), JSON.stringify(vectors.kms.state))
    kms = await startKmsEmulator({ regions: vectors.kms.regions, statePath: join(stateFolder, 'kms.json') })
  })
  afterAll(async () => {
    await kms?.close()
    if (stateFolder !== undefined) rmSync(stateFolder, { recursive: true, force: true })
  })
  const node = (name: string) => keyringFor(vectors, name, NODE, kms?.endpoint)

  it(`are the ${writer}'s, one of each shape for every suite and keyring`, () => {
    expect(vectors.writer).toBe(`the ${writer}`)
    const keyrings = [...new Set(vectors.messages.map((message) => message.keyring))]
    if (file === 'cli') expect(keyrings).toEqual(KMS_KEYRINGS)
    else expect(keyrings).toEqual(expect.arrayContaining(['multi', 'rsa-PKCS1']))
    expect(new Set(cases.map(([name]) => name)).size).toBe(ALGORITHM_SUITE_IDS.length * keyrings.length * SHAPES.length)
    expect(new Set(vectors.messages.map((message) => message.shape))).toEqual(new Set(SHAPES))
  })

  describe.each(cases)('%s', (_name, message) => {
    const ciphertext = fromBase64(message.ciphertext)
    const expected = Buffer.from(vectors.plaintexts[message.shape]!, 'base64')

    it('decrypts, and the header says what the SDK wrote', async () => {
      const replicaCalls = () => kms?.callCount({ operation: 'Decrypt', region: vectors.kms!.regions[1] })
      const before = replicaCalls()
      const { plaintext, header } = await decrypt(node(message.keyring), ciphertext, options)
      expect(Buffer.from(plaintext).equals(expected)).toBe(true)
      expectHeader(header, vectors, message)
      // Written under the multi-Region key in its first Region, decrypted by the replica, in the replica's.
      if (message.keyring === 'kms-mrk') expect(replicaCalls()).toBe(before! + 1)
      if (message.keyring !== 'multi') return
      for (const alone of ['aes-256', 'rsa-OAEP-SHA256']) {
        const { plaintext: again } = await decrypt(node(alone), ciphertext, options)
        expect(Buffer.from(again).equals(expected)).toBe(true)
      }
    })

    it('decrypts as a stream, in pieces of 100 bytes', async () => {
      const stream = decryptStream(node(message.keyring), options)
      const plaintext = await readAll(chunked(ciphertext, 100).pipeThrough(stream))
      expect(Buffer.from(plaintext).equals(expected)).toBe(true)
      expectHeader(await stream.header, vectors, message)
    })

    it('decrypts with the browser build (WebCrypto), which has no RSA PKCS1', async () => {
      const outcome = browser.decrypt(keyringFor(vectors, message.keyring, BROWSER, kms?.endpoint), ciphertext, options)
      if (message.keyring === 'rsa-PKCS1') return expectPkcs1Refused(outcome)
      const { plaintext, header } = await outcome
      expect(Buffer.from(plaintext).equals(expected)).toBe(true)
      expectHeader(header, vectors, message)
    })

    it('is refused with its last byte changed, or with another context expected', async () => {
      const changed = ciphertext.slice()
      changed[changed.length - 1]! ^= 1
      const tampered = await rejectionOf(decrypt(node(message.keyring), changed, options))
      expect(tampered).toBeInstanceOf(EnvelopeError)
      expect((tampered as EnvelopeError).code).toBe(SIGNING.has(message.suite) ? 'SIGNATURE_INVALID' : 'FRAME_AUTHENTICATION_FAILED')
      const [key, value] = Object.entries(vectors.context)[0]!
      const otherContext = { ...options, encryptionContext: { [key]: `${value}!` } }
      const mismatch = await rejectionOf(decrypt(node(message.keyring), ciphertext, otherContext))
      expect((mismatch as EnvelopeError).code).toBe('ENCRYPTION_CONTEXT_MISMATCH')
    })
  })
})
