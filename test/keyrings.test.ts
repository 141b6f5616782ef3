import { constants, createDecipheriv, createPrivateKey, createPublicKey, generateKeyPairSync, KeyObject, publicEncrypt, type DecipherGCM } from 'node:crypto'
import { inspect } from 'node:util'
import { describe, expect, it } from 'vitest'
import {
  ConfigurationError,
  NoDecryptableKeyError,
  decrypt,
  encrypt,
  EnvelopeError,
  KmsDiscoveryKeyring,
  KmsKeyring,
  KmsMrkDiscoveryKeyring,
  KmsMrkKeyring,
  MultiKeyring,
  RawAesKeyring,
  RawRsaKeyring,
  DefaultMaterialsManager,
  type Keyring,
} from '../src/index.js'
import { nodeBackend } from '../src/backend/node.js'
import type { AeadKey, CryptoBackend } from '../src/backend/types.js'
import { webCryptoBackend } from '../src/backend/webcrypto.js'
import { dbeSuite } from '../src/suites-dbe.js'
import { suiteFromOption } from '../src/suites.js'
import { isAllZero } from '../src/format/bytes.js'
import { aesKeyring, recordingSubtleDecrypt, rejectionOf, rsaKeyring, rsaPem, spyKeyring, thrownBy, turnsDuring } from './helpers/fixtures.js'

const wrappingKey = new Uint8Array(32).map((_, index) => 0xa0 + index)
const keyHex = Buffer.from(wrappingKey).toString('hex')
const keyBase64 = Buffer.from(wrappingKey).toString('base64')

/** Encryption materials for suite 0x0478 with no data key yet, as a keyring's onEncrypt is given them. */
const encryptMaterials = () => ({ suite: suiteFromOption(0x0478), encryptionContext: {}, encryptedDataKeys: [], requiredEncryptionContextKeys: [] }) as never

/** What a RawRsaKeyring (OAEP-SHA256) of these keys fails with when it wraps a data key on `backend`. */
const rsaRefusal = async (backend: CryptoBackend, keys: { publicKey?: unknown; privateKey?: unknown }) =>
  (await rejectionOf(new RawRsaKeyring({ keyNamespace: 'n', keyName: 'k', padding: 'OAEP-SHA256', ...(keys as object) }).onEncrypt(encryptMaterials(), backend))) as Error & { code: string }

