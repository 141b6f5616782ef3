// Messages written by the official AWS Encryption SDKs for Python, Java and C, under raw AES keys, raw RSA keys with
// each padding the SDK has, and a multi-keyring, for every suite; some non-framed (test/fixtures/official-sdks/README.md).
import { readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import {
  ALGORITHM_SUITE_IDS,
  decrypt,
  decryptStream,
  EnvelopeError,
  MultiKeyring,
  RawAesKeyring,
  RawRsaKeyring,
  type Keyring,
  type MessageHeader,
  type RsaPadding,
} from '../src/index.js'
import * as browser from '../src/browser.js'
import { COMMITTING, expectPkcs1Refused, rejectionOf, SIGNING } from './helpers/fixtures.js'
import type { SdkMessage, SdkVectors } from './helpers/sdk-vectors.js'
import { chunked, readAll } from './helpers/web-streams.js'

const WRITERS = { python: 'Python SDK 4.0.4', java: 'Java SDK 2.4.1', c: 'C SDK 2.4.1' } as const
const SHAPES = ['empty', 'one-byte frames', 'three whole frames', '1,000 bytes, non-framed from the other SDK']
const fromBase64 = (text: string) => new Uint8Array(Buffer.from(text, 'base64'))

/** The keyring classes of one build. */
type Build = { RawAesKeyring: typeof RawAesKeyring; RawRsaKeyring: typeof RawRsaKeyring; MultiKeyring: typeof MultiKeyring }

/** kms-envelope's match for a keyring the other SDK wrote with, from either build. */
function keyringFor(vectors: SdkVectors, name: string, build: Build): Keyring {
  if (name === 'multi') {
    return new build.MultiKeyring({ generator: keyringFor(vectors, 'aes-256', build), children: [keyringFor(vectors, 'rsa-OAEP-SHA256', build)] })
  }
  const names = { keyNamespace: vectors.namespace, keyName: name }
  if (name.startsWith('aes-')) return new build.RawAesKeyring({ ...names, wrappingKey: fromBase64(vectors.keys[name]!) })
  return new build.RawRsaKeyring({ ...names, privateKey: vectors.keys['rsa-private']!, padding: name.slice(4) as RsaPadding })
}

const NODE: Build = { RawAesKeyring, RawRsaKeyring, MultiKeyring }
const BROWSER = { RawAesKeyring: browser.RawAesKeyring, RawRsaKeyring: browser.RawRsaKeyring, MultiKeyring: browser.MultiKeyring } as unknown as Build

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
  expect(header.encryptedDataKeys.map((key) => key.providerId)).toEqual(Array(wrappedKeys).fill(vectors.namespace))
}

describe.each(Object.entries(WRITERS))('messages written by the official %s SDK', (file, writer) => {
  const vectors = JSON.parse(readFileSync(new URL(`fixtures/official-sdks/${file}.json`, import.meta.url), 'utf8')) as SdkVectors
  const cases = vectors.messages.map((message) => [`0x${message.suite.toString(16).padStart(4, '0')} ${message.keyring} ${message.shape}`, message] as const)
  const options = { commitmentPolicy: 'REQUIRE_ENCRYPT_ALLOW_DECRYPT' as const, encryptionContext: vectors.context }

  it(`are the ${writer}'s, one of each shape for every suite and keyring`, () => {
    expect(vectors.writer).toBe(`the ${writer}`)
    const keyrings = [...new Set(vectors.messages.map((message) => message.keyring))]
    expect(keyrings).toContain('multi')
    expect(keyrings).toContain('rsa-PKCS1')
    expect(new Set(cases.map(([name]) => name)).size).toBe(ALGORITHM_SUITE_IDS.length * keyrings.length * SHAPES.length)
    expect(new Set(vectors.messages.map((message) => message.shape))).toEqual(new Set(SHAPES))
  })

  describe.each(cases)('%s', (_name, message) => {
    const ciphertext = fromBase64(message.ciphertext)
    const expected = Buffer.from(vectors.plaintexts[message.shape]!, 'base64')

    it('decrypts, and the header says what the SDK wrote', async () => {
      const { plaintext, header } = await decrypt(keyringFor(vectors, message.keyring, NODE), ciphertext, options)
      expect(Buffer.from(plaintext).equals(expected)).toBe(true)
      expectHeader(header, vectors, message)
      if (message.keyring !== 'multi') return
      for (const alone of ['aes-256', 'rsa-OAEP-SHA256']) {
        const { plaintext: again } = await decrypt(keyringFor(vectors, alone, NODE), ciphertext, options)
        expect(Buffer.from(again).equals(expected)).toBe(true)
      }
    })

    it('decrypts as a stream, in pieces of 100 bytes', async () => {
      const stream = decryptStream(keyringFor(vectors, message.keyring, NODE), options)
      const plaintext = await readAll(chunked(ciphertext, 100).pipeThrough(stream))
      expect(Buffer.from(plaintext).equals(expected)).toBe(true)
      expectHeader(await stream.header, vectors, message)
    })

    it('decrypts with the browser build (WebCrypto), which has no RSA PKCS1', async () => {
      const outcome = browser.decrypt(keyringFor(vectors, message.keyring, BROWSER), ciphertext, options)
      if (message.keyring === 'rsa-PKCS1') return expectPkcs1Refused(outcome)
      const { plaintext, header } = await outcome
      expect(Buffer.from(plaintext).equals(expected)).toBe(true)
      expectHeader(header, vectors, message)
    })

    it('is refused with its last byte changed, or with another context expected', async () => {
      const changed = ciphertext.slice()
      changed[changed.length - 1]! ^= 1
      const tampered = await rejectionOf(decrypt(keyringFor(vectors, message.keyring, NODE), changed, options))
      expect(tampered).toBeInstanceOf(EnvelopeError)
      expect((tampered as EnvelopeError).code).toBe(SIGNING.has(message.suite) ? 'SIGNATURE_INVALID' : 'FRAME_AUTHENTICATION_FAILED')
      const [key, value] = Object.entries(vectors.context)[0]!
      const otherContext = { ...options, encryptionContext: { [key]: `${value}!` } }
      const mismatch = await rejectionOf(decrypt(keyringFor(vectors, message.keyring, NODE), ciphertext, otherContext))
      expect((mismatch as EnvelopeError).code).toBe('ENCRYPTION_CONTEXT_MISMATCH')
    })
  })
})
