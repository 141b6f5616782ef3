// The verification key a materials manager returns for a signed message. The default manager imports the
// message's own public key; a custom one may return anything. A key the backend cannot verify with is the
// manager's fault, not the message's: it is a KeyringError (KEYRING_FAILURE) before any frame is decrypted,
// not a bad signature. (Signing keys: test/stream-signing-thread.test.ts and test/webcrypto.test.ts.)
import { createPublicKey, createSecretKey, generateKeyPairSync, type KeyObject } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { nodeBackend } from '../src/backend/node.js'
import { nodeItemBackend } from '../src/dynamodb/node-backend.js'
import type { CryptoBackend } from '../src/backend/types.js'
import { WebVerificationKey } from '../src/backend/signing-key.js'
import { webCryptoBackend } from '../src/backend/webcrypto.js'
import { decryptWith } from '../src/decrypt.js'
import { serializeAttribute } from '../src/dynamodb/attributes/index.js'
import { decryptStructure, encryptStructure, type StructuredField } from '../src/dynamodb/structured/index.js'
import { DefaultMaterialsManager, encrypt, EnvelopeError, KeyringError, type MaterialsManager } from '../src/index.js'
import { decryptStreamWith } from '../src/stream-decrypt.js'
import type { CompleteDecryptionMaterials } from '../src/types.js'
import { aesKeyring, policyFor, rejectionOf } from './helpers/fixtures.js'
import { chunked } from './helpers/web-streams.js'

const keyring = aesKeyring()
const KiB = 1024

/** The default manager, with the verification key it returns replaced by `replace(original)`. */
function managerWithKey(replace: (original: unknown) => unknown): MaterialsManager {
  const inner = new DefaultMaterialsManager(keyring)
  return {
    getEncryptionMaterials: (request, backend) => inner.getEncryptionMaterials(request, backend),
    async getDecryptionMaterials(request, backend): Promise<CompleteDecryptionMaterials> {
      const materials = await inner.getDecryptionMaterials(request, backend)
      return Object.assign({}, materials, { verificationKey: replace(materials.verificationKey) })
    },
  }
}

/** Decrypt allows the non-committing suite 0x0214 (the only one on P-256). */
const ALLOW = { commitmentPolicy: 'REQUIRE_ENCRYPT_ALLOW_DECRYPT' } as const

/** A message of `size` bytes of the suite, in frames of 4 KiB. */
async function signedMessage(algorithmSuite: number, size: number): Promise<Uint8Array> {
  return (await encrypt(keyring, new Uint8Array(size).fill(3), { algorithmSuite, frameLength: 4096, commitmentPolicy: policyFor(algorithmSuite) })).ciphertext
}

/** Decrypt as a stream, fed 1 KiB at a time; the error and how many plaintext bytes were emitted before it. */
async function streamFailure(backend: CryptoBackend, manager: MaterialsManager, ciphertext: Uint8Array): Promise<{ error: unknown; emitted: number }> {
  const reader = chunked(ciphertext, KiB).pipeThrough(decryptStreamWith(backend, manager, ALLOW)).getReader()
  let emitted = 0
  for (;;) {
    try {
      const { done, value } = await reader.read()
      if (done) return { error: undefined, emitted }
      emitted += value.length
    } catch (error) {
      return { error, emitted }
    }
  }
}

