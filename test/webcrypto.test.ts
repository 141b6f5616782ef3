// The browser build's WebCrypto backend, run here on Node's WebCrypto and checked against the node:crypto
// backend on the same inputs (primitive by primitive, then whole messages both ways), plus the async frame
// engine's one-shot and stream branches. test/browser.test.ts runs the real bundle in Chromium.
import { constants, createPublicKey, generateKeyPairSync, privateDecrypt, publicEncrypt, randomBytes, sign as nodeSign, verify as nodeVerify, type KeyObject } from 'node:crypto'
import { runInNewContext } from 'node:vm'
import fc from 'fast-check'
import { describe, expect, it, vi } from 'vitest'
import { checkRsaEncryptBits, element, INTEGER, OCTET_STRING, readElement, RSA_ALGORITHM_IDENTIFIER, rsaSpkiModulusBits, SEQUENCE, spkiFromPkcs1, toPem } from '../src/backend/der.js'
import { bigIntToBytes, compressPoint, CURVES, decompressPoint, derToP1363, p1363ToDer } from '../src/backend/ec.js'
import { nodeBackend } from '../src/backend/node.js'
import { rsaOaepEncrypt } from '../src/backend/noble.js'
import type { AeadKey, AsyncAeadKey, CryptoBackend, RsaPadding } from '../src/backend/types.js'
import { webCryptoBackend } from '../src/backend/webcrypto.js'
import { decryptWith } from '../src/decrypt.js'
import { encryptWith } from '../src/encrypt.js'
import type { CurveName } from '../src/suites.js'
import { decryptStreamWith } from '../src/stream-decrypt.js'
import { encryptStreamWith } from '../src/stream-encrypt.js'
import { chunked, readAll } from './helpers/web-streams.js'
import { craftV1, dataKeyKeyring } from './helpers/craft.js'
import { isAllZero } from '../src/format/bytes.js'
import {
  ConfigurationError,
  DefaultMaterialsManager,
  EnvelopeError,
  KeyringError,
  KmsRsaKeyring,
  NoDecryptableKeyError,
  RawAesKeyring,
  RawRsaKeyring,
  UnsupportedOperationError,
  type CommitmentPolicy,
  type EncryptOptions,
  type Keyring,
  type KmsClientLike,
  type MaterialsManager,
} from '../src/index.js'
import { COMMITTING, SIGNING, recordingAllocations, rejectionOf, seededRandom, withoutSubtle, withSubtleMethod } from './helpers/fixtures.js'
import { katKms, KMS_RSA_KAT } from './helpers/kms-rsa-kat.js'
import { aesKey, decryptPolicyFor, KEY_NAMESPACE, keyNameOf, officialDecrypt, officialEncrypt, officialKeyring } from './helpers/official.js'

const ALL_SUITES = [0x0014, 0x0046, 0x0078, 0x0114, 0x0146, 0x0178, 0x0214, 0x0346, 0x0378, 0x0478, 0x0578]
const OAEP: readonly RsaPadding[] = ['OAEP-SHA1', 'OAEP-SHA256', 'OAEP-SHA384', 'OAEP-SHA512']
const hex16 = (suite: number) => `0x${suite.toString(16).padStart(4, '0')}`
const encryptPolicy = (suite: number): CommitmentPolicy => (COMMITTING.has(suite) ? 'REQUIRE_ENCRYPT_REQUIRE_DECRYPT' : 'FORBID_ENCRYPT_ALLOW_DECRYPT')
const bytes = (length: number, seed = 1) => Uint8Array.from({ length }, (_, index) => (index * 31 + seed) & 0xff)
const equal = (a: Uint8Array, b: Uint8Array) => Buffer.from(a).equals(Buffer.from(b))
const codeOf = async (promise: Promise<unknown>) => ((await rejectionOf(promise)) as { code?: string }).code

const rsa = generateKeyPairSync('rsa', {
  modulusLength: 2048,
  publicKeyEncoding: { type: 'spki', format: 'pem' },
  privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
})
const aesKeyring = (length = 32) => new RawAesKeyring({ keyNamespace: 'wc', keyName: `aes-${length}`, wrappingKey: bytes(length, length) })
const rsaKeyring = (padding: RsaPadding = 'OAEP-SHA256') => new RawRsaKeyring({ keyNamespace: 'wc', keyName: 'rsa', ...rsa, padding })

/**
 * `inner`, with the signing key of its encryption materials replaced by `signingKey`, and the context's public key by
 * `publicKey` when given (the keyring must then wrap without the context, as RSA does).
 */
function managerSigningWith(inner: MaterialsManager, signingKey: unknown, publicKey?: Uint8Array): MaterialsManager {
  return {
    async getEncryptionMaterials(request, backend) {
      const materials = await inner.getEncryptionMaterials(request, backend)
      const encryptionContext =
        publicKey === undefined ? materials.encryptionContext : { ...materials.encryptionContext, 'aws-crypto-public-key': Buffer.from(publicKey).toString('base64') }
      return { ...materials, encryptionContext, signingKey }
    },
    getDecryptionMaterials: (request, backend) => inner.getDecryptionMaterials(request, backend),
  }
}