describe('keyring configuration', () => {
  it.each([
    ['AES key of 20 bytes', () => new RawAesKeyring({ keyNamespace: 'n', keyName: 'k', wrappingKey: new Uint8Array(20) })],
    ['AES key not bytes', () => new RawAesKeyring({ keyNamespace: 'n', keyName: 'k', wrappingKey: 'abc' as never })],
    ['AES key of zeros (never filled, or zeroed by the official SDK\'s keyring)', () => new RawAesKeyring({ keyNamespace: 'n', keyName: 'k', wrappingKey: new Uint8Array(32) })],
    ['empty namespace', () => new RawAesKeyring({ keyNamespace: '', keyName: 'k', wrappingKey })],
    ['aws-kms namespace', () => new RawAesKeyring({ keyNamespace: 'aws-kms', keyName: 'k', wrappingKey })],
    ['empty key name', () => new RawAesKeyring({ keyNamespace: 'n', keyName: '', wrappingKey })],
    ['RSA empty namespace', () => new RawRsaKeyring({ keyNamespace: '', keyName: 'k', publicKey: rsaPem().publicKey, padding: 'OAEP-SHA256' })],
    ['RSA aws-kms namespace', () => new RawRsaKeyring({ keyNamespace: 'aws-kms', keyName: 'k', publicKey: rsaPem().publicKey, padding: 'OAEP-SHA256' })],
    ['RSA key name not a string', () => new RawRsaKeyring({ keyNamespace: 'n', keyName: 7 as never, publicKey: rsaPem().publicKey, padding: 'OAEP-SHA256' })],
    ['RSA key name with a lone surrogate', () => new RawRsaKeyring({ keyNamespace: 'n', keyName: 'k\ud800', publicKey: rsaPem().publicKey, padding: 'OAEP-SHA256' })],
    ['RSA without keys', () => new RawRsaKeyring({ keyNamespace: 'n', keyName: 'k', padding: 'OAEP-SHA256' })],
    ['RSA unknown padding', () => new RawRsaKeyring({ keyNamespace: 'n', keyName: 'k', publicKey: rsaPem().publicKey, padding: 'OAEP-MD5' as never })],
    ['multi without keyrings', () => new MultiKeyring({})],
    ['multi with a non-keyring child', () => new MultiKeyring({ children: [{} as never] })],
    ['multi with a non-keyring generator', () => new MultiKeyring({ generator: { onEncrypt: async () => ({}) } as never })],
    ['multi with children not an array', () => new MultiKeyring({ children: aesKeyring() as never })],
    ['materials manager without keyring', () => new DefaultMaterialsManager({} as never)],
  ])('%s', (_name, build) => {
    expect(build).toThrow(ConfigurationError)
  })

  it('an AES wrapping key in another form (text, a KeyObject, a CryptoKey, an ArrayBuffer) is refused with how to pass its bytes, never echoed', async () => {
    const { createSecretKey } = await import('node:crypto')
    const cryptoKey = await crypto.subtle.importKey('raw', wrappingKey, 'AES-GCM', true, ['encrypt'])
    const cases: Array<[unknown, RegExp]> = [
      [keyHex, /got a string: pass the key's bytes \(Buffer\.from\(text, "hex"\) or "base64" in Node\)\.$/],
      [keyBase64, /got a string: pass the key's bytes/],
      [createSecretKey(wrappingKey), /got a KeyObject: pass keyObject\.export\(\)\.$/],
      [cryptoKey, /got a CryptoKey: pass its raw bytes \(crypto\.subtle\.exportKey\("raw", key\)\)\.$/],
      [wrappingKey.slice().buffer, /got an ArrayBuffer: pass new Uint8Array\(buffer\)\.$/],
      [null, /got null\.$/],
      [new Uint8Array(20), /; got 20 bytes\.$/],
      [new Uint8Array([7]), /; got 1 byte\.$/],
    ]
    for (const [given, says] of cases) {
      const error = thrownBy(() => new RawAesKeyring({ keyNamespace: 'n', keyName: 'k', wrappingKey: given as never }))
      expect(error).toBeInstanceOf(ConfigurationError)
      const { message } = error as Error
      expect(message).toMatch(/^RawAesKeyring wrappingKey must be a Uint8Array of 16, 24 or 32 bytes; /)
      expect(message).toMatch(says)
      expect(message).not.toContain(keyHex)
      expect(message).not.toContain(keyBase64)
    }
  })

  it('an unreadable RSA key is a configuration error that does not echo the key', async () => {
    const secretPem = '-----BEGIN PRIVATE KEY-----\nTOP-SECRET-MATERIAL\n-----END PRIVATE KEY-----\n'
    const keyring = new RawRsaKeyring({ keyNamespace: 'n', keyName: 'k', privateKey: secretPem, padding: 'OAEP-SHA256' })
    const error = await rejectionOf(encrypt(keyring, 'x'))
    expect(error).toBeInstanceOf(ConfigurationError)
    expect(String((error as Error).message)).not.toContain('TOP-SECRET')
  })

  it('an EC key given as RSA is refused', async () => {
    const { generateKeyPairSync } = await import('node:crypto')
    const { publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' })
    const keyring = new RawRsaKeyring({ keyNamespace: 'n', keyName: 'k', publicKey, padding: 'OAEP-SHA256' })
    expect(await rejectionOf(encrypt(keyring, 'x'))).toBeInstanceOf(ConfigurationError)
  })

  it('DER bytes (SPKI, PKCS#8) work as PEM does; a private key given as the public one is refused', async () => {
    const { createPrivateKey, createPublicKey } = await import('node:crypto')
    const { publicKey, privateKey } = rsaPem()
    const spki = new Uint8Array(createPublicKey(publicKey).export({ type: 'spki', format: 'der' }))
    const pkcs8 = new Uint8Array(createPrivateKey(privateKey).export({ type: 'pkcs8', format: 'der' }))
    const der = new RawRsaKeyring({ keyNamespace: 'test', keyName: 'rsa-1', publicKey: spki, privateKey: pkcs8, padding: 'OAEP-SHA256' })
    const { ciphertext } = await encrypt(der, 'der')
    expect(new TextDecoder().decode((await decrypt(rsaKeyring('OAEP-SHA256'), ciphertext)).plaintext)).toBe('der')
    const { ciphertext: fromPem } = await encrypt(rsaKeyring('OAEP-SHA256'), 'pem')
    expect(new TextDecoder().decode((await decrypt(der, fromPem)).plaintext)).toBe('pem')
    const swapped = new RawRsaKeyring({ keyNamespace: 'test', keyName: 'rsa-1', publicKey: pkcs8, padding: 'OAEP-SHA256' })
    expect(await rejectionOf(encrypt(swapped, 'x'))).toBeInstanceOf(ConfigurationError)
  })

  it('a key of the wrong half, or no key at all, is refused when used', async () => {
    const { createPrivateKey, createPublicKey } = await import('node:crypto')
    const { publicKey, privateKey } = rsaPem()
    const rsa = (keys: object) => new RawRsaKeyring({ keyNamespace: 'n', keyName: 'k', padding: 'OAEP-SHA256', ...keys })
    for (const wrong of [createPrivateKey(privateKey), 42, { pem: publicKey }]) {
      expect(await rejectionOf(encrypt(rsa({ publicKey: wrong }), 'x')), String(wrong)).toBeInstanceOf(ConfigurationError)
    }
    // What is no key at all is told what a key may be.
    expect((await rejectionOf(encrypt(rsa({ publicKey: 42 }), 'x')) as Error).message).toMatch(/PEM string, DER bytes, a KeyObject or an RSA-OAEP CryptoKey, got number/)
    const { ciphertext } = await encrypt(rsa({ publicKey }), 'x')
    // On decrypt a keyring's failure is the reason no keyring decrypted: its ConfigurationError is the failure's.
    for (const wrong of [createPublicKey(publicKey), 42]) {
      const error = await rejectionOf(decrypt(rsa({ publicKey, privateKey: wrong }), ciphertext))
      expect(error, String(wrong)).toBeInstanceOf(NoDecryptableKeyError)
      expect((error as NoDecryptableKeyError).failures[0]?.error, String(wrong)).toBeInstanceOf(ConfigurationError)
    }
  })
})

describe('a RawRsaKeyring given WebCrypto CryptoKeys', () => {
  const OAEP = { 'OAEP-SHA1': 'SHA-1', 'OAEP-SHA256': 'SHA-256', 'OAEP-SHA384': 'SHA-384', 'OAEP-SHA512': 'SHA-512' } as const
  const generate = (hash: string, extractable = false) =>
    crypto.subtle.generateKey({ name: 'RSA-OAEP', modulusLength: 2048, publicExponent: new Uint8Array([1, 0, 1]), hash }, extractable, ['encrypt', 'decrypt'])

  it.each(Object.entries(OAEP))('work in both builds alike, non-extractable ones too (%s), and each build reads the other\'s messages', async (padding, hash) => {
    const browser = await import('../src/browser.js')
    const { publicKey, privateKey } = await generate(hash)
    const options = { keyNamespace: 'n', keyName: 'crypto-key', publicKey, privateKey, padding: padding as keyof typeof OAEP }
    const node = new RawRsaKeyring(options)
    const web = new browser.RawRsaKeyring(options)
    const fromNode = await encrypt(node, 'from the Node build')
    const fromWeb = await browser.encrypt(web, 'from the browser build')
    expect(new TextDecoder().decode((await browser.decrypt(web, fromNode.ciphertext)).plaintext)).toBe('from the Node build')
    expect(new TextDecoder().decode((await decrypt(node, fromWeb.ciphertext)).plaintext)).toBe('from the browser build')
  })

  it('are used through WebCrypto: Node 24 and later deprecate converting a non-extractable one to a KeyObject (DEP0204), and no warning is raised', async () => {
    const warnings: string[] = []
    const listener = (warning: Error & { code?: string }) => void warnings.push(`${warning.code}: ${warning.message}`)
    process.on('warning', listener)
    try {
      const { publicKey, privateKey } = await generate('SHA-256')
      const keyring = new RawRsaKeyring({ keyNamespace: 'n', keyName: 'k', publicKey, privateKey, padding: 'OAEP-SHA256' })
      expect(new TextDecoder().decode((await decrypt(keyring, (await encrypt(keyring, 'quiet')).ciphertext)).plaintext)).toBe('quiet')
      await new Promise((resolve) => setImmediate(resolve)) // warnings are emitted on a later tick
    } finally {
      process.off('warning', listener)
    }
    expect(warnings).toEqual([])
  })

  it('a private key alone: an extractable one gives its public half (checked against the padding too); a non-extractable one only decrypts', async () => {
    const extractable = await generate('SHA-384', true)
    const alone = new RawRsaKeyring({ keyNamespace: 'n', keyName: 'k', privateKey: extractable.privateKey, padding: 'OAEP-SHA384' })
    expect(new TextDecoder().decode((await decrypt(alone, (await encrypt(alone, 'derived')).ciphertext)).plaintext)).toBe('derived')
    const wrongPadding = new RawRsaKeyring({ keyNamespace: 'n', keyName: 'k', privateKey: extractable.privateKey, padding: 'OAEP-SHA256' })
    expect(await rejectionOf(encrypt(wrongPadding, 'x'))).toMatchObject({ code: 'INVALID_CONFIGURATION', message: 'The RSA private CryptoKey was imported for SHA-384; this padding needs SHA-256.' })
    const fixed = await generate('SHA-256')
    const sealed = await encrypt(new RawRsaKeyring({ keyNamespace: 'n', keyName: 'k', publicKey: fixed.publicKey, padding: 'OAEP-SHA256' }), 'for a fixed key')
    const decryptOnly = new RawRsaKeyring({ keyNamespace: 'n', keyName: 'k', privateKey: fixed.privateKey, padding: 'OAEP-SHA256' })
    expect(new TextDecoder().decode((await decrypt(decryptOnly, sealed.ciphertext)).plaintext)).toBe('for a fixed key')
    expect(await rejectionOf(encrypt(decryptOnly, 'x'))).toMatchObject({
      code: 'INVALID_CONFIGURATION',
      message: 'The RSA private CryptoKey is not extractable, so its public half cannot be derived to encrypt with: give the keyring its publicKey too.',
    })
    // Halves of two pairs are told apart by wrapping a value with one and unwrapping it with the other.
    const another = await generate('SHA-256')
    const mixed = new RawRsaKeyring({ keyNamespace: 'n', keyName: 'k', publicKey: another.publicKey, privateKey: fixed.privateKey, padding: 'OAEP-SHA256' })
    expect(await rejectionOf(encrypt(mixed, 'x'))).toMatchObject({
      code: 'INVALID_CONFIGURATION',
      message: 'RawRsaKeyring "n/k": its publicKey and privateKey are not one key pair, so the data keys it wraps would not decrypt with its privateKey.',
    })
  })

  it('one half a CryptoKey and the other PEM: halves of one pair work together, halves of two pairs are refused', async () => {
    const pair = await generate('SHA-256', true)
    const pem = {
      publicKey: KeyObject.from(pair.publicKey).export({ type: 'spki', format: 'pem' }) as string,
      privateKey: KeyObject.from(pair.privateKey).export({ type: 'pkcs8', format: 'pem' }) as string,
    }
    const other = rsaPem()
    const keyring = (publicKey: unknown, privateKey: unknown) => new RawRsaKeyring({ keyNamespace: 'n', keyName: 'k', publicKey, privateKey, padding: 'OAEP-SHA256' } as never)
    for (const [what, publicKey, privateKey] of [
      ['CryptoKey public half', pair.publicKey, pem.privateKey],
      ['CryptoKey private half', pem.publicKey, pair.privateKey],
    ] as const) {
      const { ciphertext } = await encrypt(keyring(publicKey, privateKey), what)
      expect(new TextDecoder().decode((await decrypt(keyring(publicKey, privateKey), ciphertext)).plaintext)).toBe(what)
    }
    for (const mixed of [keyring(pair.publicKey, other.privateKey), keyring(other.publicKey, pair.privateKey)]) {
      expect(await rejectionOf(encrypt(mixed, 'x'))).toMatchObject({ code: 'INVALID_CONFIGURATION', message: expect.stringMatching(/are not one key pair/) })
    }
  })

  it('refuse, as the browser build does, a key imported for another hash or padding, an RSA-PSS or EC key, and a private key as the public one', async () => {
    const sha256 = await generate('SHA-256')
    const messages = async (options: Record<string, unknown>) => {
      try {
        const keyring = new RawRsaKeyring({ keyNamespace: 'n', keyName: 'k', padding: 'OAEP-SHA256', ...options } as never)
        await encrypt(keyring, 'x')
        return 'encrypted'
      } catch (error) {
        return `${(error as EnvelopeError).code}: ${(error as Error).message}`
      }
    }
    const pss = await crypto.subtle.generateKey({ name: 'RSA-PSS', modulusLength: 2048, publicExponent: new Uint8Array([1, 0, 1]), hash: 'SHA-256' }, false, ['sign', 'verify'])
    const ec = await crypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, false, ['sign', 'verify'])
    expect(await messages({ publicKey: sha256.publicKey, padding: 'OAEP-SHA1' })).toBe('INVALID_CONFIGURATION: The RSA public CryptoKey was imported for SHA-256; this padding needs SHA-1.')
    expect(await messages({ publicKey: sha256.publicKey, padding: 'PKCS1' })).toBe('INVALID_CONFIGURATION: The RSA public CryptoKey was imported for RSA-OAEP with SHA-256; PKCS1 padding cannot use it.')
    expect(await messages({ publicKey: pss.publicKey })).toBe('INVALID_CONFIGURATION: The RSA public key could not be read: expected an RSA-OAEP public CryptoKey, got an RSA-PSS public one.')
    expect(await messages({ publicKey: ec.publicKey })).toBe('INVALID_CONFIGURATION: The RSA public key could not be read: expected an RSA-OAEP public CryptoKey, got an ECDSA public one.')
    expect(await messages({ publicKey: sha256.privateKey })).toBe('INVALID_CONFIGURATION: The RSA public key could not be read: expected an RSA-OAEP public CryptoKey, got an RSA-OAEP private one.')
    const small = await crypto.subtle.generateKey({ name: 'RSA-OAEP', modulusLength: 1024, publicExponent: new Uint8Array([1, 0, 1]), hash: 'SHA-256' }, false, ['encrypt', 'decrypt'])
    expect(await messages({ publicKey: small.publicKey })).toBe('INVALID_CONFIGURATION: The RSA public key has a 1024-bit modulus; encrypting needs at least 2048 bits.')
    // Another key's wrapped data key fails as RSA does with a KeyObject: a KeyringError, with WebCrypto's error as cause.
    const other = await generate('SHA-256')
    const otherKeyring = new RawRsaKeyring({ keyNamespace: 'n', keyName: 'k', padding: 'OAEP-SHA256', privateKey: other.privateKey })
    const refused = (await rejectionOf(decrypt(otherKeyring, (await encrypt(new RawRsaKeyring({ keyNamespace: 'n', keyName: 'k', padding: 'OAEP-SHA256', publicKey: sha256.publicKey }), 'x')).ciphertext))) as NoDecryptableKeyError
    const cause = (refused.failures[0]!.error as Error).cause as Error
    expect([cause.constructor.name, cause.message]).toEqual(['KeyringError', 'RSA OAEP-SHA256 decryption of the data key failed.'])
    // The private side's hash is checked on decrypt, where the key first does RSA.
    const sealed = await encrypt(new RawRsaKeyring({ keyNamespace: 'n', keyName: 'k', padding: 'OAEP-SHA256', publicKey: sha256.publicKey }), 'x')
    const sha1 = await generate('SHA-1')
    const wrongHash = new RawRsaKeyring({ keyNamespace: 'n', keyName: 'k', padding: 'OAEP-SHA256', privateKey: sha1.privateKey })
    const failure = (await rejectionOf(decrypt(wrongHash, sealed.ciphertext))) as NoDecryptableKeyError
    expect(failure.failures.map(({ error }) => (error as Error).message)).toEqual(['The RSA private CryptoKey was imported for SHA-1; this padding needs SHA-256.'])
  })
})

describe('a RawRsaKeyring given DER keys as Buffers', () => {
  it('keeps its own copies (a Buffer\'s slice() shares its memory), in both builds: the caller may reuse its buffers', async () => {
    const browser = await import('../src/browser.js')
    const pair = generateKeyPairSync('rsa', { modulusLength: 2048, publicKeyEncoding: { type: 'spki', format: 'der' }, privateKeyEncoding: { type: 'pkcs8', format: 'der' } })
    for (const [Keyring, encrypting, decrypting] of [[RawRsaKeyring, encrypt, decrypt], [browser.RawRsaKeyring, browser.encrypt, browser.decrypt]] as const) {
      const publicKey = Buffer.from(pair.publicKey)
      const privateKey = Buffer.from(pair.privateKey)
      const keyring = new Keyring({ keyNamespace: 'n', keyName: 'der', publicKey, privateKey, padding: 'OAEP-SHA256' })
      publicKey.fill(0)
      privateKey.fill(0)
      const { ciphertext } = await encrypting(keyring, 'reused buffers')
      expect(new TextDecoder().decode((await decrypting(keyring, ciphertext)).plaintext)).toBe('reused buffers')
    }
  })
})

describe('a RawRsaKeyring given both keys', () => {
  const other = generateKeyPairSync('rsa', { modulusLength: 2048, publicKeyEncoding: { type: 'spki', format: 'pem' }, privateKeyEncoding: { type: 'pkcs8', format: 'pem' } })
  const paddings = ['OAEP-SHA1', 'OAEP-SHA256', 'OAEP-SHA384', 'OAEP-SHA512', 'PKCS1'] as const

  it('refuses to encrypt when they are not one pair: its messages would not decrypt with its own private key', async () => {
    const browser = await import('../src/browser.js')
    const { publicKey } = rsaPem()
    for (const [build, Keyring, encrypting] of [['node', RawRsaKeyring, encrypt], ['browser', browser.RawRsaKeyring, browser.encrypt]] as const) {
      for (const padding of build === 'node' ? paddings : paddings.filter((name) => name !== 'PKCS1')) {
        const mismatched = new Keyring({ keyNamespace: 'n', keyName: 'k', publicKey, privateKey: other.privateKey, padding })
        const error = await rejectionOf(encrypting(mismatched, 'x'))
        expect(error, `${build} ${padding}`).toMatchObject({
          code: 'INVALID_CONFIGURATION',
          message: 'RawRsaKeyring "n/k": its publicKey and privateKey are not one key pair, so the data keys it wraps would not decrypt with its privateKey.',
        })
        expect(String((error as Error).message)).not.toContain('MII')
        // A pair encrypts and decrypts, the check made once.
        const pair = new Keyring({ keyNamespace: 'n', keyName: 'k', publicKey: other.publicKey, privateKey: other.privateKey, padding })
        const { ciphertext } = await encrypting(pair, 'x')
        expect(new TextDecoder().decode((await (build === 'node' ? decrypt : browser.decrypt)(pair, ciphertext, { maxEncryptedDataKeys: 1 })).plaintext)).toBe('x')
      }
    }
  })

  it('checks the pair once per keyring, without a private-key operation in Node', async () => {
    const { publicKey, privateKey } = rsaPem()
    const pair = new RawRsaKeyring({ keyNamespace: 'n', keyName: 'k', publicKey, privateKey, padding: 'OAEP-SHA256' })
    let decrypts = 0
    const counting: CryptoBackend = { ...nodeBackend, rsaDecrypt: (...args) => (decrypts++, nodeBackend.rsaDecrypt(...args)) }
    await pair.onEncrypt(encryptMaterials(), counting)
    await pair.onEncrypt(encryptMaterials(), counting)
    expect(decrypts).toBe(0)
    const mismatched = new RawRsaKeyring({ keyNamespace: 'n', keyName: 'k', publicKey, privateKey: other.privateKey, padding: 'OAEP-SHA256' })
    expect(await rejectionOf(mismatched.onEncrypt(encryptMaterials(), counting))).toBeInstanceOf(ConfigurationError)
    // Where the backend cannot compare keys, a random value wrapped and unwrapped tells, once.
    const { rsaKeysArePair: _, ...withoutCompare } = nodeBackend as CryptoBackend & { rsaKeysArePair?: unknown }
    const roundTrip: CryptoBackend = { ...withoutCompare, rsaDecrypt: (...args) => (decrypts++, nodeBackend.rsaDecrypt(...args)) }
    const fresh = new RawRsaKeyring({ keyNamespace: 'n', keyName: 'k', publicKey, privateKey, padding: 'OAEP-SHA256' })
    await fresh.onEncrypt(encryptMaterials(), roundTrip)
    await fresh.onEncrypt(encryptMaterials(), roundTrip)
    expect(decrypts).toBe(1)
  })

  it('a private key PEM given as the publicKey is refused in Node too (Node would derive the public key from it)', async () => {
    const { privateKey } = rsaPem()
    const keyring = new RawRsaKeyring({ keyNamespace: 'n', keyName: 'k', publicKey: privateKey, padding: 'OAEP-SHA256' })
    const error = await rejectionOf(encrypt(keyring, 'x'))
    expect(error).toMatchObject({ code: 'INVALID_CONFIGURATION', message: 'The RSA public key could not be read: a "PRIVATE KEY" PEM block is not a public key.' })
  })
})

describe('an RSA key that cannot be read says why, in the same words on node:crypto and WebCrypto', () => {
  const { publicKey, privateKey } = rsaPem()
  // node:crypto said only "invalid key encoding" for each of these, where the browser build said what was wrong.
  it.each<[string, { publicKey?: string; privateKey?: string }, string]>([
    ['a file name as the public key', { publicKey: './public.pem' }, 'The RSA public key could not be read: not a PEM block.'],
    ['a file name as the private key', { privateKey: './private.pem' }, 'The RSA private key could not be read: not a PEM block.'],
    ['a public key PEM as the private key', { privateKey: publicKey }, 'The RSA private key could not be read: a "PUBLIC KEY" PEM block is not a private key.'],
    ['a PEM block cut short', { publicKey: publicKey.slice(0, 100) }, 'The RSA public key could not be read: not a PEM block.'],
  ])('%s', async (_what, keys, message) => {
    for (const backend of [nodeBackend, webCryptoBackend]) {
      expect(await rsaRefusal(backend, keys), backend.name).toMatchObject({ code: 'INVALID_CONFIGURATION', message })
    }
  })
  it('a PEM file holding a certificate before the private key still reads in Node', async () => {
    const certificateFirst = `-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n${privateKey}`
    const keyring = new RawRsaKeyring({ keyNamespace: 'n', keyName: 'k', privateKey: certificateFirst, padding: 'OAEP-SHA256' })
    const { ciphertext } = await encrypt(keyring, 'x')
    expect(Buffer.from((await decrypt(keyring, ciphertext)).plaintext).toString()).toBe('x')
  })
})

describe('RawRsaKeyring keys in the Node build: KeyObjects, and keys that are no RSA key', () => {
  const { publicKey, privateKey } = rsaPem()

  it("takes node:crypto KeyObjects, which open what the same keys' PEM wrapped and the other way round", async () => {
    const keyring = (keys: object) => new RawRsaKeyring({ keyNamespace: 'n', keyName: 'k', padding: 'OAEP-SHA256', ...keys })
    const objects = keyring({ publicKey: createPublicKey(publicKey), privateKey: createPrivateKey(privateKey) })
    const pem = keyring({ publicKey, privateKey })
    for (const [writer, reader] of [[objects, pem], [pem, objects], [objects, objects]]) {
      const { ciphertext } = await encrypt(writer as RawRsaKeyring, 'key objects')
      expect(Buffer.from((await decrypt(reader as RawRsaKeyring, ciphertext)).plaintext).toString()).toBe('key objects')
    }
  })

  it('an EC key is refused as no RSA key, in every form', async () => {
    const ec = generateKeyPairSync('ec', { namedCurve: 'P-256', publicKeyEncoding: { type: 'spki', format: 'pem' }, privateKeyEncoding: { type: 'pkcs8', format: 'pem' } })
    const ecDer = new Uint8Array(createPublicKey(ec.publicKey).export({ format: 'der', type: 'spki' }))
    for (const [what, keys] of [
      ['PEM', { publicKey: ec.publicKey }],
      ['DER', { publicKey: ecDer }],
      ['KeyObject', { publicKey: createPublicKey(ec.publicKey) }],
      ['private PEM', { privateKey: ec.privateKey }],
    ] as const) {
      const kind = 'publicKey' in keys ? 'public' : 'private'
      expect(await rsaRefusal(nodeBackend, keys), what).toMatchObject({ code: 'INVALID_CONFIGURATION', message: `The RSA ${kind} key could not be read: expected an RSA key, got ec.` })
    }
  })

  it('bytes or a PEM block that hold no key are an invalid key encoding; a block of another kind as the private key is named', async () => {
    const notDer = Uint8Array.of(0x30, 3, 1, 2, 3)
    const spoilt = privateKey.replace(/\n[A-Za-z0-9+/]{10}/, '\nAAAAAAAAAA')
    const certificate = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n'
    expect(spoilt).not.toBe(privateKey)
    for (const [keys, message] of [
      [{ publicKey: notDer }, 'The RSA public key could not be read: invalid key encoding.'],
      [{ privateKey: notDer }, 'The RSA private key could not be read: invalid key encoding.'],
      [{ privateKey: spoilt }, 'The RSA private key could not be read: invalid key encoding.'],
      // node:crypto takes an X.509 certificate for its public key: this one holds none.
      [{ publicKey: certificate }, 'The RSA public key could not be read: invalid key encoding.'],
      [{ privateKey: certificate }, 'The RSA private key could not be read: a "CERTIFICATE" PEM block is not a private key.'],
    ] as const) {
      expect(await rsaRefusal(nodeBackend, keys)).toMatchObject({ code: 'INVALID_CONFIGURATION', message })
    }
  })
})

describe('key material stays private', () => {
  it('inspect, JSON and String never show the wrapping key', () => {
    const keyring = new RawAesKeyring({ keyNamespace: 'n', keyName: 'k', wrappingKey })
    for (const text of [inspect(keyring, { showHidden: true, depth: 10 }), JSON.stringify(keyring), String(keyring), inspect(new MultiKeyring({ generator: keyring }), { depth: 10 })]) {
      expect(text).not.toContain(keyHex)
      expect(text).not.toContain(keyBase64)
      expect(text).not.toMatch(/160, 161, 162/)
    }
  })

  it.each([
    ['Uint8Array', () => wrappingKey.slice()],
    ['Buffer (whose slice is a view)', () => Buffer.from(wrappingKey)],
  ])('the keyring copies a %s wrapping key: changing the caller buffer changes nothing', async (_kind, makeKey) => {
    const callerKey = makeKey()
    const keyring = new RawAesKeyring({ keyNamespace: 'n', keyName: 'k', wrappingKey: callerKey })
    const { ciphertext } = await encrypt(keyring, 'x')
    callerKey.fill(0)
    expect(new TextDecoder().decode((await decrypt(keyring, ciphertext)).plaintext)).toBe('x')
  })

  it('RSA keyrings do not show their private key', () => {
    const text = inspect(rsaKeyring(), { showHidden: true, depth: 10 }) + JSON.stringify(rsaKeyring())
    expect(text).not.toContain('PRIVATE KEY')
  })

  it('the data key handed to keyrings is zeroed once the message is written', async () => {
    let seen: Uint8Array | undefined
    const inner = aesKeyring()
    const spy = {
      onEncrypt: async (...args: Parameters<typeof inner.onEncrypt>) => {
        const materials = await inner.onEncrypt(...args)
        seen = materials.plaintextDataKey
        return materials
      },
      onDecrypt: inner.onDecrypt.bind(inner),
    }
    await encrypt(spy, 'x')
    expect(seen).toBeDefined()
    expect(isAllZero(seen!)).toBe(true)
  })
})

/** A synchronous AES-GCM key that only decrypts into the caller's buffer (no openDetached): a raw AES keyring's other sync path. */
const inPlaceOnly: CryptoBackend = {
  ...nodeBackend,
  aeadKey(key) {
    const inner = nodeBackend.aeadKey(key) as AeadKey
    return { seal: inner.seal.bind(inner), open: inner.open.bind(inner) }
  },
}

describe('a failed raw AES unwrap', () => {
  /**
   * `base` (node:crypto by default) whose AES-GCM keys remember every output buffer `open` wrote into, and every buffer a decipher
   * handed `openDetached` (which decrypts into the cipher's own output).
   */
  function recordingBackend(base: CryptoBackend = nodeBackend): { backend: CryptoBackend; outputs: Uint8Array[] } {
    const outputs: Uint8Array[] = []
    const decipherPrototype = Object.getPrototypeOf(createDecipheriv('aes-256-gcm', Buffer.alloc(32), Buffer.alloc(12))) as DecipherGCM
    const backend: CryptoBackend = {
      ...base,
      aeadKey(key) {
        const aead = base.aeadKey(key) as AeadKey
        const open = aead.open.bind(aead)
        aead.open = (iv, aad, ciphertext, tag, out, offset) => {
          outputs.push(out)
          return open(iv, aad, ciphertext, tag, out, offset)
        }
        const openDetached = aead.openDetached?.bind(aead)
        if (openDetached !== undefined) {
          aead.openDetached = (iv, aad, ciphertext, tag) => {
            const update = decipherPrototype.update
            decipherPrototype.update = function (this: DecipherGCM, ...args: Parameters<DecipherGCM['update']>) {
              const output = (update as (...a: typeof args) => Buffer).apply(this, args)
              outputs.push(output)
              return output
            } as DecipherGCM['update']
            try {
              return openDetached(iv, aad, ciphertext, tag)
            } finally {
              decipherPrototype.update = update
            }
          }
        }
        return aead
      },
    }
    return { backend, outputs }
  }

  // GCM decrypts without regard to the AAD: under a differing context the tag fails, but the bytes written
  // are the real data key (or intermediate key) and must not be left behind.
  it.each([
    ['a data key (0x0478)', suiteFromOption(0x0478)],
    ['an intermediate key (DynamoDB suite 0x6700)', dbeSuite(0x6700)],
  ])('zeroes what it decrypted: %s', async (_, suite) => {
    const keyring = aesKeyring()
    const materials = await new DefaultMaterialsManager(keyring).getEncryptionMaterials(
      { suite, encryptionContext: { tenant: 'a' }, commitmentPolicy: 'REQUIRE_ENCRYPT_REQUIRE_DECRYPT', maxPlaintextLength: 1 },
      nodeBackend,
    )
    // node:crypto (into the cipher's own output), WebCrypto (asynchronous), and a synchronous key without openDetached.
    for (const base of [nodeBackend, webCryptoBackend, inPlaceOnly]) {
      const { backend, outputs } = recordingBackend(base)
      const failure = await rejectionOf(
        keyring.onDecrypt({ suite, encryptionContext: { tenant: 'b' }, requiredEncryptionContextKeys: [] }, materials.encryptedDataKeys, backend),
      )
      expect(failure).toMatchObject({
        code: 'KEYRING_FAILURE',
        message: 'RawAesKeyring "test/key-1" found 1 encrypted data key for its key name, but none unwrapped: the wrapping key or the encryption context differs from the one used to encrypt.',
      })
      expect(outputs.length).toBeGreaterThan(0)
      for (const out of outputs) expect(isAllZero(out)).toBe(true)
    }
  })

  it('with several keys under its name, tries each in turn until one unwraps, and zeroes what each failed attempt wrote', async () => {
    const suite = suiteFromOption(0x0478)
    const request = { suite, encryptionContext: { tenant: 'a' }, requiredEncryptionContextKeys: [] }
    const wrap = async (fill: number) =>
      new DefaultMaterialsManager(aesKeyring(32, 'key-1', fill)).getEncryptionMaterials(
        { ...request, commitmentPolicy: 'REQUIRE_ENCRYPT_REQUIRE_DECRYPT', maxPlaintextLength: 1 },
        nodeBackend,
      )
    // The same namespace and name under two other wrapping keys, then this keyring's own.
    const [first, second, own] = await Promise.all([wrap(1), wrap(2), wrap(7)])
    const keys = [...first.encryptedDataKeys, ...second.encryptedDataKeys, ...own.encryptedDataKeys]
    for (const base of [nodeBackend, webCryptoBackend, inPlaceOnly]) {
      const { backend, outputs } = recordingBackend(base)
      expect((await aesKeyring().onDecrypt(request, keys, backend)).plaintextDataKey).toEqual(own.plaintextDataKey)
      expect(outputs).toHaveLength(3)
      expect(outputs.slice(0, 2).map((out) => isAllZero(out))).toEqual([true, true])
      expect(new Uint8Array(outputs[2]!)).toEqual(new Uint8Array(own.plaintextDataKey))
      // None of them unwraps: all three are tried, and each attempt's output zeroed.
      outputs.length = 0
      const failure = await rejectionOf(aesKeyring(32, 'key-1', 9).onDecrypt(request, keys, backend))
      expect(failure).toMatchObject({ code: 'KEYRING_FAILURE', message: expect.stringContaining('found 3 encrypted data keys for its key name, but none unwrapped') })
      expect(outputs.map((out) => isAllZero(out))).toEqual([true, true, true])
    }
  })
})

describe('raw AES keyring answers', () => {
  it('with a promise on every path, synchronous keys or not: a rejection, never a throw', async () => {
    const keyring = aesKeyring()
    const suite = suiteFromOption(0x0478)
    const materials = await new DefaultMaterialsManager(keyring).getEncryptionMaterials(
      { suite, encryptionContext: { tenant: 'a' }, commitmentPolicy: 'REQUIRE_ENCRYPT_REQUIRE_DECRYPT', maxPlaintextLength: 1 },
      nodeBackend,
    )
    const request = (tenant: string) => ({ suite, encryptionContext: { tenant }, requiredEncryptionContextKeys: [] })
    for (const backend of [nodeBackend, webCryptoBackend, inPlaceOnly]) {
      const unwrapped = keyring.onDecrypt(request('a'), materials.encryptedDataKeys, backend)
      expect(unwrapped).toBeInstanceOf(Promise)
      expect(Buffer.from((await unwrapped).plaintextDataKey as Uint8Array).equals(Buffer.from(materials.plaintextDataKey))).toBe(true)
      const refused = keyring.onDecrypt(request('b'), materials.encryptedDataKeys, backend)
      expect(refused).toBeInstanceOf(Promise)
      expect(await rejectionOf(refused)).toBeInstanceOf(EnvelopeError)
    }
    const broken: CryptoBackend = {
      ...nodeBackend,
      aeadKey() {
        throw new Error('no AES here')
      },
    }
    const failing = aesKeyring().onDecrypt(request('a'), materials.encryptedDataKeys, broken)
    expect(failing).toBeInstanceOf(Promise)
    expect(((await rejectionOf(failing)) as Error).message).toBe('no AES here')
  })
})

describe('a raw AES keyring tries only its own keys', () => {
  it('passes over a key of another namespace or name, or whose key provider info differs in length, tag length or IV length, and finds its own', async () => {
    const keyring = aesKeyring()
    const suite = suiteFromOption(0x0478)
    // A context whose legacy (en-US) order differs from the spec's: tried only when the spec's order fails.
    const request = { suite, encryptionContext: { tenant: 'a', Zone: 'z' }, requiredEncryptionContextKeys: [] }
    const { encryptedDataKeys, plaintextDataKey } = await new DefaultMaterialsManager(keyring).getEncryptionMaterials(
      { ...request, commitmentPolicy: 'REQUIRE_ENCRYPT_REQUIRE_DECRYPT', maxPlaintextLength: 1 },
      nodeBackend,
    )
    const edk = encryptedDataKeys[0]!
    const name = 'key-1'.length
    const infoWith = (index: number, byte: number) => {
      const providerInfo = edk.providerInfo.slice()
      providerInfo[index] = byte
      return { ...edk, providerInfo }
    }
    const others = [
      { ...edk, providerId: 'tests' },
      infoWith(name - 1, 0x32), // key-2
      infoWith(0, 0x6a), // jey-1: the name's first byte counts too
      { ...edk, providerInfo: Uint8Array.of(...edk.providerInfo, 0) },
      { ...edk, providerInfo: edk.providerInfo.subarray(1) },
      infoWith(name + 3, 96), // a 96-bit tag
      infoWith(name + 2, 1), // a tag length of 384 bits: the whole uint32 is read
      infoWith(name + 7, 16), // a 16-byte IV
      infoWith(name + 4, 1),
    ]
    for (const backend of [nodeBackend, webCryptoBackend]) {
      for (const other of others) expect(await keyring.onDecrypt(request, [other], backend)).toBe(request)
      expect((await keyring.onDecrypt(request, [...others, edk], backend)).plaintextDataKey).toEqual(plaintextDataKey)
      // Its own key, under another context: tried, and named.
      const failure = await rejectionOf(keyring.onDecrypt({ ...request, encryptionContext: { tenant: 'b', Zone: 'z' } }, [...others, edk], backend))
      expect(failure).toMatchObject({
        code: 'KEYRING_FAILURE',
        message: 'RawAesKeyring "test/key-1" found 1 encrypted data key for its key name, but none unwrapped: the wrapping key or the encryption context differs from the one used to encrypt.',
      })
    }
  })
})

describe('keyrings as JSON, and their names in decrypt failures', () => {
  const arn = 'arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab'
  const mrk = 'arn:aws:kms:eu-west-1:111122223333:key/mrk-1234abcd12ab34cd56ef1234567890ab'
  const filter = { partition: 'aws', accountIds: ['111122223333'] }
  const clientSupplier = () => ({ send: () => Promise.reject(new Error('not called')) })

  it('each keyring names its class and shows its identifiers, never a key; a MultiKeyring shows its keyrings', () => {
    const aes = aesKeyring(32, 'shown')
    const keyrings = [
      new MultiKeyring({ generator: aes, children: [new KmsKeyring({ generatorKeyId: arn, clientSupplier })] }),
      new KmsDiscoveryKeyring({ discoveryFilter: filter, region: 'us-east-1', clientSupplier }),
      new KmsMrkKeyring({ keyId: mrk, clientSupplier }),
      new KmsMrkDiscoveryKeyring({ region: 'eu-west-1', discoveryFilter: filter, clientSupplier }),
    ]
    expect(keyrings.map((keyring) => JSON.parse(JSON.stringify(keyring)))).toEqual([
      {
        type: 'MultiKeyring',
        generator: { type: 'RawAesKeyring', keyNamespace: aes.keyNamespace, keyName: 'shown' },
        children: [{ type: 'KmsKeyring', generatorKeyId: arn, keyIds: [] }],
      },
      { type: 'KmsDiscoveryKeyring', discoveryFilter: filter, region: 'us-east-1' },
      { type: 'KmsMrkKeyring', keyId: mrk },
      { type: 'KmsMrkDiscoveryKeyring', region: 'eu-west-1', discoveryFilter: filter },
    ])
  })

  it("a failure names the keyring by the type its toJSON gives, which a minifier leaves alone; else by its class; a toJSON that throws is passed over", async () => {
    const { ciphertext } = await encrypt(aesKeyring(32, 'named'), 'x')
    const wrongKey = aesKeyring(32, 'named', 1)
    // As a minifier leaves the class: renamed.
    const renamed = new (class e extends RawAesKeyring {})({ keyNamespace: wrongKey.keyNamespace, keyName: 'named', wrappingKey: new Uint8Array(32).fill(1) })
    class TenantKeyring implements Keyring {
      onEncrypt = wrongKey.onEncrypt.bind(wrongKey)
      onDecrypt = wrongKey.onDecrypt.bind(wrongKey)
    }
    class BrokenJsonKeyring extends TenantKeyring {
      toJSON(): never {
        throw new Error('no JSON')
      }
    }
    const names = []
    for (const keyring of [renamed, new MultiKeyring({ children: [renamed, new TenantKeyring(), new BrokenJsonKeyring()] })]) {
      const error = await rejectionOf(decrypt(keyring, ciphertext))
      expect(error).toBeInstanceOf(NoDecryptableKeyError)
      names.push((error as NoDecryptableKeyError).failures.map((failure) => failure.keyring))
    }
    expect(names).toEqual([['RawAesKeyring'], ['RawAesKeyring', 'TenantKeyring', 'BrokenJsonKeyring']])
  })
})

describe('multi-keyring', () => {
  it('any child decrypts what the generator and children wrapped', async () => {
    const generator = aesKeyring(32, 'gen')
    const child = rsaKeyring('OAEP-SHA1')
    const { ciphertext, header } = await encrypt(new MultiKeyring({ generator, children: [child] }), 'both')
    expect(header.encryptedDataKeys).toHaveLength(2)
    for (const keyring of [generator, child]) {
      expect(new TextDecoder().decode((await decrypt(keyring, ciphertext)).plaintext)).toBe('both')
    }
  })

  it('its children are fixed when it is made, as other keyrings\' key lists are: the caller\'s array and the one it shows', async () => {
    const given = [aesKeyring(32, 'child-1')]
    const multi = new MultiKeyring({ generator: aesKeyring(32, 'gen'), children: given })
    given.push(aesKeyring(32, 'child-2'))
    expect(() => (multi.children as Keyring[]).push({} as never)).toThrow(TypeError)
    expect(multi.children).toHaveLength(1)
    expect((await encrypt(multi, 'x')).header.encryptedDataKeys).toHaveLength(2)
  })

  it('on decrypt, materials that already hold a data key are returned unchanged, as the official JavaScript SDK does (no keyring tries)', async () => {
    const { header } = await encrypt(new MultiKeyring({ generator: aesKeyring(), children: [rsaKeyring()] }), 'x', { algorithmSuite: 0x0478 })
    const materials = { suite: suiteFromOption(0x0478), encryptionContext: {}, plaintextDataKey: new Uint8Array(32).fill(9) }
    const tries = spyKeyring(aesKeyring())
    for (const keyring of [aesKeyring(), rsaKeyring(), new MultiKeyring({ children: [tries.keyring] })]) {
      expect(await keyring.onDecrypt(materials, header.encryptedDataKeys, nodeBackend), keyring.constructor.name).toBe(materials)
    }
    expect(tries.calls.decrypt).toBe(0)
    expect(materials.plaintextDataKey.every((byte) => byte === 9)).toBe(true)
  })

  it('a MultiKeyring whose children find no data key of theirs, and fail none, returns the materials unchanged', async () => {
    const { header } = await encrypt(aesKeyring(32, 'key-1'), 'x', { algorithmSuite: 0x0478 })
    const materials = { suite: suiteFromOption(0x0478), encryptionContext: {} }
    expect(await new MultiKeyring({ children: [aesKeyring(32, 'key-2')] }).onDecrypt(materials, header.encryptedDataKeys, nodeBackend)).toBe(materials)
  })

  it('a generator that returns no data key, or a data key of another length than the suite\'s, fails with a keyring error', async () => {
    const lazy: Keyring = { onEncrypt: async (materials) => materials, onDecrypt: async (materials) => materials }
    expect(await rejectionOf(encrypt(new MultiKeyring({ generator: lazy, children: [aesKeyring()] }), 'x'))).toMatchObject({
      code: 'KEYRING_FAILURE',
      message: 'The MultiKeyring generator returned no data key.',
    })
    // The raw keyrings check a data key they were given before wrapping it (a generator of the wrong suite's key, say).
    const materials = { suite: suiteFromOption(0x0478), encryptionContext: {}, encryptedDataKeys: [], plaintextDataKey: new Uint8Array(16) }
    for (const keyring of [aesKeyring(), rsaKeyring()]) {
      expect(await rejectionOf(keyring.onEncrypt(materials, nodeBackend)), keyring.constructor.name).toMatchObject({
        code: 'KEYRING_FAILURE',
        message: 'The data key is 16 bytes; the suite needs 32.',
      })
    }
  })

  it('without a generator encrypt fails with a keyring error', async () => {
    const error = await rejectionOf(encrypt(new MultiKeyring({ children: [aesKeyring()] }), 'x'))
    expect(error).toMatchObject({ code: 'KEYRING_FAILURE', message: 'MultiKeyring has no generator and no data key was supplied: give it a generator.' })
  })

  it("on decrypt, a child MultiKeyring's failures are listed one by one with the others', not as one", async () => {
    class Failing implements Keyring {
      constructor(readonly why: string) {}
      onEncrypt(): never {
        throw new Error('not used')
      }
      onDecrypt(): never {
        throw new Error(this.why)
      }
    }
    const { header } = await encrypt(aesKeyring(), 'x', { algorithmSuite: 0x0478 })
    const nested = new MultiKeyring({ children: [new MultiKeyring({ children: [new Failing('a'), new Failing('b')] }), new Failing('c')] })
    const error = (await rejectionOf(nested.onDecrypt({ suite: suiteFromOption(0x0478), encryptionContext: {} }, header.encryptedDataKeys, nodeBackend))) as NoDecryptableKeyError
    expect(error.message).toBe('No keyring in the MultiKeyring could decrypt a data key (3 failed).')
    expect(error.failures.map((failure) => [failure.keyring, (failure.error as Error).message])).toEqual([['Failing', 'a'], ['Failing', 'b'], ['Failing', 'c']])
  })

  it('without a generator, it wraps a data key it is given: as a child of another MultiKeyring, its keyrings each decrypt', async () => {
    const inner = new MultiKeyring({ children: [aesKeyring(32, 'child-1'), rsaKeyring()] })
    const { ciphertext, header } = await encrypt(new MultiKeyring({ generator: aesKeyring(32, 'gen'), children: [inner] }), 'nested')
    expect(header.encryptedDataKeys).toHaveLength(3)
    for (const keyring of [aesKeyring(32, 'gen'), aesKeyring(32, 'child-1'), rsaKeyring()]) {
      expect(new TextDecoder().decode((await decrypt(keyring, ciphertext)).plaintext)).toBe('nested')
    }
  })

  it.each([
    [0x0578, 'REQUIRE_ENCRYPT_REQUIRE_DECRYPT', 'COMMITMENT_MISMATCH'],
    [0x0178, 'FORBID_ENCRYPT_ALLOW_DECRYPT', 'HEADER_AUTHENTICATION_FAILED'],
  ] as const)('a PKCS1 key with bad padding (suite %i) surfaces as an ordinary authentication failure', async (algorithmSuite, commitmentPolicy, code) => {
    const keyring = rsaKeyring('PKCS1')
    const { ciphertext, header } = await encrypt(keyring, 'x', { algorithmSuite, commitmentPolicy })
    const wrapped = header.encryptedDataKeys[0]!.ciphertext
    const at = Buffer.from(ciphertext).indexOf(Buffer.from(wrapped))
    expect(at).toBeGreaterThan(0)
    const mutated = ciphertext.slice()
    // Changing a low-order byte keeps the value below the modulus, so only the padding check can notice.
    mutated[at + wrapped.length - 1] = (mutated[at + wrapped.length - 1] as number) ^ 0x55
    const error = await rejectionOf(decrypt(keyring, mutated, { commitmentPolicy }))
    expect((error as EnvelopeError).code).toBe(code)
  })

  it('a child that fails after the generator made the data key: the key is zeroed, not left behind', async () => {
    const made: Uint8Array[] = []
    const inner = aesKeyring(32, 'gen')
    const generator: Keyring = {
      onEncrypt: async (materials, backend) => {
        const result = await inner.onEncrypt(materials, backend)
        made.push(result.plaintextDataKey as Uint8Array)
        return result
      },
      onDecrypt: (materials, keys, backend) => inner.onDecrypt(materials, keys, backend),
    }
    const failing: Keyring = {
      onEncrypt: async () => {
        throw new Error('KMS in eu-west-1 is down')
      },
      onDecrypt: async (materials) => materials,
    }
    const error = await rejectionOf(encrypt(new MultiKeyring({ generator, children: [failing] }), 'x', { algorithmSuite: 0x0478 }))
    expect(error).toMatchObject({ code: 'KEYRING_FAILURE', message: 'The materials manager (or a keyring it called) failed: KMS in eu-west-1 is down.' })
    expect(made).toHaveLength(1)
    expect(isAllZero(made[0]!)).toBe(true)
    // A data key it was given belongs to whoever made it: a failing child leaves it alone.
    const given = new Uint8Array(32).fill(7)
    const materials = { suite: suiteFromOption(0x0478), encryptionContext: {}, encryptedDataKeys: [], plaintextDataKey: given }
    await rejectionOf(new MultiKeyring({ children: [failing] }).onEncrypt(materials, nodeBackend))
    expect(given.every((byte) => byte === 7)).toBe(true)
  })
})

describe('keyring output the format cannot carry', () => {
  it('an encrypted data key field over 65535 bytes is a keyring error, not a corrupt message', async () => {
    const inner = aesKeyring()
    const oversized = {
      onEncrypt: async (...args: Parameters<typeof inner.onEncrypt>) => {
        const materials = await inner.onEncrypt(...args)
        const huge = { providerId: 'custom', providerInfo: new Uint8Array(70000), ciphertext: new Uint8Array(48) }
        return { ...materials, encryptedDataKeys: [...materials.encryptedDataKeys, huge] }
      },
      onDecrypt: inner.onDecrypt.bind(inner),
    }
    const error = await rejectionOf(encrypt(oversized, 'x'))
    expect((error as EnvelopeError).code).toBe('KEYRING_FAILURE')
    expect((error as Error).message).toBe('Encrypted data key: provider info is 70000 bytes; the format allows at most 65535.')
  })

  it('an encrypted data key field of exactly 65535 bytes is written, and read back', async () => {
    const inner = aesKeyring()
    const largest = { providerId: 'custom', providerInfo: new Uint8Array(0xffff).fill(1), ciphertext: new Uint8Array(0xffff).fill(2) }
    const adding = {
      onEncrypt: async (...args: Parameters<typeof inner.onEncrypt>) => {
        const materials = await inner.onEncrypt(...args)
        return { ...materials, encryptedDataKeys: [...materials.encryptedDataKeys, largest] }
      },
      onDecrypt: inner.onDecrypt.bind(inner),
    }
    const { ciphertext, header } = await encrypt(adding, 'x')
    const { plaintext, header: read } = await decrypt(adding, ciphertext)
    expect(new TextDecoder().decode(plaintext)).toBe('x')
    for (const { encryptedDataKeys } of [header, read]) {
      expect(encryptedDataKeys[1]).toEqual(largest)
    }
  })
})

describe('RSA-unwrapped data keys of the wrong length', () => {
  /** A RawRsaKeyring and a well-formed OAEP ciphertext (SHA-256) of `key`, as a wrapped data key of its own. */
  function wrapped(key: Uint8Array) {
    const { publicKey, privateKey } = rsaPem()
    const keyring = new RawRsaKeyring({ keyNamespace: 'n', keyName: 'k', privateKey, padding: 'OAEP-SHA256' })
    const ciphertext = publicEncrypt({ key: publicKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256' }, key)
    return { keyring, edk: { providerId: 'n', providerInfo: new TextEncoder().encode('k'), ciphertext: new Uint8Array(ciphertext) } }
  }
  const materials = { suite: suiteFromOption(0x0478), encryptionContext: {} }
  const failure = (error: unknown) => `${(error as Error).message} ${String(((error as Error).cause as Error | undefined)?.message)}`

  // Offered for a suite that needs 32 bytes, each backend must refuse it (and zero what it unwrapped) rather than
  // hand it on.
  it.each([
    ['node:crypto', 16, nodeBackend],
    ['node:crypto', 48, nodeBackend],
    ['WebCrypto', 16, webCryptoBackend],
    ['WebCrypto', 48, webCryptoBackend],
  ] as const)('%s backend, a %i-byte key: KEYRING_FAILURE naming both lengths', async (_name, length, backend) => {
    const { keyring, edk } = wrapped(new Uint8Array(length).fill(9))
    const error = await rejectionOf(keyring.onDecrypt(materials, [edk], backend))
    expect((error as EnvelopeError).code).toBe('KEYRING_FAILURE')
    expect(failure(error)).toMatch(new RegExp(`${length} bytes; the suite needs 32`))
  })

  // The output of WebCrypto's decrypt is the only one a test can see (node:crypto's privateDecrypt, which a KeyObject
  // goes through, cannot be wrapped): the node:crypto backend takes it for a CryptoKey.
  it.each([
    ['WebCrypto', webCryptoBackend],
    ['node:crypto (a CryptoKey)', nodeBackend],
  ] as const)('%s backend: the key it unwrapped is zeroed before it is refused', async (_name, backend) => {
    const { subtle } = globalThis.crypto
    const pair = (await subtle.generateKey({ name: 'RSA-OAEP', modulusLength: 2048, publicExponent: Uint8Array.of(1, 0, 1), hash: 'SHA-256' }, false, ['encrypt', 'decrypt'])) as CryptoKeyPair
    const keyring = new RawRsaKeyring({ keyNamespace: 'n', keyName: 'k', privateKey: pair.privateKey, padding: 'OAEP-SHA256' })
    const ciphertext = new Uint8Array(await subtle.encrypt({ name: 'RSA-OAEP' }, pair.publicKey, new Uint8Array(48).fill(9)))
    const edk = { providerId: 'n', providerInfo: new TextEncoder().encode('k'), ciphertext }
    const { outputs, restore } = recordingSubtleDecrypt()
    let error: unknown
    try {
      error = await rejectionOf(keyring.onDecrypt(materials, [edk], backend))
    } finally {
      restore()
    }
    expect(failure(error)).toMatch(/48 bytes; the suite needs 32/)
    expect(outputs.map((output) => output.byteLength)).toEqual([48])
    expect(isAllZero(new Uint8Array(outputs[0] as ArrayBuffer))).toBe(true)
  })

  /**
   * Runs `check` on a WebCrypto whose RSA-OAEP drops the leading zero bytes of what it decrypts, as WebKitGTK's does
   * (test/browser.test.ts runs it); `generateKey` replaces its key generation when given. `check` gets what decrypt
   * returned, each output on a buffer of its own.
   */
  async function onDroppingWebCrypto(check: (outputs: ArrayBuffer[]) => Promise<void>, generateKey?: () => Promise<CryptoKeyPair>): Promise<void> {
    const outputs: ArrayBuffer[] = []
    const real = globalThis.crypto.subtle
    const dropping = {
      generateKey: generateKey ?? real.generateKey.bind(real),
      importKey: real.importKey.bind(real),
      encrypt: real.encrypt.bind(real),
      async decrypt(...args: Parameters<SubtleCrypto['decrypt']>) {
        const bytes = new Uint8Array(await real.decrypt(...args))
        const output = bytes.slice(bytes.findIndex((byte) => byte !== 0)).buffer
        outputs.push(output)
        return output
      },
    }
    Object.defineProperty(globalThis.crypto, 'subtle', { value: dropping, configurable: true })
    try {
      await check(outputs)
    } finally {
      delete (globalThis.crypto as { subtle?: unknown }).subtle
    }
    expect(globalThis.crypto.subtle).toBe(real)
  }

  it('WebCrypto backend on a WebCrypto that drops leading zeros: a key that starts with zeros gets them back', async () => {
    await onDroppingWebCrypto(async (outputs) => {
      // One zero (a key in 256) and two. The short key WebCrypto returned is zeroed once copied.
      for (const zeros of [1, 2]) {
        const key = Uint8Array.of(...new Array(zeros).fill(0), ...new Array(32 - zeros).fill(9))
        const { keyring, edk } = wrapped(key)
        const { plaintextDataKey } = await keyring.onDecrypt(materials, [edk], webCryptoBackend)
        expect(Array.from(plaintextDataKey as Uint8Array), `${zeros} zeros`).toEqual(Array.from(key))
        // (The other outputs are of the backend's own check of whether this WebCrypto drops zeros.)
        const returned = outputs.filter((output) => output.byteLength === 32 - zeros).map((output) => isAllZero(new Uint8Array(output)))
        expect(returned, `${zeros} zeros`).toEqual([true])
      }
      // One that is longer than the suite's is still refused.
      const long = wrapped(Uint8Array.of(0, ...new Array(40).fill(9)))
      expect(failure(await rejectionOf(long.keyring.onDecrypt(materials, [long.edk], webCryptoBackend)))).toMatch(/40 bytes; the suite needs 32/)
    })
  })

  it('WebCrypto backend on a WebCrypto that drops leading zeros: up to 7 are put back; a key 8 or more bytes short is refused', async () => {
    await onDroppingWebCrypto(async () => {
      const seven = Uint8Array.of(...new Array(7).fill(0), ...new Array(25).fill(9))
      const back = wrapped(seven)
      expect(Array.from((await back.keyring.onDecrypt(materials, [back.edk], webCryptoBackend)).plaintextDataKey as Uint8Array)).toEqual(Array.from(seven))
      // Another suite's key (16 or 24 bytes), and a 32-byte key with 8 leading zeros (once in 2^64), as elsewhere.
      for (const [key, length] of [[new Uint8Array(16).fill(9), 16], [new Uint8Array(24).fill(9), 24], [Uint8Array.of(...new Array(8).fill(0), ...new Array(24).fill(9)), 24]] as const) {
        const short = wrapped(key)
        expect(failure(await rejectionOf(short.keyring.onDecrypt(materials, [short.edk], webCryptoBackend)))).toMatch(new RegExp(`${length} bytes; the suite needs 32`))
      }
    })
  })

  // The backend finds out with a 1024-bit key pair; an engine that cannot make one is taken as one that keeps zeros.
  it('WebCrypto backend whose key-pair check fails: a short key is refused as too short, not padded', async () => {
    let generateCalls = 0
    const refuse = () => {
      generateCalls++
      return Promise.reject(new DOMException('1024-bit RSA keys are not supported', 'NotSupportedError'))
    }
    await onDroppingWebCrypto(async () => {
      // Twice: the check is made once per WebCrypto, not per key.
      for (let attempt = 0; attempt < 2; attempt++) {
        const { keyring, edk } = wrapped(Uint8Array.of(0, 0, ...new Array(30).fill(9)))
        const error = await rejectionOf(keyring.onDecrypt(materials, [edk], webCryptoBackend))
        expect((error as EnvelopeError).code).toBe('KEYRING_FAILURE')
        expect(failure(error)).toMatch(/30 bytes; the suite needs 32/)
        expect(generateCalls).toBe(1)
      }
    }, refuse)
  })
})

describe('raw keyrings match a wrapped key by its whole name', () => {
  // The same key under a name that starts with the message's, or that the message's starts with: neither is a match.
  it.each([
    ['RSA', (keyName: string) => new RawRsaKeyring({ keyNamespace: 'test', keyName, ...rsaPem(), padding: 'OAEP-SHA256' })],
    ['AES', (keyName: string) => new RawAesKeyring({ keyNamespace: 'test', keyName, wrappingKey })],
  ] as const)('%s', async (_kind, keyringNamed) => {
    const { ciphertext } = await encrypt(keyringNamed('key-1'), 'x')
    expect(new TextDecoder().decode((await decrypt(keyringNamed('key-1'), ciphertext)).plaintext)).toBe('x')
    for (const other of ['key-10', 'key-', 'key-2']) {
      const error = await rejectionOf(decrypt(keyringNamed(other), ciphertext))
      expect(error).toBeInstanceOf(NoDecryptableKeyError)
      expect((error as Error).message).toBe('No keyring could decrypt a data key: No encrypted data key is for this keyring (the message has keys from: "test" "key-1").')
    }
  })
})

describe('a RawRsaKeyring with only a public key', () => {
  it('encrypts, and on decrypt says it has no private key (not that its key did not decrypt)', async () => {
    const encryptOnly = new RawRsaKeyring({ keyNamespace: 'test', keyName: 'rsa-1', publicKey: rsaPem().publicKey, padding: 'OAEP-SHA256' })
    const { ciphertext } = await encrypt(encryptOnly, 'x')
    expect(new TextDecoder().decode((await decrypt(rsaKeyring('OAEP-SHA256'), ciphertext)).plaintext)).toBe('x')
    const error = await rejectionOf(decrypt(encryptOnly, ciphertext))
    expect(error).toBeInstanceOf(NoDecryptableKeyError)
    const [failure] = (error as NoDecryptableKeyError).failures
    expect((failure?.error as Error).message).toBe('RawRsaKeyring "test/rsa-1" has no private key, so it cannot decrypt.')
  })
})

describe('raw keyrings given many wrapped keys that name their key', () => {
  // Each try is a private-key operation, in Node on the main thread: between tries the event loop turns, so a
  // hostile message naming the key thousands of times cannot hold up everything else in the process.
  it('RSA: tries every one, and lets the event loop turn between tries', async () => {
    const keyring = rsaKeyring('OAEP-SHA256')
    const edks = Array.from({ length: 20 }, (_, index) => ({
      providerId: keyring.keyNamespace,
      providerInfo: new TextEncoder().encode(keyring.keyName),
      ciphertext: new Uint8Array(256).fill(index + 1),
    }))
    const { turns, outcome } = await turnsDuring(keyring.onDecrypt({ suite: suiteFromOption(0x0478), encryptionContext: {} }, edks, nodeBackend))
    expect((outcome as EnvelopeError).code).toBe('KEYRING_FAILURE')
    expect((outcome as Error).message).toContain('found 20 encrypted data keys for its key name')
    expect(turns).toBeGreaterThanOrEqual(18) // one per try after the first, less the one the answer comes in
  })

  // AES-GCM tries cost microseconds each, but node:crypto makes them synchronously: the event loop turns every
  // 256 tries, in each order of the context tried, and between the intermediate keys of a DynamoDB item.
  it.each([
    ['0x0478, one context order', 0x0478, { tenant: 'a' }, 3],
    ['0x0478, the spec order then the legacy one', 0x0478, { a: '1', B: '2' }, 7],
    ['intermediate wrapping (DynamoDB items)', 0x6700, { tenant: 'a' }, 3],
  ] as const)('AES, %s: lets the event loop turn every 256 tries', async (_what, suiteId, encryptionContext, minimumTurns) => {
    const keyring = new RawAesKeyring({ keyNamespace: 'n', keyName: 'k', wrappingKey })
    const suite = suiteId === 0x6700 ? dbeSuite(suiteId) : suiteFromOption(suiteId)
    const encrypted = await keyring.onEncrypt({ suite, encryptionContext, encryptedDataKeys: [] }, nodeBackend)
    const [edk] = encrypted.encryptedDataKeys
    const edks = Array.from({ length: 1100 }, (_, index) => ({ ...edk!, ciphertext: new Uint8Array(edk!.ciphertext.length).fill(index % 251) }))
    const { turns, outcome } = await turnsDuring(keyring.onDecrypt({ suite, encryptionContext }, edks, nodeBackend))
    expect((outcome as EnvelopeError).code).toBe('KEYRING_FAILURE')
    expect(turns).toBeGreaterThanOrEqual(minimumTurns)
  })
})