function expectManagersFault(error: unknown): void {
  expect(error).toBeInstanceOf(KeyringError)
  expect((error as KeyringError).code).toBe('KEYRING_FAILURE')
  expect((error as KeyringError).message).toMatch(/materials manager's verification key cannot verify this message/)
}

describe('node:crypto: a verification key it cannot verify with', () => {
  const p256 = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey
  const p384 = generateKeyPairSync('ec', { namedCurve: 'P-384' }).publicKey
  const badKeys: readonly (readonly [string, number, unknown])[] = [
    ['no key', 0x0578, undefined],
    ['a string', 0x0578, 'not a key'],
    ['the key as bytes', 0x0578, new Uint8Array(49).fill(2)],
    ['an Ed25519 key', 0x0578, generateKeyPairSync('ed25519').publicKey],
    ['an RSA key', 0x0578, generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey],
    ['a P-256 key for a P-384 suite', 0x0578, p256],
    ['a P-384 key for a P-256 suite', 0x0214, p384],
    ['a secret KeyObject', 0x0578, createSecretKey(new Uint8Array(32))],
  ]

  it.each(badKeys)('%s: KEYRING_FAILURE from one-shot decrypt (small, and large with its early check) and from streams', async (_, suite, key) => {
    const manager = managerWithKey(() => key)
    for (const size of [KiB, 300 * KiB]) {
      expectManagersFault(await rejectionOf(decryptWith(nodeBackend, manager, await signedMessage(suite, size), ALLOW)))
    }
    const { error, emitted } = await streamFailure(nodeBackend, manager, await signedMessage(suite, 20 * KiB))
    expectManagersFault(error)
    expect(emitted).toBe(0)
  })

  it('a usable key of another signer is a bad signature (SIGNATURE_INVALID), as before', async () => {
    const error = await rejectionOf(decryptWith(nodeBackend, managerWithKey(() => p384), await signedMessage(0x0578, KiB), ALLOW))
    expect(error).toBeInstanceOf(EnvelopeError)
    expect((error as EnvelopeError).code).toBe('SIGNATURE_INVALID')
  })

  it('another KeyObject of the same public key is accepted (the check is on the kind of key, not on its origin)', async () => {
    const manager = managerWithKey((original) => createPublicKey({ key: (original as KeyObject).export({ format: 'der', type: 'spki' }), format: 'der', type: 'spki' }))
    for (const suite of [0x0214, 0x0578]) {
      const { plaintext } = await decryptWith(nodeBackend, manager, await signedMessage(suite, 5 * KiB), ALLOW)
      expect(plaintext).toEqual(new Uint8Array(5 * KiB).fill(3))
    }
  })

  it('DynamoDB items of the signed suite (0x6701): KEYRING_FAILURE', async () => {
    const fields: StructuredField[] = [{ name: 'pk', terminal: serializeAttribute({ S: 'key' }), action: 'SIGN_ONLY' }]
    const authenticate = (): 'SIGN' => 'SIGN'
    const writer = new DefaultMaterialsManager(keyring)
    const out = await encryptStructure({ tableName: 'table', fields, materialsManager: writer, backend: nodeItemBackend, algorithmSuiteId: 0x6701 })
    const read = (manager: MaterialsManager) =>
      decryptStructure({ tableName: 'table', fields: out.fields, authenticate, materialsManager: manager, backend: nodeItemBackend })
    expect((await read(writer)).fields.get('pk')).toEqual(fields[0]?.terminal)
    expectManagersFault(await rejectionOf(read(managerWithKey(() => p256))))
  })

  it('DynamoDB items of the signed suite (0x6701): a signing key on another curve is KEYRING_FAILURE on encrypt', async () => {
    const inner = new DefaultMaterialsManager(keyring)
    const signingKey = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey
    const manager: MaterialsManager = {
      getEncryptionMaterials: async (request, backend) => ({ ...(await inner.getEncryptionMaterials(request, backend)), signingKey }),
      getDecryptionMaterials: (request, backend) => inner.getDecryptionMaterials(request, backend),
    }
    const fields: StructuredField[] = [{ name: 'pk', terminal: serializeAttribute({ S: 'key' }), action: 'SIGN_ONLY' }]
    const error = await rejectionOf(encryptStructure({ tableName: 'table', fields, materialsManager: manager, backend: nodeItemBackend, algorithmSuiteId: 0x6701 }))
    expect(error).toBeInstanceOf(KeyringError)
    expect((error as KeyringError).message).toMatch(/signing key cannot sign/)
  })
})

describe('the browser build (WebCrypto): a verification key not from its importVerificationKey', () => {
  const badKeys = async (): Promise<readonly (readonly [string, unknown])[]> => {
    const { publicKey: cryptoKey } = (await crypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-384' }, true, ['sign', 'verify'])) as CryptoKeyPair
    const p256Pair = await webCryptoBackend.generateSigningKey('P-256')
    return [
      ['no key', undefined],
      ['a string', 'not a key'],
      ['a node:crypto KeyObject', generateKeyPairSync('ec', { namedCurve: 'P-384' }).publicKey],
      ['a bare CryptoKey', cryptoKey],
      ['its own key for P-256, on a P-384 message', await webCryptoBackend.importVerificationKey('P-256', p256Pair.publicKey)],
    ]
  }

  it('one-shot decrypt: KEYRING_FAILURE, small and large', async () => {
    for (const [name, key] of await badKeys()) {
      for (const size of [KiB, 300 * KiB]) {
        const error = await rejectionOf(decryptWith(webCryptoBackend, managerWithKey(() => key), await signedMessage(0x0578, size), ALLOW))
        expect(error, name).toBeInstanceOf(KeyringError)
        expectManagersFault(error)
      }
    }
  })

  it('streams: UNSUPPORTED_OPERATION (their verifier needs a key this backend made), before any plaintext', async () => {
    for (const [name, key] of await badKeys()) {
      const { error, emitted } = await streamFailure(webCryptoBackend, managerWithKey(() => key), await signedMessage(0x0578, 20 * KiB))
      expect((error as EnvelopeError).code, name).toBe('UNSUPPORTED_OPERATION')
      expect(emitted).toBe(0)
    }
  })

  it('its own keys verify, one-shot and streamed', async () => {
    const ciphertext = await signedMessage(0x0578, 20 * KiB)
    expect((await decryptWith(webCryptoBackend, keyring, ciphertext, ALLOW)).plaintext.length).toBe(20 * KiB)
    expect(await streamFailure(webCryptoBackend, new DefaultMaterialsManager(keyring), ciphertext)).toEqual({ error: undefined, emitted: 20 * KiB })
  })
})

describe("a backend's verifyMessage that rejects", () => {
  // Rejecting is how the browser build reports a key it cannot verify with; any rejection, even with no value,
  // must fail the message, and no plaintext comes back.
  const rejecting = (backend: CryptoBackend, reason: unknown): CryptoBackend => ({ ...backend, verifyMessage: () => Promise.reject(reason) })
  // Another KeyObject of the message's key: the early check's answer (for the original) does not count for it.
  const copiedKey = managerWithKey((original) =>
    original instanceof WebVerificationKey
      ? new WebVerificationKey(original.curve, original.key, original.point)
      : createPublicKey({ key: (original as KeyObject).export({ format: 'der', type: 'spki' }), format: 'der', type: 'spki' }),
  )

  it.each([
    ['node:crypto, checked in the background', nodeBackend, copiedKey, 300 * KiB],
    ['WebCrypto, small', webCryptoBackend, copiedKey, KiB],
    ['WebCrypto, large', webCryptoBackend, copiedKey, 300 * KiB],
  ] as const)('%s: its error is thrown, and a rejection with no value is SIGNATURE_INVALID', async (_, backend, manager, size) => {
    const ciphertext = await signedMessage(0x0578, size)
    const reason = new KeyringError('the key is not usable')
    expect(await rejectionOf(decryptWith(rejecting(backend, reason), manager, ciphertext, ALLOW))).toBe(reason)
    const error = await rejectionOf(decryptWith(rejecting(backend, undefined), manager, ciphertext, ALLOW))
    expect((error as EnvelopeError).code).toBe('SIGNATURE_INVALID')
  })
})