describe('WebCrypto backend primitives against node:crypto', () => {
  it('HKDF and SHA-2 digests agree', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom('sha256', 'sha384', 'sha512' as const),
        fc.uint8Array({ minLength: 16, maxLength: 64 }),
        fc.uint8Array({ maxLength: 64 }),
        fc.uint8Array({ maxLength: 40 }),
        fc.integer({ min: 1, max: 64 }),
        async (hash, ikm, salt, info, length) => {
          const outputs = [{ info, length }, { info: Uint8Array.of(1), length: 32 }]
          const ours = await webCryptoBackend.hkdf(hash, ikm, salt, outputs)
          const reference = nodeBackend.hkdf(hash, ikm, salt, outputs) as Uint8Array[]
          expect(ours.map((key) => Buffer.from(key).toString('hex'))).toEqual(reference.map((key) => Buffer.from(key).toString('hex')))
          expect(equal(await webCryptoBackend.digest(hash, ikm), nodeBackend.digest(hash, ikm) as Uint8Array)).toBe(true)
        },
      ),
      { numRuns: 40 },
    )
  })

  it.each(['imported', 'refused'] as const)('an AES-GCM key keeps no copy of its bytes once WebCrypto has %s them; the caller\'s stay as they were', async (outcome) => {
    const { subtle } = globalThis.crypto
    const given: Uint8Array[] = []
    const importKey = (...args: Parameters<SubtleCrypto['importKey']>) => {
      const data = args[1] as ArrayBuffer | ArrayBufferView
      given.push(ArrayBuffer.isView(data) ? new Uint8Array(data.buffer, data.byteOffset, data.byteLength) : new Uint8Array(data))
      return outcome === 'imported' ? subtle.importKey(...args) : Promise.reject(new DOMException('no', 'DataError'))
    }
    const key = bytes(32, 7)
    await withSubtleMethod('importKey', importKey, async () => {
      const aead = webCryptoBackend.aeadKey(key) as AsyncAeadKey
      const sealing = aead.seal(new Uint8Array(12), new Uint8Array(0), bytes(3, 1), new Uint8Array(19), 0)
      if (outcome === 'imported') await sealing
      else await rejectionOf(sealing)
    })
    expect(given).toHaveLength(1)
    expect(given[0]).toHaveLength(32)
    expect(isAllZero(given[0]!)).toBe(true)
    expect(equal(key, bytes(32, 7))).toBe(true)
  })

  it.each([16, 24, 32])('AES-%i-GCM seals as node:crypto does, opens its output, and refuses tampering', async (keyLength) => {
    const key = bytes(keyLength, 9)
    const ours = webCryptoBackend.aeadKey(key) as AsyncAeadKey
    const reference = nodeBackend.aeadKey(key) as AeadKey
    expect(ours.async).toBe(true)
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ minLength: 12, maxLength: 12 }), fc.uint8Array({ maxLength: 50 }), fc.uint8Array({ maxLength: 300 }), async (iv, aad, plaintext) => {
        const sealed = new Uint8Array(plaintext.length + 16)
        const expected = new Uint8Array(plaintext.length + 16)
        await ours.seal(iv, aad, plaintext, sealed, 0)
        reference.seal(iv, aad, plaintext, expected, 0)
        expect(equal(sealed, expected)).toBe(true)
        const opened = new Uint8Array(plaintext.length + 3)
        expect(await ours.open(iv, aad, sealed.subarray(0, plaintext.length), sealed.subarray(plaintext.length), opened, 3)).toBe(true)
        expect(equal(opened.subarray(3), plaintext)).toBe(true)
        // A tag that does not follow its ciphertext in memory works too (the backend joins them).
        expect(await ours.open(iv, aad, sealed.slice(0, plaintext.length), sealed.slice(plaintext.length), opened, 3)).toBe(true)
        sealed[sealed.length - 1]! ^= 1
        expect(await ours.open(iv, aad, sealed.subarray(0, plaintext.length), sealed.subarray(plaintext.length), opened, 3)).toBe(false)
      }),
      { numRuns: 25 },
    )
  })

  it.each(OAEP)('RSA %s: either backend decrypts what the other encrypts; PEM PKCS#1, DER and derived public keys work', async (padding) => {
    const dataKey = bytes(32, 5)
    const nodePublic = nodeBackend.importRsaPublicKey(rsa.publicKey)
    const nodePrivate = nodeBackend.importRsaPrivateKey(rsa.privateKey)
    const publicKeys = [
      webCryptoBackend.importRsaPublicKey(rsa.publicKey),
      webCryptoBackend.importRsaPublicKey(createPublicKey(rsa.publicKey).export({ type: 'pkcs1', format: 'pem' })),
      webCryptoBackend.importRsaPublicKey(new Uint8Array(createPublicKey(rsa.publicKey).export({ type: 'spki', format: 'der' }))),
      webCryptoBackend.rsaPublicFromPrivate(webCryptoBackend.importRsaPrivateKey(rsa.privateKey)),
    ]
    for (const publicKey of publicKeys) {
      const wrapped = await webCryptoBackend.rsaEncrypt(publicKey, padding, dataKey)
      expect(equal(nodeBackend.rsaDecrypt(nodePrivate, padding, wrapped, 32) as Uint8Array, dataKey)).toBe(true)
    }
    const pkcs1Private = (nodePrivate as KeyObject).export({ type: 'pkcs1', format: 'pem' })
    for (const privateKey of [rsa.privateKey, pkcs1Private, new Uint8Array((nodePrivate as KeyObject).export({ type: 'pkcs8', format: 'der' }))]) {
      const wrapped = nodeBackend.rsaEncrypt(nodePublic, padding, dataKey) as Uint8Array
      expect(equal(await webCryptoBackend.rsaDecrypt(webCryptoBackend.importRsaPrivateKey(privateKey), padding, wrapped, 32), dataKey)).toBe(true)
    }
  })

  // getRandomValues fills at most 65536 bytes a call; keyrings are handed the backend and may ask for more.
  it('random bytes: any length, every byte filled, and a typed refusal where there is no getRandomValues', async () => {
    for (const length of [0, 1, 32, 65_536, 65_537, 200_000]) expect(webCryptoBackend.randomBytes(length).length).toBe(length)
    const large = webCryptoBackend.randomBytes(200_000)
    for (let start = 0; start < large.length; start += 65_536) expect(large.subarray(start, start + 65_536).some((byte) => byte !== 0), `from byte ${start}`).toBe(true)
    // Each position is filled: across 64 draws, none is zero in all of them.
    const draws = Array.from({ length: 64 }, () => webCryptoBackend.randomBytes(32))
    for (let position = 0; position < 32; position++) expect(draws.some((draw) => draw[position] !== 0), `byte ${position}`).toBe(true)
    const original = globalThis.crypto
    Object.defineProperty(globalThis, 'crypto', { value: {}, configurable: true })
    try {
      expect(() => webCryptoBackend.randomBytes(32)).toThrow(UnsupportedOperationError)
      expect(() => webCryptoBackend.randomBytes(32)).toThrow('kms-envelope needs crypto.getRandomValues.')
    } finally {
      Object.defineProperty(globalThis, 'crypto', { value: original, configurable: true })
    }
  })

  it('timingSafeEqual: equal bytes only, and never bytes of another length, whatever they hold', () => {
    for (const backend of [nodeBackend, webCryptoBackend]) {
      expect(backend.timingSafeEqual(Uint8Array.of(1, 2, 3), Uint8Array.of(1, 2, 3)), backend.name).toBe(true)
      expect(backend.timingSafeEqual(Uint8Array.of(1, 2, 3), Uint8Array.of(1, 2, 4)), backend.name).toBe(false)
      // A longer one whose extra bytes are zeros would compare equal byte by byte over the shorter.
      expect(backend.timingSafeEqual(Uint8Array.of(1, 0), Uint8Array.of(1)), backend.name).toBe(false)
      expect(backend.timingSafeEqual(Uint8Array.of(1), Uint8Array.of(1, 0)), backend.name).toBe(false)
      expect(backend.timingSafeEqual(new Uint8Array(0), new Uint8Array(0)), backend.name).toBe(true)
    }
  })

  it('RSA refusals: PKCS1, bad keys, a wrapped key of the wrong length, and garbage', async () => {
    const publicKey = webCryptoBackend.importRsaPublicKey(rsa.publicKey)
    const privateKey = webCryptoBackend.importRsaPrivateKey(rsa.privateKey)
    expect(await rejectionOf(Promise.resolve().then(() => webCryptoBackend.rsaEncrypt(publicKey, 'PKCS1', bytes(16))))).toBeInstanceOf(
      UnsupportedOperationError,
    )
    const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' })
    const badPublic = ['nope', rsa.privateKey, ec.publicKey.export({ type: 'spki', format: 'pem' }), new Uint8Array([1, 2, 3]), 7]
    for (const key of badPublic) expect(() => webCryptoBackend.importRsaPublicKey(key)).toThrow(ConfigurationError)
    const wrapped = await webCryptoBackend.rsaEncrypt(publicKey, 'OAEP-SHA256', bytes(16))
    // Private keys are read with the rest of the decrypt side, on first use.
    const badPrivate = ['nope', rsa.publicKey, ec.privateKey.export({ type: 'pkcs8', format: 'pem' }), new Uint8Array([1]), {}]
    for (const key of badPrivate) {
      const handle = webCryptoBackend.importRsaPrivateKey(key)
      expect(await rejectionOf(Promise.resolve(webCryptoBackend.rsaDecrypt(handle, 'OAEP-SHA256', wrapped, 16)))).toBeInstanceOf(ConfigurationError)
      const derived = webCryptoBackend.rsaPublicFromPrivate(handle)
      expect(await rejectionOf(Promise.resolve(webCryptoBackend.rsaEncrypt(derived, 'OAEP-SHA256', bytes(16))))).toBeInstanceOf(ConfigurationError)
    }
    // An EC key is told by its algorithm, not left for WebCrypto to refuse.
    const ecPrivate = webCryptoBackend.importRsaPrivateKey(ec.privateKey.export({ type: 'pkcs8', format: 'pem' }))
    expect(await rejectionOf(Promise.resolve(webCryptoBackend.rsaDecrypt(ecPrivate, 'OAEP-SHA256', wrapped, 16)))).toMatchObject({
      code: 'INVALID_CONFIGURATION',
      message: 'The RSA private key could not be read: expected an RSA key.',
    })
    expect(await rejectionOf(Promise.resolve(webCryptoBackend.rsaDecrypt(privateKey, 'OAEP-SHA256', wrapped, 32)))).toBeInstanceOf(KeyringError)
    expect(await rejectionOf(Promise.resolve(webCryptoBackend.rsaDecrypt(privateKey, 'OAEP-SHA1', wrapped, 16)))).toBeInstanceOf(KeyringError)
  })

  it('an RSA key is imported once per OAEP hash; an import WebCrypto failed is tried again on next use', async () => {
    const { subtle } = globalThis.crypto
    const importKey = subtle.importKey.bind(subtle)
    let failNext = true
    const spy = vi.spyOn(subtle, 'importKey').mockImplementation((async (...args: Parameters<SubtleCrypto['importKey']>) => {
      if (args[0] === 'pkcs8' && failNext) {
        failNext = false
        throw new DOMException('the platform failed', 'OperationError')
      }
      return importKey(...args)
    }) as SubtleCrypto['importKey'])
    try {
      const privateKey = webCryptoBackend.importRsaPrivateKey(rsa.privateKey)
      const wrapped = new Uint8Array(publicEncrypt({ key: rsa.publicKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256' }, bytes(32)))
      expect(await rejectionOf(Promise.resolve().then(() => webCryptoBackend.rsaDecrypt(privateKey, 'OAEP-SHA256', wrapped, 32)))).toMatchObject({
        code: 'INVALID_CONFIGURATION',
        message: 'The RSA private key could not be read: WebCrypto refused it (OperationError).',
      })
      for (let use = 0; use < 3; use++) expect(equal(await webCryptoBackend.rsaDecrypt(privateKey, 'OAEP-SHA256', wrapped, 32), bytes(32))).toBe(true)
      const pkcs8Imports = () => spy.mock.calls.filter(([format]) => format === 'pkcs8').length
      expect(pkcs8Imports()).toBe(2) // the failed one, then one for the three uses
      await rejectionOf(Promise.resolve().then(() => webCryptoBackend.rsaDecrypt(privateKey, 'OAEP-SHA1', wrapped, 32)))
      expect(pkcs8Imports()).toBe(3) // another hash, another import
    } finally {
      spy.mockRestore()
    }
  })

  it("a caller's own CryptoKey: RSA-OAEP of the padding's hash and of the right half only", async () => {
    const { subtle } = globalThis.crypto
    const pair = (await subtle.generateKey(
      { name: 'RSA-OAEP', modulusLength: 2048, publicExponent: Uint8Array.of(1, 0, 1), hash: 'SHA-256' },
      true,
      ['encrypt', 'decrypt'],
    )) as CryptoKeyPair
    const publicKey = webCryptoBackend.importRsaPublicKey(pair.publicKey)
    const privateKey = webCryptoBackend.importRsaPrivateKey(pair.privateKey)
    const wrapped = await webCryptoBackend.rsaEncrypt(publicKey, 'OAEP-SHA256', bytes(16))
    expect(equal(await webCryptoBackend.rsaDecrypt(privateKey, 'OAEP-SHA256', wrapped, 16), bytes(16))).toBe(true)
    // Imported for SHA-256, the key cannot serve another OAEP hash: WebCrypto binds it to one.
    expect(await rejectionOf(Promise.resolve().then(() => webCryptoBackend.rsaEncrypt(publicKey, 'OAEP-SHA1', bytes(16))))).toMatchObject({
      code: 'INVALID_CONFIGURATION',
      message: 'The RSA public CryptoKey was imported for SHA-256; this padding needs SHA-1.',
    })
    // The other half, or a key of another algorithm, is refused as it is handed over.
    expect(() => webCryptoBackend.importRsaPublicKey(pair.privateKey)).toThrow(ConfigurationError)
    const pss = (await subtle.generateKey({ name: 'RSA-PSS', modulusLength: 2048, publicExponent: Uint8Array.of(1, 0, 1), hash: 'SHA-256' }, true, ['sign', 'verify'])) as CryptoKeyPair
    expect(() => webCryptoBackend.importRsaPublicKey(pss.publicKey)).toThrow(ConfigurationError)
    // What WebCrypto itself refuses to import (here an RSAPublicKey with a third integer, which the modulus-size
    // check reads past) is an unreadable key, never WebCrypto's own DOMException.
    const spki = new Uint8Array(createPublicKey(rsa.publicKey).export({ type: 'spki', format: 'der' }))
    const outer = readElement(spki, 0, SEQUENCE, 'spki')
    const algorithm = readElement(outer.content, 0, SEQUENCE, 'algorithm')
    const bitString = readElement(outer.content, algorithm.end, 0x03, 'key')
    const rsaKey = readElement(bitString.content, 1, SEQUENCE, 'RSAPublicKey')
    const modulus = readElement(rsaKey.content, 0, INTEGER, 'modulus')
    const exponent = readElement(rsaKey.content, modulus.end, INTEGER, 'exponent')
    const padded = element(
      SEQUENCE,
      outer.content.subarray(0, algorithm.end),
      element(0x03, Uint8Array.of(0), element(SEQUENCE, rsaKey.content.subarray(0, exponent.end), element(INTEGER, Uint8Array.of(5)))),
    )
    const refused = webCryptoBackend.importRsaPublicKey(padded)
    expect(await rejectionOf(Promise.resolve().then(() => webCryptoBackend.rsaEncrypt(refused, 'OAEP-SHA256', bytes(16))))).toMatchObject({
      code: 'INVALID_CONFIGURATION',
      message: 'The RSA public key could not be read: WebCrypto refused it (DataError).',
    })
    // A private CryptoKey alone gives its public half only when it is extractable: say so, rather than fail in WebCrypto.
    const derived = webCryptoBackend.rsaPublicFromPrivate(webCryptoBackend.importRsaPrivateKey(pair.privateKey))
    expect(equal(await webCryptoBackend.rsaDecrypt(privateKey, 'OAEP-SHA256', await webCryptoBackend.rsaEncrypt(derived, 'OAEP-SHA256', bytes(16)), 16), bytes(16))).toBe(true)
    const sealed = await subtle.importKey('pkcs8', await subtle.exportKey('pkcs8', pair.privateKey), { name: 'RSA-OAEP', hash: 'SHA-256' }, false, ['decrypt'])
    const underived = webCryptoBackend.rsaPublicFromPrivate(webCryptoBackend.importRsaPrivateKey(sealed))
    const error = await rejectionOf(Promise.resolve().then(() => webCryptoBackend.rsaEncrypt(underived, 'OAEP-SHA256', bytes(16))))
    expect(error).toMatchObject({
      code: 'INVALID_CONFIGURATION',
      message: 'The RSA private CryptoKey is not extractable, so its public half cannot be derived: pass publicKey as well.',
    })
  })

  it('the public half of a private key is read from PKCS#8, never from a JWK export (whose strings nothing clears); a CryptoKey\'s export is zeroed', async () => {
    const { subtle } = globalThis.crypto
    const exportKey = subtle.exportKey.bind(subtle)
    const exported: { format: string; key: ArrayBuffer | JsonWebKey }[] = []
    const spy = vi.spyOn(subtle, 'exportKey').mockImplementation((async (format: string, key: CryptoKey) => {
      const result = await exportKey(format as 'pkcs8', key)
      exported.push({ format, key: result })
      return result
    }) as typeof subtle.exportKey)
    try {
      const pair = (await subtle.generateKey({ name: 'RSA-OAEP', modulusLength: 2048, publicExponent: Uint8Array.of(1, 0, 1), hash: 'SHA-256' }, true, ['encrypt', 'decrypt'])) as CryptoKeyPair
      const pem = toPem(new Uint8Array(await exportKey('pkcs8', pair.privateKey)), 'PRIVATE KEY')
      for (const privateKey of [pair.privateKey, pem, rsa.privateKey]) {
        exported.length = 0
        const derived = webCryptoBackend.rsaPublicFromPrivate(webCryptoBackend.importRsaPrivateKey(privateKey))
        const wrapped = await webCryptoBackend.rsaEncrypt(derived, 'OAEP-SHA256', bytes(32, 9))
        const opened = await webCryptoBackend.rsaDecrypt(webCryptoBackend.importRsaPrivateKey(privateKey), 'OAEP-SHA256', wrapped, 32)
        expect(equal(opened, bytes(32, 9))).toBe(true)
        // Only a CryptoKey is exported, as PKCS#8, and that copy of the private key is zeroed once read.
        expect(exported.map(({ format }) => format)).toEqual(privateKey === pair.privateKey ? ['pkcs8'] : [])
        for (const { key } of exported) expect(isAllZero(new Uint8Array(key as ArrayBuffer))).toBe(true)
      }
    } finally {
      spy.mockRestore()
    }
    // PKCS#8 of an RSA key whose RSAPrivateKey is no DER SEQUENCE: its public half cannot be read, and it says where.
    const broken = toPem(element(SEQUENCE, Uint8Array.of(INTEGER, 1, 0), RSA_ALGORITHM_IDENTIFIER, element(OCTET_STRING, Uint8Array.of(INTEGER, 1, 5))), 'PRIVATE KEY')
    const underived = webCryptoBackend.rsaPublicFromPrivate(webCryptoBackend.importRsaPrivateKey(broken))
    expect(await rejectionOf(Promise.resolve().then(() => webCryptoBackend.rsaEncrypt(underived, 'OAEP-SHA256', bytes(16))))).toMatchObject({
      code: 'INVALID_CONFIGURATION',
      message: 'The RSA private key could not be read: RSAPrivateKey: expected DER tag 0x30.',
    })
  })

  it.each(['P-256', 'P-384'] as const)('ECDSA %s: keys, signatures and point encodings interoperate with node:crypto', async (curve: CurveName) => {
    const hash = curve === 'P-256' ? 'sha256' : 'sha384'
    const message = bytes(5000, 3)
    const pair = await webCryptoBackend.generateSigningKey(curve)
    const signature = await webCryptoBackend.signMessage(curve, pair.privateKey, message)
    const nodeKey = await nodeBackend.importVerificationKey(curve, pair.publicKey)
    expect(nodeVerify(hash, message, { key: nodeKey as KeyObject, dsaEncoding: 'der' }, signature)).toBe(true)

    const nodePair = generateKeyPairSync('ec', { namedCurve: curve })
    const uncompressed = new Uint8Array(nodePair.publicKey.export({ format: 'der', type: 'spki' })).slice(-(curve === 'P-256' ? 65 : 97))
    const compressed = compressPoint(uncompressed)
    expect(equal(decompressPoint(curve, compressed), uncompressed)).toBe(true)
    const verificationKey = await webCryptoBackend.importVerificationKey(curve, compressed)
    const nodeSignature = nodeSign(hash, message, { key: nodePair.privateKey, dsaEncoding: 'der' })
    // WebCrypto verifies whole messages (as it signs them), not the streams' @noble/curves verifier.
    const verify = vi.spyOn(globalThis.crypto.subtle, 'verify')
    try {
      expect(await webCryptoBackend.verifyMessage(curve, verificationKey, message, nodeSignature)).toBe(true)
      expect(verify).toHaveBeenCalledTimes(1)
    } finally {
      verify.mockRestore()
    }
    expect(await webCryptoBackend.verifyMessage(curve, verificationKey, bytes(5000, 4), nodeSignature)).toBe(false)
    expect(await webCryptoBackend.verifyMessage(curve, verificationKey, message, nodeSignature.subarray(1))).toBe(false)
    expect(() => webCryptoBackend.createSigner(curve, pair.privateKey)).toThrow(UnsupportedOperationError)
    expect(() => webCryptoBackend.createVerifier(curve, verificationKey)).toThrow(UnsupportedOperationError)
    // Not points: wrong prefix, wrong length, an x not below the prime.
    const size = curve === 'P-256' ? 32 : 48
    for (const bad of [Uint8Array.of(4, ...compressed.subarray(1)), compressed.subarray(1), Uint8Array.of(3, ...new Uint8Array(size).fill(0xff))]) {
      expect(() => decompressPoint(curve, bad)).toThrow(TypeError)
    }
    // x from the prime up: refused as such, also where x minus the prime is a point's x (which node:crypto takes).
    const { p } = CURVES[curve]
    let onCurve = 1n
    while (!(await nodeBackend.importVerificationKey(curve, Uint8Array.of(2, ...bigIntToBytes(onCurve, size))).then(() => true, () => false))) onCurve++
    for (const x of [p, p + onCurve, (1n << BigInt(8 * size)) - 1n]) {
      expect(() => decompressPoint(curve, Uint8Array.of(2, ...bigIntToBytes(x, size)))).toThrow(`not a compressed ${curve} point: x is not below the field prime`)
    }
    // About half of all x have no point: decompression agrees with node:crypto's point check on each.
    let offCurve = 0
    for (let x = 1; x <= 24; x++) {
      const candidate = new Uint8Array(1 + size)
      candidate[0] = 2 + (x & 1)
      candidate[size] = x
      const nodeAccepts = await nodeBackend.importVerificationKey(curve, candidate).then(() => true, () => false)
      const oursAccepts = (() => {
        try {
          decompressPoint(curve, candidate)
          return true
        } catch {
          return false
        }
      })()
      expect(oursAccepts, `x = ${x}`).toBe(nodeAccepts)
      if (!nodeAccepts) offCurve++
    }
    expect(offCurve).toBeGreaterThan(3)
  })

  it('RSA keys under 2048 bits: both backends refuse to encrypt under one, and decrypt what older writers wrapped under one', async () => {
    const small = generateKeyPairSync('rsa', { modulusLength: 1024, publicKeyEncoding: { type: 'spki', format: 'pem' }, privateKeyEncoding: { type: 'pkcs8', format: 'pem' } })
    // A message as writers without the check made it: the data key wrapped with RSA-OAEP-SHA256 under the small key.
    const olderWriter: Keyring = {
      async onEncrypt(materials) {
        const dataKey = new Uint8Array(randomBytes(materials.suite.keyLength))
        const wrapped = publicEncrypt({ key: small.publicKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256' }, dataKey)
        const edk = { providerId: 'wc', providerInfo: new TextEncoder().encode('rsa-1024'), ciphertext: new Uint8Array(wrapped) }
        return { ...materials, plaintextDataKey: dataKey, encryptedDataKeys: [edk] }
      },
      onDecrypt: async (materials) => materials,
    }
    const { ciphertext } = await encryptWith(nodeBackend, olderWriter, bytes(100), { algorithmSuite: 0x0478 })
    for (const backend of [nodeBackend, webCryptoBackend]) {
      for (const keys of [small, { privateKey: small.privateKey }]) {
        const keyring = new RawRsaKeyring({ keyNamespace: 'wc', keyName: 'rsa-1024', ...keys, padding: 'OAEP-SHA256' })
        const refused = await rejectionOf(encryptWith(backend, keyring, bytes(100), { algorithmSuite: 0x0478 }))
        expect(refused).toBeInstanceOf(ConfigurationError)
        expect((refused as Error).message).toBe('The RSA public key has a 1024-bit modulus; encrypting needs at least 2048 bits.')
        expect(equal((await decryptWith(backend, keyring, ciphertext)).plaintext, bytes(100))).toBe(true)
      }
    }
  })

  it('a private key encrypted with a passphrase is named as such on both backends, without quoting it', async () => {
    const encrypted = (type: 'pkcs8' | 'pkcs1') =>
      generateKeyPairSync('rsa', { modulusLength: 2048, publicKeyEncoding: { type: 'spki', format: 'pem' }, privateKeyEncoding: { type, format: 'pem', cipher: 'aes-256-cbc', passphrase: 'pw' } }).privateKey
    for (const pem of [encrypted('pkcs8'), encrypted('pkcs1')]) {
      for (const [backend, advice] of [
        [nodeBackend, 'pass crypto.createPrivateKey({ key, passphrase }) instead.'],
        [webCryptoBackend, 'pass it decrypted (WebCrypto cannot read encrypted keys).'],
      ] as const) {
        const error = await rejectionOf(Promise.resolve().then(() => backend.rsaDecrypt(backend.importRsaPrivateKey(pem), 'OAEP-SHA256', new Uint8Array(256), 32)))
        expect(error).toBeInstanceOf(ConfigurationError)
        expect((error as Error).message).toBe(`The RSA private key could not be read: it is encrypted with a passphrase; ${advice}`)
      }
    }
  })

  it('DER ⇄ IEEE P1363 signatures: exact round trips, strict DER only', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 48, maxLength: 48 }), fc.uint8Array({ minLength: 48, maxLength: 48 }), (r, s) => {
        fc.pre(r.some((byte) => byte !== 0) && s.some((byte) => byte !== 0))
        const raw = new Uint8Array([...r, ...s])
        const der = p1363ToDer(raw)
        expect(equal(derToP1363(der, 48) as Uint8Array, raw)).toBe(true)
        expect(derToP1363(der, 32) === undefined || isAllZero(r.slice(0, 16))).toBe(true)
      }),
    )
    // The shortest integers, a leading zero, the longest (48 bytes with a leading zero: the most content).
    for (const [r, s] of [[[1], [0x7f]], [[0x80], [1, 0]], [new Array(48).fill(0xff), new Array(48).fill(0x80)]] as number[][][]) {
      const raw = new Uint8Array(96)
      raw.set(r!, 48 - r!.length)
      raw.set(s!, 96 - s!.length)
      const der = p1363ToDer(raw)
      expect(der.subarray(0, 2)).toEqual(Uint8Array.of(0x30, der.length - 2))
      expect(equal(derToP1363(der, 48) as Uint8Array, raw)).toBe(true)
    }
    const good = p1363ToDer(new Uint8Array(64).fill(1))
    const notDer = [
      Uint8Array.of(0x31, ...good.subarray(1)), // not a SEQUENCE
      Uint8Array.of(0x30, good[1]! + 1, ...good.subarray(2), 0), // trailing byte inside
      Uint8Array.of(...good, 0), // trailing byte after
      Uint8Array.of(0x30, good[1]! - 1, ...good.subarray(2)), // a sequence length short of its content
      Uint8Array.of(0x30, good[1]! + 1, ...good.subarray(2)), // a sequence length past its content
      Uint8Array.of(0x30, 0x06, 0x02, 0x01, 0x00, 0x02, 0x01, 0x01), // r = 0
      Uint8Array.of(0x30, 0x07, 0x02, 0x02, 0x00, 0x01, 0x02, 0x01, 0x01), // needless leading zero
      Uint8Array.of(0x30, 0x06, 0x02, 0x01, 0x81, 0x02, 0x01, 0x01), // negative r
      Uint8Array.of(0x30, 0x81, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x01), // long form for a short length
      new Uint8Array(0),
      Uint8Array.of(0x30), // no length
      Uint8Array.of(0x30, 0x81), // a long-form length cut off
      Uint8Array.of(0x30, 0x82, 0x00, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x01), // two length bytes: never needed
      Uint8Array.of(0x30, 0x06, 0x04, 0x01, 0x01, 0x02, 0x01, 0x01), // r not an INTEGER
      Uint8Array.of(0x30, 0x05, 0x02, 0x00, 0x02, 0x01, 0x01), // r of no bytes
      Uint8Array.of(0x30, 0x07, 0x02, 0x81, 0x01, 0x01, 0x02, 0x01, 0x01), // an INTEGER length in long form
      Uint8Array.of(0x30, 0x04, 0x02, 0x01, 0x01, 0x02), // s cut off
      Uint8Array.of(0x30, 0x06, 0x02, 0x01, 0x01, 0x02, 0x05, 0x01), // s longer than the sequence
    ]
    for (const der of notDer) expect(derToP1363(der, 32)).toBeUndefined()
  })
})

describe('DER, as the WebCrypto backend writes and reads RSA keys', () => {
  it("an element's length takes the fewest bytes DER allows, and the element reads back", () => {
    const boundaries = fc.constantFrom(127, 128, 255, 256, 511, 512, 513, 767, 768, 65535, 65536, 70000)
    fc.assert(
      fc.property(fc.oneof(fc.integer({ min: 0, max: 1100 }), boundaries), (length) => {
        const encoded = element(OCTET_STRING, new Uint8Array(length).fill(7))
        const lengthBytes =
          length < 0x80 ? [length] : length < 0x100 ? [0x81, length] : length < 0x10000 ? [0x82, length >> 8, length & 0xff] : [0x83, length >> 16, (length >> 8) & 0xff, length & 0xff]
        expect(Array.from(encoded.subarray(0, 1 + lengthBytes.length))).toEqual([OCTET_STRING, ...lengthBytes])
        expect(encoded.length).toBe(1 + lengthBytes.length + length)
        const read = readElement(encoded, 0, OCTET_STRING, 'element')
        expect([read.content.length, read.end]).toEqual([length, encoded.length])
      }),
    )
  })

  it('the modulus size of an RSA key, also when the modulus is not a whole number of bytes (no leading zero in DER)', () => {
    for (const modulusLength of [2047, 2048, 2050]) {
      // OpenSSL may make a modulus a bit shorter than asked for: the key's own size is the answer.
      const { publicKey } = generateKeyPairSync('rsa', { modulusLength })
      const bits = publicKey.asymmetricKeyDetails?.modulusLength
      expect(bits).toBeGreaterThanOrEqual(modulusLength - 1)
      expect(rsaSpkiModulusBits(publicKey.export({ type: 'spki', format: 'der' })), `${modulusLength} bits asked for`).toBe(bits)
    }
    // Made-up moduli (only their size is read): the top byte's bits count, and a zero modulus has none.
    const spkiWith = (modulus: number[]) => spkiFromPkcs1(element(SEQUENCE, element(INTEGER, Uint8Array.from(modulus)), element(INTEGER, Uint8Array.of(1, 0, 1))))
    const tail = new Array<number>(256).fill(0xa5)
    for (const [modulus, bits] of [
      [[0x01, ...tail], 2049],
      [[0x7f, ...tail], 2055],
      [[0x00, 0x80, ...tail], 2056],
      [[0x00, 0x01], 1],
      [[0x00], 0],
    ] as const) {
      expect(rsaSpkiModulusBits(spkiWith([...modulus])), `top byte ${modulus[0]}, ${modulus.length} bytes`).toBe(bits)
    }
  })

  it('an RSA key without its public exponent, or with one that is not an INTEGER, is not a key (every length fits)', () => {
    const modulus = element(INTEGER, Uint8Array.of(0, 0x80, ...new Array<number>(255).fill(0xa5)))
    const keys: Array<[string, Uint8Array]> = [
      ['no exponent', spkiFromPkcs1(element(SEQUENCE, modulus))],
      ['an OCTET STRING for an exponent', spkiFromPkcs1(element(SEQUENCE, modulus, element(OCTET_STRING, Uint8Array.of(1, 0, 1))))],
    ]
    expect(rsaSpkiModulusBits(spkiFromPkcs1(element(SEQUENCE, modulus, element(INTEGER, Uint8Array.of(1, 0, 1)))))).toBe(2048)
    for (const [what, spki] of keys) {
      expect(() => rsaSpkiModulusBits(spki), what).toThrow(/^publicExponent: /)
      expect(() => webCryptoBackend.importRsaPublicKey(spki), what).toThrow(ConfigurationError)
    }
  })

  it('a PKCS#8 RSA key without its privateKey OCTET STRING is refused for that, before WebCrypto sees it', async () => {
    const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 })
    const pkcs8 = new Uint8Array(privateKey.export({ type: 'pkcs8', format: 'der' }))
    const outer = readElement(pkcs8, 0, SEQUENCE, 'PrivateKeyInfo')
    const version = readElement(outer.content, 0, INTEGER, 'version')
    const algorithm = readElement(outer.content, version.end, SEQUENCE, 'algorithm')
    const inner = readElement(outer.content, algorithm.end, OCTET_STRING, 'privateKey')
    const upTo = (end: number) => outer.content.subarray(0, end)
    const decryptWithKey = (key: Uint8Array) => Promise.resolve().then(() => webCryptoBackend.rsaDecrypt(webCryptoBackend.importRsaPrivateKey(key), 'OAEP-SHA256', bytes(256), 32))
    // Rebuilt whole, the key still reads: what follows is refused for the change alone.
    await expect(decryptWithKey(element(SEQUENCE, upTo(inner.end)))).rejects.toThrow(/^RSA OAEP-SHA256 decryption of the data key failed\.$/)
    for (const [what, key] of [
      ['no privateKey', element(SEQUENCE, upTo(algorithm.end))],
      ['a SEQUENCE for privateKey', element(SEQUENCE, upTo(algorithm.end), element(SEQUENCE, inner.content))],
    ] as const) {
      expect(await rejectionOf(decryptWithKey(key)), what).toMatchObject({
        code: 'INVALID_CONFIGURATION',
        message: 'The RSA private key could not be read: privateKey: expected DER tag 0x4.',
      })
    }
  })
})

describe('whole messages: WebCrypto backend ⇄ node:crypto backend', () => {
  const keyrings: Array<[string, () => Keyring]> = [
    ['raw AES-128', () => aesKeyring(16)],
    ['raw AES-192', () => aesKeyring(24)],
    ['raw AES-256', () => aesKeyring(32)],
    ['raw RSA OAEP-SHA1', () => rsaKeyring('OAEP-SHA1')],
    ['raw RSA OAEP-SHA512', () => rsaKeyring('OAEP-SHA512')],
  ]
  it.each(ALL_SUITES.flatMap((suite) => keyrings.map(([name, make]) => [hex16(suite), name, suite, make] as const)))(
    '%s, %s, both ways',
    async (_suiteName, _keyringName, suite, make) => {
      const keyring = make()
      for (const [length, frameLength] of [[0, 4096], [1, 4096], [10_000, 1000], [300, 1]] as const) {
        const data = bytes(length, suite)
        const options = { algorithmSuite: suite, commitmentPolicy: encryptPolicy(suite), frameLength, encryptionContext: { a: 'b', 'ü': '✓' } }
        const fromWeb = await encryptWith(webCryptoBackend, keyring, data, options)
        const fromNode = await encryptWith(nodeBackend, keyring, data, options)
        const read = { commitmentPolicy: 'REQUIRE_ENCRYPT_ALLOW_DECRYPT' as const, encryptionContext: { a: 'b' } }
        expect(equal((await decryptWith(nodeBackend, keyring, fromWeb.ciphertext, read)).plaintext, data)).toBe(true)
        expect(equal((await decryptWith(webCryptoBackend, keyring, fromNode.ciphertext, read)).plaintext, data)).toBe(true)
      }
    },
  )

  it('tampering is refused with the same codes as on node:crypto', async () => {
    for (const suite of [0x0478, 0x0578, 0x0014]) {
      const options = { algorithmSuite: suite, commitmentPolicy: encryptPolicy(suite), frameLength: 100 }
      const { ciphertext } = await encryptWith(nodeBackend, aesKeyring(), bytes(1000), options)
      for (const offset of [10, ciphertext.length - 120, ciphertext.length - 1, Math.floor(ciphertext.length / 2)]) {
        const altered = ciphertext.slice()
        altered[offset]! ^= 1
        const read = { commitmentPolicy: 'REQUIRE_ENCRYPT_ALLOW_DECRYPT' as const }
        const expected = await codeOf(decryptWith(nodeBackend, aesKeyring(), altered, read))
        expect(await codeOf(decryptWith(webCryptoBackend, aesKeyring(), altered, read)), `${hex16(suite)} byte ${offset}`).toBe(expected)
      }
    }
  })
})

/**
 * node:crypto's AES-GCM behind asynchronous calls that answer after `delayMs(iv)` (by default 0-3 ms at random, so
 * calls finish out of order), reading copies of their inputs as a backend that works elsewhere would.
 */
function slowAsyncBackend(options: { randomBytes?: CryptoBackend['randomBytes']; delayMs?: (iv: Uint8Array) => number } = {}): CryptoBackend {
  const { randomBytes, delayMs = () => Math.random() * 3 } = options
  const after = (iv: Uint8Array) => new Promise((resolve) => setTimeout(resolve, delayMs(iv)))
  const slowKey = (key: Uint8Array): AsyncAeadKey => {
    const inner = nodeBackend.aeadKey(key) as AeadKey
    return {
      async: true,
      async seal(iv, aad, plaintext, out, offset) {
        const [ivCopy, aadCopy, input] = [iv.slice(), aad.slice(), plaintext.slice()]
        await after(ivCopy)
        inner.seal(ivCopy, aadCopy, input, out, offset)
      },
      async open(iv, aad, ciphertext, tag, out, offset) {
        const [ivCopy, aadCopy, input, tagCopy] = [iv.slice(), aad.slice(), ciphertext.slice(), tag.slice()]
        await after(ivCopy)
        return inner.open(ivCopy, aadCopy, input, tagCopy, out, offset)
      },
      dispose: () => inner.dispose?.(),
    }
  }
  // Derived message keys too (node:crypto's adoptAeadKey would hand the frames a synchronous key).
  return { ...nodeBackend, ...(randomBytes === undefined ? {} : { randomBytes }), aeadKey: slowKey, adoptAeadKey: slowKey }
}

describe('the asynchronous frame engine', () => {
  it('reports the earliest failing frame, even when a later frame\'s call fails first', async () => {
    // Frame 1's call answers last: a message whose first two frames are altered must still name frame 1.
    const backend = slowAsyncBackend({ delayMs: (iv) => (iv[11] === 1 ? 30 : 0) })
    const { ciphertext } = await encryptWith(nodeBackend, aesKeyring(), bytes(40), { algorithmSuite: 0x0478, frameLength: 16 })
    const bodyStart = ciphertext.length - (2 * 48 + (4 + 4 + 12 + 4 + 8 + 16))
    const altered = ciphertext.slice()
    altered[bodyStart + 16]! ^= 1 // frame 1's content
    altered[bodyStart + 48 + 16]! ^= 1 // frame 2's content
    const expected = 'Frame 1 failed authentication: the message was altered or truncated.'
    expect(await rejectionOf(decryptWith(backend, aesKeyring(), altered))).toMatchObject({ code: 'FRAME_AUTHENTICATION_FAILED', message: expected })
    const streamed = await rejectionOf(readAll(chunked(altered, altered.length).pipeThrough(decryptStreamWith(backend, aesKeyring()))))
    expect(streamed).toMatchObject({ code: 'FRAME_AUTHENTICATION_FAILED', message: expected })
  })

  it('one-shot decrypts a legacy non-framed message, and zeroes the plaintext of earlier frames when a later one fails', async () => {
    const read = { commitmentPolicy: 'REQUIRE_ENCRYPT_ALLOW_DECRYPT' as const }
    const single = craftV1({ contentType: 1, frameLength: 0, plaintext: Buffer.from(bytes(300)) })
    const opened = await decryptWith(webCryptoBackend, dataKeyKeyring(single.dataKey), single.ciphertext, read)
    expect(equal(opened.plaintext, single.plaintext)).toBe(true)

    // Five frames (suite 0x0014 has no footer): the last tag fails after the first four were written.
    const framed = craftV1({ frameLength: 64, plaintext: Buffer.from(bytes(300)) })
    const altered = Buffer.from(framed.ciphertext)
    altered[altered.length - 1]! ^= 1
    const { backend: recording, allocated } = recordingAllocations(webCryptoBackend)
    expect(await codeOf(decryptWith(recording, dataKeyKeyring(framed.dataKey), altered, read))).toBe('FRAME_AUTHENTICATION_FAILED')
    expect(allocated.map((buffer) => buffer.length)).toEqual([300])
    expect(isAllZero(allocated[0]!)).toBe(true)
  })

  it('one-shot encrypt leaves zeros, never other memory, in the footer room a shorter signature does not use', async () => {
    let shorter = 0
    for (let attempt = 0; attempt < 40 && shorter < 2; attempt++) {
      const { ciphertext } = await encryptWith(webCryptoBackend, aesKeyring(), bytes(100), { algorithmSuite: 0x0578 })
      const whole = new Uint8Array(ciphertext.buffer)
      expect(isAllZero(whole.subarray(0, ciphertext.byteOffset)) && isAllZero(whole.subarray(ciphertext.byteOffset + ciphertext.length))).toBe(true)
      if (whole.length > ciphertext.byteOffset + ciphertext.length) shorter++
    }
    expect(shorter).toBe(2)
  })

  it('writes byte for byte what the synchronous engine writes, with calls finishing out of order', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 0, max: 5000 }),
        fc.integer({ min: 1, max: 700 }),
        fc.constantFrom(0x0478, 0x0178, 0x0014),
        fc.integer(),
        async (length, frameLength, suite, seed) => {
          const options = { algorithmSuite: suite, commitmentPolicy: encryptPolicy(suite), frameLength }
          const data = bytes(length, seed)
          const sync = await encryptWith({ ...nodeBackend, randomBytes: seededRandom(seed) }, aesKeyring(), data, options)
          const async = await encryptWith(slowAsyncBackend({ randomBytes: seededRandom(seed) }), aesKeyring(), data, options)
          expect(equal(async.ciphertext, sync.ciphertext)).toBe(true)
          // A backend with synchronous keys but without its own body loop goes through the asynchronous one.
          const { sealBody, ...withoutLoop } = { ...nodeBackend, randomBytes: seededRandom(seed) }
          expect(sealBody).toBeTypeOf('function')
          const throughAsyncLoop = await encryptWith(withoutLoop, aesKeyring(), data, options)
          expect(equal(throughAsyncLoop.ciphertext, sync.ciphertext)).toBe(true)
          const read = { commitmentPolicy: 'REQUIRE_ENCRYPT_ALLOW_DECRYPT' as const }
          expect(equal((await decryptWith(slowAsyncBackend(), aesKeyring(), sync.ciphertext, read)).plaintext, data)).toBe(true)
        },
      ),
      { numRuns: 30 },
    )
  })

  it('one-shot and streams keep at most 64 frames, and at most 4 MiB of them, in flight at once, and fill their window again after each wait', async () => {
    /** Frame calls in flight at most, and how many times the calls in flight went from none to one. */
    const counted = () => {
      const stats = { inFlight: 0, most: 0, rounds: 0 }
      const backend = asyncAeadBackend(async (input, _out, work) => {
        const result = work()
        if (input.length < 100) return result // the keyring's data key and the header's tag
        if (stats.inFlight++ === 0) stats.rounds++
        stats.most = Math.max(stats.most, stats.inFlight)
        await new Promise((resolve) => setImmediate(resolve))
        stats.inFlight--
        return result
      })
      return { backend, stats }
    }
    const cases = [
      // 200 frames of 1000 bytes: windows of 64 frames.
      { length: 200_000, frameLength: 1000, most: 64, rounds: 4 },
      // 9 MiB in frames of 1 MiB: windows of 4 MiB.
      { length: 9 * 1024 * 1024, frameLength: 1024 * 1024, most: 4, rounds: 3 },
    ]
    for (const { length, frameLength, most, rounds } of cases) {
      const data = bytes(length)
      const options = { algorithmSuite: 0x0478, frameLength }
      const sealing = counted()
      const { ciphertext } = await encryptWith(sealing.backend, aesKeyring(), data, options)
      const opening = counted()
      expect(equal((await decryptWith(opening.backend, aesKeyring(), ciphertext)).plaintext, data)).toBe(true)
      // Streams given the whole input as one chunk: one batch of frames.
      const streamSealing = counted()
      const streamed = await readAll(chunked(data, data.length).pipeThrough(encryptStreamWith(streamSealing.backend, aesKeyring(), options)))
      const streamOpening = counted()
      expect(equal(await readAll(chunked(streamed, streamed.length).pipeThrough(decryptStreamWith(streamOpening.backend, aesKeyring()))), data)).toBe(true)
      const expected = { inFlight: 0, most, rounds }
      expect({ frameLength, sealing: sealing.stats, opening: opening.stats, streamSealing: streamSealing.stats, streamOpening: streamOpening.stats }).toEqual({
        frameLength,
        sealing: expected,
        opening: expected,
        streamSealing: expected,
        streamOpening: expected,
      })
    }
  })

  it.each([
    ['one-shot encrypt', (backend: CryptoBackend, data: Uint8Array, options: EncryptOptions) => encryptWith(backend, aesKeyring(), data, options)],
    ['an encrypt stream', (backend: CryptoBackend, data: Uint8Array, options: EncryptOptions) => readAll(chunked(data, data.length).pipeThrough(encryptStreamWith(backend, aesKeyring(), options)))],
  ] as const)('%s whose cipher fails on one frame rejects only once every other call in flight has settled', async (_, encrypting) => {
    let calls = 0
    let inFlight = 0
    const failing = asyncAeadBackend(async (input, _out, work) => {
      if (input.length < 100) return work() // the keyring's data key and the header's tag
      const call = ++calls
      inFlight++
      try {
        await new Promise((resolve) => setTimeout(resolve, call === 2 ? 0 : 20))
        if (call === 2) throw new Error('cipher failure on frame 2')
        return work()
      } finally {
        inFlight--
      }
    })
    const error = await rejectionOf(encrypting(failing, bytes(10_000), { algorithmSuite: 0x0478, frameLength: 1000 }))
    expect(calls).toBe(10)
    expect(inFlight).toBe(0)
    expect(error).toMatchObject({ code: 'INTERNAL_ERROR', cause: { message: 'cipher failure on frame 2' } })
  })

  it('streams: chunked input, frames in flight, and the same message bytes as one-shot', async () => {
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 0, max: 12_000 }), fc.integer({ min: 64, max: 3000 }), fc.integer({ min: 1, max: 5000 }), fc.integer(), async (length, frameLength, chunk, seed) => {
        const data = bytes(length, seed)
        const options = { algorithmSuite: 0x0478, frameLength }
        const streamed = await readAll(chunked(data, chunk).pipeThrough(encryptStreamWith(slowAsyncBackend({ randomBytes: seededRandom(seed) }), aesKeyring(), options)))
        const oneShot = await encryptWith({ ...nodeBackend, randomBytes: seededRandom(seed) }, aesKeyring(), data, options)
        expect(equal(streamed, oneShot.ciphertext)).toBe(true)
        const decrypted = await readAll(chunked(streamed, chunk).pipeThrough(decryptStreamWith(slowAsyncBackend(), aesKeyring())))
        expect(equal(decrypted, data)).toBe(true)
      }),
      { numRuns: 20 },
    )
  }, 30_000)

  it('a stream stops at a bad frame, emitting only the frames before it', async () => {
    const data = bytes(10_000)
    const { ciphertext } = await encryptWith(nodeBackend, aesKeyring(), data, { algorithmSuite: 0x0478, frameLength: 1000 })
    const altered = ciphertext.slice()
    altered[altered.length - 3000]! ^= 1
    const received: Uint8Array[] = []
    const stream = chunked(altered, 2500).pipeThrough(decryptStreamWith(webCryptoBackend, aesKeyring()))
    const error = await rejectionOf(
      (async () => {
        for await (const chunk of stream as unknown as AsyncIterable<Uint8Array>) received.push(chunk)
      })(),
    )
    expect((error as { code?: string }).code).toBe('FRAME_AUTHENTICATION_FAILED')
    const emitted = Buffer.concat(received)
    expect(emitted.length).toBeLessThan(data.length)
    expect(equal(emitted, data.subarray(0, emitted.length))).toBe(true)
  })

  it('bytes after the end of the message fail the stream with TRAILING_DATA, in the same chunk or a later one', async () => {
    for (const algorithmSuite of [0x0478, 0x0578]) {
      const data = bytes(3000)
      const { ciphertext } = await encryptWith(nodeBackend, aesKeyring(), data, { algorithmSuite, frameLength: 1000 })
      for (const chunks of [[Uint8Array.of(...ciphertext, 7)], [ciphertext, Uint8Array.of(7, 7)], [ciphertext.subarray(0, 2000), ciphertext.subarray(2000), Uint8Array.of(7)]]) {
        const source = new ReadableStream<Uint8Array>({
          start(controller) {
            for (const chunk of chunks) controller.enqueue(chunk)
            controller.close()
          },
        })
        const decrypting = source.pipeThrough(decryptStreamWith(webCryptoBackend, aesKeyring(), { commitmentPolicy: 'REQUIRE_ENCRYPT_REQUIRE_DECRYPT' }))
        expect(await codeOf(readAll(decrypting)), `${hex16(algorithmSuite)} in ${chunks.length} chunk(s)`).toBe('TRAILING_DATA')
      }
    }
  })

  it('a backend without incremental signatures refuses streams of signing suites before any keyring runs', async () => {
    const { loadIncrementalSignatures: _loader, ...wholeMessagesOnly } = webCryptoBackend
    let keyringCalls = 0
    const inner = aesKeyring()
    const counting: Keyring = {
      onEncrypt: (materials, backend) => (keyringCalls++, inner.onEncrypt(materials, backend)),
      onDecrypt: (materials, edks, backend) => (keyringCalls++, inner.onDecrypt(materials, edks, backend)),
    }
    const encrypting = chunked(bytes(100), 10).pipeThrough(encryptStreamWith(wholeMessagesOnly, counting, { algorithmSuite: 0x0578 }))
    expect(await codeOf(readAll(encrypting))).toBe('UNSUPPORTED_OPERATION')
    const { ciphertext } = await encryptWith(nodeBackend, inner, bytes(100), { algorithmSuite: 0x0578 })
    const decrypting = chunked(ciphertext, 10).pipeThrough(decryptStreamWith(wholeMessagesOnly, counting))
    expect(await codeOf(readAll(decrypting))).toBe('UNSUPPORTED_OPERATION')
    expect(keyringCalls).toBe(0)
    // One-shot works for the same suite.
    expect(equal((await decryptWith(wholeMessagesOnly, inner, ciphertext)).plaintext, bytes(100))).toBe(true)
  })
})

/**
 * nodeBackend with node:crypto's AES-GCM behind the asynchronous interface, every key made through `aeadKey`, and
 * each call made through `around`: given the call's input, its output and the work itself, it decides when the work
 * is done and whether it succeeds.
 */
function asyncAeadBackend(around: <T>(input: Uint8Array, out: Uint8Array, work: () => T) => Promise<T>): CryptoBackend {
  const { adoptAeadKey: _keysGoThroughAeadKey, ...rest } = nodeBackend
  return {
    ...rest,
    aeadKey(key) {
      const inner = nodeBackend.aeadKey(key) as AeadKey
      return {
        async: true,
        seal: (iv, aad, plaintext, out, offset) => around(plaintext, out, () => inner.seal(iv, aad, plaintext, out, offset)),
        open: (iv, aad, ciphertext, tag, out, offset) => around(ciphertext, out, () => inner.open(iv, aad, ciphertext, tag, out, offset)),
      }
    },
  }
}

/**
 * An asynchronous AES-GCM whose answers on frame content wait until `open()`: the work is done at once, only the
 * answer waits (as when a page's event loop is slow to deliver it). Records where each call wrote.
 */
function gatedAsyncBackend(): { backend: CryptoBackend; open: () => void; pending: () => number; outputs: Uint8Array[] } {
  let release!: () => void
  const gate = new Promise<void>((resolve) => (release = resolve))
  let waiting = 0
  const outputs: Uint8Array[] = []
  const backend = asyncAeadBackend(async (input, out, work) => {
    const result = work()
    outputs.push(out)
    if (input.length >= 100) {
      // Frames only: the keyring's data key and the header's tag are not held.
      waiting++
      await gate
      waiting--
    }
    return result
  })
  return { backend, open: release, pending: () => waiting, outputs }
}

describe('a stream aborted while its asynchronous cipher calls are in flight', () => {
  const until = async (condition: () => boolean) => {
    for (let i = 0; i < 200 && !condition(); i++) await new Promise((resolve) => setTimeout(resolve, 5))
    expect(condition()).toBe(true)
  }

  it('decrypt emits nothing of the frames opened by then, and zeroes the plaintext they wrote', async () => {
    const data = bytes(5000)
    const { ciphertext } = await encryptWith(nodeBackend, aesKeyring(), data, { algorithmSuite: 0x0478, frameLength: 1000 })
    const { backend, open, pending, outputs } = gatedAsyncBackend()
    const abort = new AbortController()
    const received: Uint8Array[] = []
    const reading = (async () => {
      for await (const chunk of chunked(ciphertext, ciphertext.length).pipeThrough(decryptStreamWith(backend, aesKeyring(), { signal: abort.signal })) as unknown as AsyncIterable<Uint8Array>) {
        received.push(chunk.slice())
      }
    })()
    await until(() => pending() > 0)
    abort.abort()
    open()
    expect(await rejectionOf(reading)).toMatchObject({ code: 'ABORTED' })
    await new Promise((resolve) => setTimeout(resolve, 20))
    expect(received).toEqual([])
    expect(outputs.length).toBeGreaterThan(0)
    expect(outputs.every(isAllZero)).toBe(true)
  })

  it('encrypt emits no frame sealed after the abort', async () => {
    const { backend, open, pending } = gatedAsyncBackend()
    const abort = new AbortController()
    const received: Uint8Array[] = []
    const stream = encryptStreamWith(backend, aesKeyring(), { algorithmSuite: 0x0478, frameLength: 1000, signal: abort.signal })
    const reading = (async () => {
      for await (const chunk of chunked(bytes(5000), 5000).pipeThrough(stream) as unknown as AsyncIterable<Uint8Array>) received.push(chunk)
    })()
    await until(() => pending() > 0)
    const before = received.length // the header, at most
    abort.abort()
    open()
    expect(await rejectionOf(reading)).toMatchObject({ code: 'ABORTED' })
    await new Promise((resolve) => setTimeout(resolve, 20))
    expect(received.length).toBe(before)
  })
})

/**
 * An asynchronous AES-GCM whose `failing`-th call (counted over every key, the keyring's own first) rejects as
 * WebCrypto does when it cannot do the operation.
 */
function failingAsyncBackend(failing: number): { backend: CryptoBackend; rejection: DOMException } {
  const rejection = new DOMException('The operation failed for an operation-specific reason', 'OperationError')
  let calls = 0
  const backend = asyncAeadBackend(async (_input, _out, work) => {
    if (++calls === failing) throw rejection
    return work()
  })
  return { backend, rejection }
}

describe('a platform failure under the engine', () => {
  const data = bytes(5000)
  const options = { algorithmSuite: 0x0478, frameLength: 1000 }

  // Call 1 is the keyring's (its failure is the keyring's: KEYRING_FAILURE, NO_DECRYPTABLE_KEY); 2 the header's, 3 on frames.
  it.each([2, 3, 6])('AES-GCM rejecting at call %i is INTERNAL_ERROR with the rejection as cause, one-shot and streamed, both ways', async (failing) => {
    const { ciphertext } = await encryptWith(nodeBackend, aesKeyring(), data, options)
    const runs: [string, (backend: CryptoBackend) => Promise<unknown>][] = [
      ['one-shot encrypt', (backend) => encryptWith(backend, aesKeyring(), data, options)],
      ['one-shot decrypt', (backend) => decryptWith(backend, aesKeyring(), ciphertext)],
      ['encrypt stream', (backend) => readAll(chunked(data, 700).pipeThrough(encryptStreamWith(backend, aesKeyring(), options)))],
      ['decrypt stream', (backend) => readAll(chunked(ciphertext, 700).pipeThrough(decryptStreamWith(backend, aesKeyring())))],
    ]
    for (const [name, run] of runs) {
      const { backend, rejection } = failingAsyncBackend(failing)
      const error = await rejectionOf(run(backend))
      expect(error, name).toBeInstanceOf(EnvelopeError)
      expect(error, name).toMatchObject({ code: 'INTERNAL_ERROR', cause: rejection })
      expect((error as Error).message, name).toContain('OperationError')
    }
  })

  it("WebCrypto refusing an AES-GCM decrypt with anything but an OperationError (a failed tag) is INTERNAL_ERROR, not an altered message", async () => {
    const { ciphertext } = await encryptWith(nodeBackend, aesKeyring(), data, options)
    const { subtle } = globalThis.crypto
    // The first decrypt (the keyring unwrapping the data key) is WebCrypto's own; the next (the header's tag) is refused.
    const withDecrypt = <T>(refusal: Error, run: () => Promise<T>): Promise<T> => {
      let calls = 0
      const decrypt = (...args: Parameters<SubtleCrypto['decrypt']>) => (++calls === 1 ? subtle.decrypt(...args) : Promise.reject(refusal))
      return withSubtleMethod('decrypt', decrypt, run)
    }
    const cases: [Error, string][] = [
      [new DOMException('The operation is not supported.', 'NotSupportedError'), 'INTERNAL_ERROR'],
      [new TypeError('Cannot perform Construct on a detached ArrayBuffer'), 'INTERNAL_ERROR'],
      [new DOMException('The operation failed for an operation-specific reason', 'OperationError'), 'HEADER_AUTHENTICATION_FAILED'],
    ]
    for (const [refusal, code] of cases) {
      for (const run of [
        () => decryptWith(webCryptoBackend, aesKeyring(), ciphertext),
        () => readAll(chunked(ciphertext, 700).pipeThrough(decryptStreamWith(webCryptoBackend, aesKeyring()))),
      ]) {
        const error = await withDecrypt(refusal, () => rejectionOf(run()))
        expect(error, refusal.name).toMatchObject(code === 'INTERNAL_ERROR' ? { code, cause: refusal } : { code })
      }
    }
  })

  it("a stream's header promise rejects with the same typed error", async () => {
    const { backend } = failingAsyncBackend(2)
    const stream = encryptStreamWith(backend, aesKeyring(), options)
    const [headerError, streamError] = await Promise.all([rejectionOf(stream.header), rejectionOf(readAll(chunked(data, 700).pipeThrough(stream)))])
    expect(headerError).toMatchObject({ code: 'INTERNAL_ERROR', message: expect.stringMatching(/^The platform failed under kms-envelope \(OperationError: /) })
    expect(streamError).toBe(headerError)
  })

  it('an error that cannot even be read is typed all the same', async () => {
    const unreadable = new Error('x')
    Object.defineProperty(unreadable, 'message', {
      get() {
        throw new Error('no message')
      },
    })
    const { ciphertext } = await encryptWith(nodeBackend, aesKeyring(), data, options)
    const backend: CryptoBackend = { ...nodeBackend, allocate: () => { throw unreadable } }
    expect(await rejectionOf(decryptWith(backend, aesKeyring(), ciphertext))).toMatchObject({ code: 'INTERNAL_ERROR', cause: unreadable })
  })

  it('memory running out in Node (a RangeError allocating the output) is INTERNAL_ERROR too', async () => {
    const { ciphertext } = await encryptWith(nodeBackend, aesKeyring(), data, options)
    const outOfMemory = new RangeError('Array buffer allocation failed')
    const backend: CryptoBackend = {
      ...nodeBackend,
      allocate: () => {
        throw outOfMemory
      },
    }
    for (const run of [encryptWith(backend, aesKeyring(), data, options), decryptWith(backend, aesKeyring(), ciphertext)]) {
      expect(await rejectionOf(run)).toMatchObject({ code: 'INTERNAL_ERROR', cause: outOfMemory })
    }
  })
})

describe('streams of signing suites on WebCrypto (incremental digest, @noble/curves signature)', () => {
  const spec = { kind: 'aes', bits: 256 } as const
  const ours = () => new RawAesKeyring({ keyNamespace: KEY_NAMESPACE, keyName: keyNameOf(spec), wrappingKey: aesKey(256) })

  it.each([...SIGNING].map((suite) => [hex16(suite), suite] as const))(
    '%s: encryptStream on WebCrypto is read by node:crypto and the official SDK; their messages stream-decrypt on WebCrypto',
    async (_name, suite) => {
      const data = bytes(10_000, suite)
      const options = { algorithmSuite: suite, commitmentPolicy: encryptPolicy(suite), frameLength: 1024 }
      const read = { commitmentPolicy: 'REQUIRE_ENCRYPT_ALLOW_DECRYPT' as const }
      const streamed = await readAll(chunked(data, 777).pipeThrough(encryptStreamWith(webCryptoBackend, ours(), options)))
      expect(equal((await decryptWith(nodeBackend, ours(), streamed, read)).plaintext, data)).toBe(true)
      expect(equal((await officialDecrypt(officialKeyring(spec), streamed, { commitmentPolicy: decryptPolicyFor(suite) })).plaintext, data)).toBe(true)
      for (const ciphertext of [
        (await encryptWith(nodeBackend, ours(), data, options)).ciphertext,
        (await officialEncrypt(officialKeyring(spec), data, { suiteId: suite, frameLength: 1024 })).ciphertext,
      ]) {
        expect(equal(await readAll(chunked(ciphertext, 500).pipeThrough(decryptStreamWith(webCryptoBackend, ours(), read))), data)).toBe(true)
      }
    },
  )

  it('a changed signature byte fails the stream with SIGNATURE_INVALID', async () => {
    const { ciphertext } = await encryptWith(nodeBackend, aesKeyring(), bytes(3000), { algorithmSuite: 0x0578, frameLength: 1000 })
    for (const offset of [ciphertext.length - 1, ciphertext.length - 60]) {
      const altered = ciphertext.slice()
      altered[offset] = (altered[offset] as number) ^ 1
      expect(await codeOf(readAll(chunked(altered, 700).pipeThrough(decryptStreamWith(webCryptoBackend, aesKeyring()))))).toBe('SIGNATURE_INVALID')
    }
  })

  it('fast-check: random sizes, chunkings and frame lengths round-trip through WebCrypto streams both ways', async () => {
    await fc.assert(
      fc.asyncProperty(fc.nat(5000), fc.integer({ min: 1, max: 2000 }), fc.integer({ min: 1, max: 1500 }), fc.constantFrom(0x0214, 0x0378, 0x0578), async (length, chunk, frameLength, suite) => {
        const data = bytes(length, chunk)
        const options = { algorithmSuite: suite, commitmentPolicy: encryptPolicy(suite), frameLength }
        const read = { commitmentPolicy: 'REQUIRE_ENCRYPT_ALLOW_DECRYPT' as const }
        const streamed = await readAll(chunked(data, chunk).pipeThrough(encryptStreamWith(webCryptoBackend, aesKeyring(), options)))
        expect(equal(await readAll(chunked(streamed, chunk).pipeThrough(decryptStreamWith(webCryptoBackend, aesKeyring(), read))), data)).toBe(true)
        expect(equal((await decryptWith(nodeBackend, aesKeyring(), streamed, read)).plaintext, data)).toBe(true)
      }),
      { numRuns: 25 },
    )
  })

  it('the signing key never shows its scalar when inspected or serialized', async () => {
    const { privateKey } = await webCryptoBackend.generateSigningKey('P-384')
    const { inspect } = await import('node:util')
    expect(inspect(privateKey)).toBe('WebSigningKey')
    expect(JSON.stringify(privateKey)).toBe('{"type":"WebSigningKey"}')
  })

  it('a signing key WebCrypto cannot sign with (a custom materials manager) fails one-shot encrypt with KEYRING_FAILURE, streams with UNSUPPORTED_OPERATION', async () => {
    const inner = new DefaultMaterialsManager(new RawAesKeyring({ keyNamespace: 'n', keyName: 'k', wrappingKey: aesKey(256) }))
    const p256 = (await crypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, false, ['sign', 'verify'])) as CryptoKeyPair
    const badKeys = [
      'not a key',
      generateKeyPairSync('ec', { namedCurve: 'P-384' }).privateKey,
      p256.privateKey, // on another curve: it would sign, and make a P-384 message no one can verify
      (await webCryptoBackend.generateSigningKey('P-256')).privateKey,
    ]
    for (const [index, signingKey] of badKeys.entries()) {
      const cmm = managerSigningWith(inner, signingKey)
      const error = await rejectionOf(encryptWith(webCryptoBackend, cmm, new Uint8Array(100)))
      expect(error, `key ${index}`).toBeInstanceOf(KeyringError)
      expect((error as KeyringError).code).toBe('KEYRING_FAILURE')
      const streamError = await rejectionOf(readAll(chunked(new Uint8Array(100), 30).pipeThrough(encryptStreamWith(webCryptoBackend, cmm, {}))))
      expect((streamError as EnvelopeError).code, `key ${index}`).toBe('UNSUPPORTED_OPERATION')
    }
  })

  it("one-shot encrypt signs with a custom manager's bare ECDSA CryptoKey on the suite's curve; WebCrypto's refusal of another key is the cause", async () => {
    // RSA wraps the data key without the context, which the manager changes after the keyring ran.
    const inner = new DefaultMaterialsManager(rsaKeyring())
    const bare = (await crypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-384' }, true, ['sign', 'verify'])) as CryptoKeyPair
    const point = compressPoint(new Uint8Array(await crypto.subtle.exportKey('raw', bare.publicKey)))
    const { ciphertext } = await encryptWith(webCryptoBackend, managerSigningWith(inner, bare.privateKey, point), new Uint8Array(100).fill(7))
    expect((await decryptWith(nodeBackend, inner, ciphertext)).plaintext).toEqual(new Uint8Array(100).fill(7))
    // An ECDH key on P-384 passes the curve check, and WebCrypto refuses to sign with it: that refusal is the cause.
    const ecdh = (await crypto.subtle.generateKey({ name: 'ECDH', namedCurve: 'P-384' }, false, ['deriveBits'])) as CryptoKeyPair
    const refused = await rejectionOf(encryptWith(webCryptoBackend, managerSigningWith(inner, ecdh.privateKey), new Uint8Array(100)))
    expect(refused).toMatchObject({ code: 'KEYRING_FAILURE', message: expect.stringMatching(/WebCrypto needs an ECDSA private CryptoKey on P-384/) })
    expect((refused as Error).cause).toBeInstanceOf(DOMException)
    // A key WebCrypto was not asked to sign with has no cause.
    const unasked = await rejectionOf(encryptWith(webCryptoBackend, managerSigningWith(inner, 'not a key'), new Uint8Array(100)))
    expect(unasked).toMatchObject({ code: 'KEYRING_FAILURE' })
    expect(Object.hasOwn(unasked as Error, 'cause')).toBe(false)
  })
})

describe('without crypto.subtle (pages served over plain HTTP)', () => {
  it("one-shot encrypt refuses a custom manager's signing key that this build did not make, by name", async () => {
    const inner = new DefaultMaterialsManager(new RawAesKeyring({ keyNamespace: 'n', keyName: 'k', wrappingKey: aesKey(256) }))
    const bare = (await crypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-384' }, false, ['sign', 'verify'])) as CryptoKeyPair
    for (const signingKey of ['not a key', bare.privateKey, (await webCryptoBackend.generateSigningKey('P-256')).privateKey]) {
      const cmm = managerSigningWith(inner, signingKey)
      const error = await withoutSubtle(() => rejectionOf(encryptWith(webCryptoBackend, cmm, new Uint8Array(100))))
      expect(error).toMatchObject({
        code: 'KEYRING_FAILURE',
        message: "The materials manager's signing key cannot sign this message: without WebCrypto, it must be a key this build made for P-384, the suite's curve.",
      })
    }
  })

  it('ECDSA signatures on @noble are hedged: one key signs one message differently each time', async () => {
    // RFC 6979 alone would make them deterministic, and a DynamoDB item's footer, which must hold a 103-byte DER
    // signature, retries until it gets one: with the same signature every time, about one item in a hundred could
    // never be written ("Could not make a 103-byte ECDSA signature").
    const signatures = await withoutSubtle(async () => {
      const { privateKey, publicKey } = await webCryptoBackend.generateSigningKey('P-384')
      const message = new TextEncoder().encode('one message')
      const made = [await webCryptoBackend.signMessage('P-384', privateKey, message), await webCryptoBackend.signMessage('P-384', privateKey, message)]
      const verifier = await webCryptoBackend.importVerificationKey('P-384', publicKey)
      for (const signature of made) expect(await webCryptoBackend.verifyMessage('P-384', verifier, message, signature)).toBe(true)
      return made.map((signature) => Buffer.from(signature).toString('hex'))
    })
    expect(signatures[0]).not.toBe(signatures[1])
  })

  it.each(ALL_SUITES.filter((suite) => !SIGNING.has(suite)).map((suite) => [hex16(suite), suite] as const))(
    '%s with a raw AES keyring runs on @noble and interoperates with node:crypto',
    async (_name, suite) => {
      const data = bytes(3000, suite)
      const options = { algorithmSuite: suite, commitmentPolicy: encryptPolicy(suite), frameLength: 1024 }
      const read = { commitmentPolicy: 'REQUIRE_ENCRYPT_ALLOW_DECRYPT' as const }
      const { ciphertext } = await withoutSubtle(() => encryptWith(webCryptoBackend, aesKeyring(), data, options))
      expect(equal((await decryptWith(nodeBackend, aesKeyring(), ciphertext, read)).plaintext, data)).toBe(true)
      const fromNode = await encryptWith(nodeBackend, aesKeyring(), data, options)
      const opened = await withoutSubtle(() => decryptWith(webCryptoBackend, aesKeyring(), fromNode.ciphertext, read))
      expect(equal(opened.plaintext, data)).toBe(true)
    },
  )

  it.each(OAEP)('%s: a RawRsaKeyring public key encrypts in JavaScript, and node:crypto decrypts', async (padding) => {
    const data = bytes(2000, 5)
    const publicOnly = new RawRsaKeyring({ keyNamespace: 'wc', keyName: 'rsa', publicKey: rsa.publicKey, padding })
    const { ciphertext } = await withoutSubtle(() => encryptWith(webCryptoBackend, publicOnly, data, { algorithmSuite: 0x0478 }))
    expect(equal((await decryptWith(nodeBackend, rsaKeyring(padding), ciphertext)).plaintext, data)).toBe(true)
  })

  it.each(['RSAES_OAEP_SHA_256', 'RSAES_OAEP_SHA_1'] as const)('%s: KmsRsaKeyring encrypts offline, and KMS decrypts', async (algorithm) => {
    const keyring = (kmsClient?: KmsClientLike) =>
      new KmsRsaKeyring({ keyId: KMS_RSA_KAT.keyArn, encryptionAlgorithm: algorithm, publicKey: KMS_RSA_KAT.publicKeyPem, ...(kmsClient && { kmsClient }) })
    const { ciphertext } = await withoutSubtle(() => encryptWith(webCryptoBackend, keyring(), 'offline', { encryptionContext: { tenant: 'a' } }))
    const kms = katKms()
    const { plaintext } = await decryptWith(nodeBackend, keyring(kms.client), ciphertext, { encryptionContext: { tenant: 'a' } })
    expect(new TextDecoder().decode(plaintext)).toBe('offline')
    expect(kms.calls).toHaveLength(1)
  })

  it('RSA-OAEP in JavaScript: node:crypto decrypts every message length each hash allows, under moduli of 2048, 3001 and 4096 bits', async () => {
    const keys = [2048, 3001, 4096].map((modulusLength) => generateKeyPairSync('rsa', { modulusLength }))
    const hashes = [['SHA-1', 'sha1', 20], ['SHA-256', 'sha256', 32], ['SHA-384', 'sha384', 48], ['SHA-512', 'sha512', 64]] as const
    await withoutSubtle(async () => {
      await fc.assert(
        fc.property(fc.constantFrom(...keys), fc.constantFrom(...hashes), fc.double({ min: 0, max: 1, noNaN: true }), (key, [hash, nodeHash, hashLength], fraction) => {
          const spki = key.publicKey.export({ type: 'spki', format: 'der' })
          const maximum = Math.ceil(key.publicKey.asymmetricKeyDetails!.modulusLength! / 8) - 2 * hashLength - 2
          const message = randomBytes(Math.round(fraction * maximum))
          const sealed = rsaOaepEncrypt(spki, hash, message, checkRsaEncryptBits)
          expect(sealed).toHaveLength(Math.ceil(key.publicKey.asymmetricKeyDetails!.modulusLength! / 8))
          expect(privateDecrypt({ key: key.privateKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: nodeHash }, sealed).equals(message)).toBe(true)
          // A fresh seed each time: the same message never gives the same ciphertext.
          expect(equal(rsaOaepEncrypt(spki, hash, message, checkRsaEncryptBits), sealed)).toBe(false)
          expect(() => rsaOaepEncrypt(spki, hash, new Uint8Array(maximum + 1), checkRsaEncryptBits)).toThrow(/too long for RSA-OAEP/)
        }),
        { numRuns: 60 },
      )
    })
  })

  it('RSA-OAEP in JavaScript zeroes its encoded message (the seed and the data key under its mask) once encrypted', () => {
    const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 })
    const spki = publicKey.export({ type: 'spki', format: 'der' })
    // The seed is drawn into the encoded message itself: the buffer under the view getRandomValues fills is that message.
    const filled: ArrayBufferView[] = []
    const getRandomValues = globalThis.crypto.getRandomValues.bind(globalThis.crypto)
    const spy = vi.spyOn(globalThis.crypto, 'getRandomValues').mockImplementation(((view: ArrayBufferView) => {
      filled.push(view)
      return getRandomValues(view as Uint8Array)
    }) as Crypto['getRandomValues'])
    try {
      const sealed = rsaOaepEncrypt(spki, 'SHA-256', new Uint8Array(32).fill(9), checkRsaEncryptBits)
      expect([...privateDecrypt({ key: privateKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256' }, sealed)]).toEqual(new Array(32).fill(9))
    } finally {
      spy.mockRestore()
    }
    expect(filled.map((view) => [view.byteLength, view.buffer.byteLength])).toEqual([[32, 256]])
    expect(isAllZero(new Uint8Array((filled[0] as ArrayBufferView).buffer))).toBe(true)
  })

  it('RSA-OAEP in JavaScript takes exponents from 3 to 64 bits, and refuses keys no RSA key can be', () => {
    const three = generateKeyPairSync('rsa', { modulusLength: 2048, publicExponent: 3 })
    const spki = three.publicKey.export({ type: 'spki', format: 'der' })
    const sealed = rsaOaepEncrypt(spki, 'SHA-256', Uint8Array.of(1, 2, 3), checkRsaEncryptBits)
    expect([...privateDecrypt({ key: three.privateKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256' }, sealed)]).toEqual([1, 2, 3])
    const { n } = three.publicKey.export({ format: 'jwk' })
    const modulus = Buffer.from(n!, 'base64url')
    const integer = (bytes: Uint8Array) => element(INTEGER, bytes[0]! & 0x80 ? Uint8Array.of(0, ...bytes) : bytes)
    const keyOf = (modulusBytes: Uint8Array, exponent: Uint8Array) => spkiFromPkcs1(element(SEQUENCE, integer(modulusBytes), integer(exponent)))
    const even = Uint8Array.from(modulus)
    even[even.length - 1]! &= 0xfe
    for (const [what, key] of [
      ['exponent 1', keyOf(modulus, Uint8Array.of(1))],
      ['an even exponent', keyOf(modulus, Uint8Array.of(1, 0, 0))],
      ['a 65-bit exponent', keyOf(modulus, Uint8Array.of(1, 0, 0, 0, 0, 0, 0, 0, 1))],
      ['an even modulus', keyOf(even, Uint8Array.of(1, 0, 1))],
    ] as const) {
      expect(() => rsaOaepEncrypt(key, 'SHA-256', Uint8Array.of(1), checkRsaEncryptBits), what).toThrow(/not a valid RSA key/)
    }
    expect(rsaOaepEncrypt(keyOf(modulus, Uint8Array.of(1, 0, 0, 0, 0, 0, 0, 1)), 'SHA-256', Uint8Array.of(1), checkRsaEncryptBits)).toHaveLength(256)
    // The key is checked when imported; here, a cut one is still refused, not read past its end.
    expect(() => rsaOaepEncrypt(spki.subarray(0, spki.length - 10), 'SHA-256', Uint8Array.of(1), checkRsaEncryptBits)).toThrow(/truncated/)
  })

  it('RSA refusals are those of WebCrypto: a modulus under 2048 bits, and a private key (its public half included) needs WebCrypto', async () => {
    const small = generateKeyPairSync('rsa', { modulusLength: 1024, publicKeyEncoding: { type: 'spki', format: 'pem' }, privateKeyEncoding: { type: 'pkcs8', format: 'pem' } })
    const smallKeyring = new RawRsaKeyring({ keyNamespace: 'wc', keyName: 'small', publicKey: small.publicKey, padding: 'OAEP-SHA256' })
    const withSubtle = await rejectionOf(encryptWith(webCryptoBackend, smallKeyring, 'x', { algorithmSuite: 0x0478 }))
    const without = await withoutSubtle(() => rejectionOf(encryptWith(webCryptoBackend, smallKeyring, 'x', { algorithmSuite: 0x0478 })))
    expect(without).toBeInstanceOf(ConfigurationError)
    expect((without as Error).message).toBe((withSubtle as Error).message)
    expect((without as Error).message).toMatch(/1024-bit modulus; encrypting needs at least 2048 bits/)

    const privateOnly = new RawRsaKeyring({ keyNamespace: 'wc', keyName: 'rsa', privateKey: rsa.privateKey, padding: 'OAEP-SHA256' })
    const { ciphertext } = await encryptWith(nodeBackend, rsaKeyring(), 'x', { algorithmSuite: 0x0478 })
    await withoutSubtle(async () => {
      for (const refused of [
        encryptWith(webCryptoBackend, privateOnly, 'x', { algorithmSuite: 0x0478 }),
        encryptWith(webCryptoBackend, rsaKeyring(), 'x', { algorithmSuite: 0x0478 }), // checks that its two keys are one pair
        decryptWith(webCryptoBackend, privateOnly, ciphertext),
      ]) {
        const error = await rejectionOf(refused)
        const refusal = error instanceof UnsupportedOperationError ? error : (error as NoDecryptableKeyError).failures?.[0]?.error
        expect(refusal, String(error)).toBeInstanceOf(UnsupportedOperationError)
        expect((refusal as Error).message).toMatch(/^An RSA private key needs WebCrypto \(crypto.subtle\)/)
      }
    })
  })

  it.each([0x0214, 0x0346, 0x0378, 0x0578].map((suite) => [hex16(suite), suite] as const))(
    '%s: signs and verifies with @noble/curves, one-shot and streams, both ways with node:crypto',
    async (_name, suite) => {
      const data = bytes(5000, suite)
      const options = { algorithmSuite: suite, commitmentPolicy: encryptPolicy(suite), frameLength: 1024 }
      const read = { commitmentPolicy: 'REQUIRE_ENCRYPT_ALLOW_DECRYPT' as const }
      const fromNode = await encryptWith(nodeBackend, aesKeyring(), data, options)
      await withoutSubtle(async () => {
        const { ciphertext } = await encryptWith(webCryptoBackend, aesKeyring(), data, options)
        expect(equal((await decryptWith(nodeBackend, aesKeyring(), ciphertext, read)).plaintext, data)).toBe(true)
        expect(equal((await decryptWith(webCryptoBackend, aesKeyring(), fromNode.ciphertext, read)).plaintext, data)).toBe(true)
        const streamed = await readAll(chunked(data, 700).pipeThrough(encryptStreamWith(webCryptoBackend, aesKeyring(), options)))
        expect(equal((await decryptWith(nodeBackend, aesKeyring(), streamed, read)).plaintext, data)).toBe(true)
        expect(equal(await readAll(chunked(fromNode.ciphertext, 700).pipeThrough(decryptStreamWith(webCryptoBackend, aesKeyring(), read))), data)).toBe(true)
        // A changed signature byte fails, one-shot and streamed.
        const altered = fromNode.ciphertext.slice()
        altered[altered.length - 3]! ^= 1
        expect(await codeOf(decryptWith(webCryptoBackend, aesKeyring(), altered, read))).toBe('SIGNATURE_INVALID')
        expect(await codeOf(readAll(chunked(altered, 700).pipeThrough(decryptStreamWith(webCryptoBackend, aesKeyring(), read))))).toBe('SIGNATURE_INVALID')
      })
    },
  )
})

describe("@noble's AES-GCM open", () => {
  const [key, iv, aad, plaintext] = [new Uint8Array(32).fill(1), new Uint8Array(12).fill(2), new Uint8Array(3), new Uint8Array(40).fill(4)]

  /** Seals `plaintext` with the module's gcmSeal, opens it with its gcmOpen (checking it opens), and returns the sealed bytes. */
  async function roundTrip(): Promise<{ gcmOpen: typeof import('../src/backend/noble.js').gcmOpen; sealed: Uint8Array; out: Uint8Array }> {
    const { gcmOpen, gcmSeal } = await import('../src/backend/noble.js')
    const sealed = new Uint8Array(56)
    gcmSeal(key, iv, aad, plaintext, sealed, 0)
    const out = new Uint8Array(40)
    expect(gcmOpen(key, iv, aad, sealed.subarray(0, 40), sealed.subarray(40), out, 0)).toBe(true)
    expect(out).toEqual(plaintext)
    return { gcmOpen, sealed, out }
  }

  it('answers false for a tag that does not verify, and throws what @noble refuses as input rather than call it a failed tag', async () => {
    const { gcmOpen, sealed, out } = await roundTrip()
    const badTag = sealed.slice(40)
    badTag[0]! ^= 1
    expect(gcmOpen(key, iv, aad, sealed.subarray(0, 40), badTag, out, 0)).toBe(false)
    expect(() => gcmOpen(Array.from(key) as never, iv, aad, sealed.subarray(0, 40), sealed.subarray(40), out, 0)).toThrow(TypeError)
  })

  it("zeroes @noble's own copy of the plaintext once copied out (a data key, when the raw AES keyring unwraps)", async () => {
    const outputs: Uint8Array[] = []
    vi.doMock('@noble/ciphers/aes.js', async (original: () => Promise<typeof import('@noble/ciphers/aes.js')>) => {
      const real = await original()
      const gcm = (...args: Parameters<typeof real.gcm>) => {
        const cipher = real.gcm(...args)
        const decrypt = (sealed: Uint8Array) => {
          const output = cipher.decrypt(sealed)
          outputs.push(output)
          return output
        }
        return { ...cipher, decrypt }
      }
      return { ...real, gcm }
    })
    vi.resetModules()
    try {
      await roundTrip()
      expect(outputs.map((output) => [output.length, isAllZero(output)])).toEqual([[40, true]])
    } finally {
      vi.doUnmock('@noble/ciphers/aes.js')
      vi.resetModules()
    }
  })
})

describe("the browser entry given another realm's bytes (an iframe's, a test environment's)", () => {
  it('takes them as plaintext, ciphertext, wrapping key and stream chunks, and refuses what only looks like them', async () => {
    const browser = await import('../src/browser.js')
    const foreign = runInNewContext('(bytes) => new Uint8Array(bytes)') as (bytes: number[]) => Uint8Array
    const key = foreign(Array.from({ length: 32 }, (_, index) => index + 1))
    expect(key instanceof Uint8Array).toBe(false)
    const keyring = new browser.RawAesKeyring({ keyNamespace: 'n', keyName: 'k', wrappingKey: key })
    const plaintext = foreign([...Buffer.from('from another realm')])
    const { ciphertext } = await browser.encrypt(keyring, plaintext)
    const { plaintext: opened } = await browser.decrypt(keyring, foreign([...ciphertext]))
    expect(new TextDecoder().decode(opened)).toBe('from another realm')
    const chunks = await readAll(chunked(foreign([...ciphertext]), 7).pipeThrough(browser.decryptStream(keyring)))
    expect(new TextDecoder().decode(chunks)).toBe('from another realm')
    // An object that claims the tag, and another realm's Int8Array, are no bytes.
    const pretender = Object.defineProperty(new DataView(new ArrayBuffer(4)), Symbol.toStringTag, { value: 'Uint8Array' })
    const signed = runInNewContext('new Int8Array([-1, 2])') as unknown
    for (const input of [pretender, signed]) {
      expect(await rejectionOf(browser.encrypt(keyring, input as never))).toMatchObject({
        code: 'INVALID_CONFIGURATION',
        message: 'plaintext must be a Uint8Array, a string, or an async iterable or ReadableStream of Uint8Array chunks; got another view of bytes: pass new Uint8Array(view.buffer, view.byteOffset, view.byteLength).',
      })
    }
  })
})

describe('bytes on a SharedArrayBuffer (a cross-origin-isolated page may pass them; WebCrypto refuses such views)', () => {
  const shared = (bytes: Uint8Array): Uint8Array => {
    const view = new Uint8Array(new SharedArrayBuffer(bytes.length))
    view.set(bytes)
    return view
  }
  const keyring = new RawAesKeyring({ keyNamespace: 'n', keyName: 'k', wrappingKey: new Uint8Array(32).fill(1) })
  const plaintext = new Uint8Array(10_000).map((_, index) => index & 0xff)

  it('WebCrypto itself refuses them: the case is real', async () => {
    await expect(crypto.subtle.digest('SHA-256', shared(plaintext) as Uint8Array<ArrayBuffer>)).rejects.toThrow(/SharedArrayBuffer/)
  })

  /** What kms-envelope returns is typed `Uint8Array<ArrayBuffer>` (see `Bytes`): never a view of the caller's shared memory. */
  const onArrayBuffers = (views: readonly Uint8Array[]): boolean => views.every((view) => view.buffer instanceof ArrayBuffer)

  it.each([
    ['browser', 0x0478],
    ['browser', 0x0578],
    ['node', 0x0478],
    ['node', 0x0578],
  ])('one-shot encrypt and decrypt of the %s entry take them, suite %i, and return bytes on ArrayBuffers', async (entry, algorithmSuite) => {
    const library = entry === 'browser' ? await import('../src/browser.js') : await import('../src/index.js')
    const encrypted = await library.encrypt(keyring, shared(plaintext), { algorithmSuite })
    const decrypted = await library.decrypt(keyring, shared(encrypted.ciphertext))
    expect(decrypted.plaintext).toEqual(plaintext)
    const { header } = decrypted
    const keys = header.encryptedDataKeys.flatMap((key) => [key.providerInfo, key.ciphertext])
    expect(onArrayBuffers([encrypted.ciphertext, encrypted.header.messageId, decrypted.plaintext, header.messageId, ...keys])).toBe(true)
  })

  /** Views of one SharedArrayBuffer, `size` bytes each (`chunked` would copy them into ordinary buffers). */
  const sharedChunks = (bytes: Uint8Array, size: number): ReadableStream<Uint8Array> => {
    const view = shared(bytes)
    let offset = 0
    return new ReadableStream({
      pull(controller) {
        if (offset >= view.length) return controller.close()
        controller.enqueue(view.subarray(offset, (offset += size)))
      },
    })
  }

  it.each([0x0478, 0x0578])('streams take them as chunks, suite %i', async (algorithmSuite) => {
    const chunks: Uint8Array[] = []
    const keep = () => new TransformStream<Uint8Array, Uint8Array>({ transform: (chunk, controller) => void (chunks.push(chunk), controller.enqueue(chunk)) })
    const encrypted = await readAll(sharedChunks(plaintext, 5000).pipeThrough(encryptStreamWith(webCryptoBackend, keyring, { algorithmSuite })).pipeThrough(keep()))
    const decrypted = await readAll(sharedChunks(encrypted, 20_000).pipeThrough(decryptStreamWith(webCryptoBackend, keyring)).pipeThrough(keep()))
    expect(decrypted).toEqual(plaintext)
    expect(chunks.length).toBeGreaterThan(2)
    expect(onArrayBuffers(chunks)).toBe(true)
  })
})

describe("the browser entry's one-shot input in pieces: a ReadableStream that is not async iterable (Safari's)", () => {
  const keyring = new RawAesKeyring({ keyNamespace: 'n', keyName: 'k', wrappingKey: new Uint8Array(32).fill(2) })
  /**
   * A stream of these chunks, without async iteration, as Safari's streams are; then it ends (`close`), fails with
   * `end` (an Error), or stays open.
   */
  const safariStream = (chunks: unknown[], end: 'close' | 'open' | Error = 'close') => {
    const events: string[] = []
    const stream = new ReadableStream<Uint8Array>({
      start(controller) {
        for (const chunk of chunks) controller.enqueue(chunk as Uint8Array)
        if (end === 'close') controller.close()
      },
      pull(controller) {
        if (end instanceof Error) controller.error(end)
      },
      cancel() {
        events.push('cancelled')
      },
    })
    Object.defineProperty(stream, Symbol.asyncIterator, { value: undefined })
    return { stream, events }
  }

  it('is read through a reader of its own: encrypt and decrypt round trip, and the caller keeps its chunks', async () => {
    const browser = await import('../src/browser.js')
    const chunks = [bytes(3000), bytes(5000).fill(9)]
    const input = safariStream(chunks).stream
    const { ciphertext } = await browser.encrypt(keyring, input as never, { frameLength: 1024 })
    const sealed = safariStream([ciphertext.slice(0, 100), ciphertext.slice(100)]).stream
    const { plaintext } = await browser.decrypt(keyring, sealed as never)
    expect(plaintext).toEqual(new Uint8Array([...chunks[0]!, ...chunks[1]!]))
    expect(chunks[1]!.every((byte) => byte === 9)).toBe(true)
    // Read to the end, each stream is let go of: no reader holds it.
    expect([input.locked, sealed.locked]).toEqual([false, false])
  })

  it('the caller keeps its chunks when they are Node Buffers (where this build runs on Node, Bun or Deno), whose slice() is no copy', async () => {
    const browser = await import('../src/browser.js')
    async function* pieces<T>(chunks: T[]) {
      yield* chunks
    }
    const chunks = [Buffer.alloc(3000, 7), Buffer.alloc(5000, 9)]
    const { ciphertext } = await browser.encrypt(keyring, pieces(chunks), { frameLength: 1024 })
    expect(chunks.map((chunk) => chunk.every((byte) => byte === chunk[0] && byte !== 0))).toEqual([true, true])
    const sealed = [Buffer.from(ciphertext.subarray(0, 100)), Buffer.from(ciphertext.subarray(100))]
    const { plaintext } = await browser.decrypt(keyring, pieces(sealed))
    expect(plaintext).toEqual(new Uint8Array(Buffer.concat(chunks)))
    expect(Buffer.concat(sealed)).toEqual(Buffer.from(ciphertext))
  })

  it("a stream that fails rejects with the stream's own error, and its lock is released", async () => {
    const browser = await import('../src/browser.js')
    const failure = new Error('the upload was interrupted')
    const { stream } = safariStream([bytes(10)], failure)
    expect(await rejectionOf(browser.encrypt(keyring, stream as never))).toBe(failure)
    expect(stream.locked).toBe(false)
  })

  it('a stream someone already reads is an INVALID_CONFIGURATION, on both paths', async () => {
    const browser = await import('../src/browser.js')
    const { stream: hidden } = safariStream([bytes(10)])
    const iterable = new ReadableStream<Uint8Array>({ start: (controller) => controller.close() })
    for (const stream of [hidden, iterable]) {
      stream.getReader()
      const locked = { code: 'INVALID_CONFIGURATION', message: 'The input ReadableStream is locked: a reader or a pipe already holds it. Pass a stream that nothing reads yet.' }
      expect(await rejectionOf(browser.encrypt(keyring, stream as never))).toMatchObject(locked)
      expect(await rejectionOf(browser.decrypt(keyring, stream as never))).toMatchObject(locked)
    }
  })

  it('a chunk that is not bytes is an INVALID_CONFIGURATION, and the stream is cancelled', async () => {
    const browser = await import('../src/browser.js')
    const { stream, events } = safariStream([bytes(10), 'text'], 'open')
    const refused = await rejectionOf(browser.encrypt(keyring, stream as never))
    expect(refused).toMatchObject({ code: 'INVALID_CONFIGURATION', message: expect.stringMatching(/^Iterable input must yield Uint8Array chunks; got a string: yield its bytes /) })
    expect(events).toEqual(['cancelled'])
    expect(stream.locked).toBe(false)
  })

  it('under maxBodySize, input without end is refused (LIMIT_EXCEEDED) once it passes the largest message allowed', async () => {
    const browser = await import('../src/browser.js')
    const { ciphertext } = await browser.encrypt(keyring, bytes(50_000), { algorithmSuite: 0x0478 })
    const bodySize = ciphertext.length - 200 // more than the body: the header is under 200 bytes, there is no footer
    let pulled = 0
    let cancelled = false
    // Endless as far as the limit can tell (4 MiB past it): without the limit, the decrypt would end with another code.
    const endless = (hideIteration: boolean) => {
      const stream = new ReadableStream<Uint8Array>({
        pull(controller) {
          if (pulled > 64) return controller.close()
          controller.enqueue(pulled++ === 0 ? ciphertext.slice() : new Uint8Array(65_536))
        },
        cancel() {
          cancelled = true
        },
      })
      if (hideIteration) Object.defineProperty(stream, Symbol.asyncIterator, { value: undefined })
      return stream
    }
    for (const hideIteration of [false, true]) {
      pulled = 0
      cancelled = false
      const refused = await rejectionOf(browser.decrypt(keyring, endless(hideIteration), { maxBodySize: bodySize }))
      expect(refused).toMatchObject({ code: 'LIMIT_EXCEEDED' })
      expect((refused as Error).message).toMatch(/more than \d+ bytes arrived/)
      // 1 MiB of header allowance, the body, a footer: 18 chunks of 64 KiB after the message.
      expect(pulled).toBeLessThan(1 + Math.ceil((1024 * 1024 + bodySize + 2 + 0xffff) / 65_536) + 2)
      expect(cancelled).toBe(true)
    }
    // The message itself, under the same limit, decrypts; an option it refuses is refused before anything is read.
    const whole = new ReadableStream<Uint8Array>({ start: (controller) => (controller.enqueue(ciphertext.slice()), controller.close()) })
    expect((await browser.decrypt(keyring, whole, { maxBodySize: ciphertext.length })).plaintext).toEqual(bytes(50_000))
    pulled = 0
    cancelled = false
    expect(await rejectionOf(browser.decrypt(keyring, endless(false), { maxBodySize: -1 }))).toMatchObject({
      code: 'INVALID_CONFIGURATION',
      message: 'maxBodySize must be an integer from 1 to 9007199254740991; got -1.',
    })
    expect({ pulled, cancelled }).toEqual({ pulled: 1, cancelled: false }) // only the pull a new stream makes by itself
  })
})
