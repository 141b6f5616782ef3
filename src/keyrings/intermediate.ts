// Intermediate key wrapping, for suites with a symmetric signature (the DynamoDB item suites): each recipient
// wraps its own fresh intermediate key, from which come that recipient's HMAC signing key and the key that
// wraps the data key. spec: framework/algorithm-suites.md#intermediate-key-wrapping
import { isAsyncAead, type CryptoBackend } from '../backend/types.js'
import { KeyringError } from '../errors.js'
import { ZERO_IV, utf8 } from '../format/bytes.js'
import { serializeContext } from '../format/context.js'
import type { AlgorithmSuite } from '../suites.js'
import type { DecryptionMaterials, EncryptedDataKey, EncryptionMaterials } from '../types.js'

const MAC_INFO = utf8('AWS_MPL_INTERMEDIATE_KEYWRAP_MAC')
const ENC_INFO = utf8('AWS_MPL_INTERMEDIATE_KEYWRAP_ENC')
const TAG_LENGTH = 16
// The data key is wrapped once per intermediate key, which is fresh per encrypted data key: a zero IV (ZERO_IV) is safe.

/** What a keyring's own wrapping produces for one fresh intermediate key. */
export interface WrappedIntermediateKey {
  /** The intermediate key; zeroed here once used. */
  readonly intermediateKey: Uint8Array
  /** The keyring's encrypted data key for the intermediate key (its ciphertext is the "wrapped intermediate key"). */
  readonly encryptedDataKey: EncryptedDataKey
}

/**
 * A fresh intermediate key of `keyLength` bytes and the keyring's encrypted data key for it (`wrap`: the keyring's
 * own mechanism). The key is zeroed when wrapping fails.
 */
export async function freshIntermediateKey(
  backend: CryptoBackend,
  keyLength: number,
  wrap: (intermediateKey: Uint8Array) => Promise<EncryptedDataKey>,
): Promise<WrappedIntermediateKey> {
  const intermediateKey = backend.randomBytes(keyLength)
  try {
    return { intermediateKey, encryptedDataKey: await wrap(intermediateKey) }
  } catch (error) {
    intermediateKey.fill(0)
    throw error
  }
}

/** Length of the wrapped data key that starts every intermediate-wrapped ciphertext. */
export function wrappedDataKeyLength(keyLength: number): number {
  return keyLength + TAG_LENGTH
}

/**
 * HKDF (the suite's commit-key hash, no salt) of the intermediate key: the symmetric signing key and the key
 * encryption key, each the suite's key length.
 */
async function deriveKeys(backend: CryptoBackend, suite: AlgorithmSuite, intermediateKey: Uint8Array): Promise<{ signingKey: Uint8Array; wrappingKey: Uint8Array }> {
  const [signingKey, wrappingKey] = await backend.hkdf(suite.kdfHash ?? 'sha512', intermediateKey, new Uint8Array(0), [
    { info: MAC_INFO, length: suite.keyLength },
    { info: ENC_INFO, length: suite.keyLength },
  ])
  return { signingKey: signingKey as Uint8Array, wrappingKey: wrappingKey as Uint8Array }
}

async function seal(backend: CryptoBackend, key: Uint8Array, aad: Uint8Array, plaintext: Uint8Array): Promise<Uint8Array> {
  const out = new Uint8Array(plaintext.length + TAG_LENGTH)
  const aead = backend.aeadKey(key)
  try {
    if (isAsyncAead(aead)) await aead.seal(ZERO_IV, aad, plaintext, out, 0)
    else aead.seal(ZERO_IV, aad, plaintext, out, 0)
  } finally {
    aead.dispose?.()
  }
  return out
}

async function open(backend: CryptoBackend, key: Uint8Array, aad: Uint8Array, sealed: Uint8Array): Promise<Uint8Array | undefined> {
  const length = sealed.length - TAG_LENGTH
  const out = new Uint8Array(length)
  const aead = backend.aeadKey(key)
  const ciphertext = sealed.subarray(0, length)
  const tag = sealed.subarray(length)
  let ok: boolean
  try {
    ok = isAsyncAead(aead) ? await aead.open(ZERO_IV, aad, ciphertext, tag, out, 0) : aead.open(ZERO_IV, aad, ciphertext, tag, out, 0)
  } finally {
    aead.dispose?.()
  }
  if (ok) return out
  out.fill(0)
  return undefined
}

/**
 * Add one recipient under intermediate key wrapping: `wrapIntermediateKey` makes and wraps a fresh intermediate
 * key with the keyring's own mechanism; the stored ciphertext is AES-GCM(key encryption key, zero IV, serialized
 * context, data key) followed by the keyring's ciphertext. Appends the encrypted data key and its signing key.
 */
export async function addIntermediateRecipient(
  materials: EncryptionMaterials,
  backend: CryptoBackend,
  wrapIntermediateKey: () => Promise<WrappedIntermediateKey>,
): Promise<EncryptionMaterials> {
  const dataKey = materials.plaintextDataKey
  if (dataKey === undefined) throw new KeyringError('Intermediate key wrapping needs the data key first.')
  const existingKeys = materials.symmetricSigningKeys ?? []
  if (existingKeys.length !== materials.encryptedDataKeys.length) {
    throw new KeyringError('The materials have a different number of symmetric signing keys and encrypted data keys.')
  }
  const { intermediateKey, encryptedDataKey } = await wrapIntermediateKey()
  // Every key made here is zeroed once used, and the signing key too when this recipient fails.
  const { signingKey, wrappingKey } = await deriveKeys(backend, materials.suite, intermediateKey).finally(() => intermediateKey.fill(0))
  let wrappedDataKey: Uint8Array
  try {
    wrappedDataKey = await seal(backend, wrappingKey, serializeContext(materials.encryptionContext), dataKey)
  } catch (error) {
    signingKey.fill(0)
    throw error
  } finally {
    wrappingKey.fill(0)
  }
  const ciphertext = new Uint8Array(wrappedDataKey.length + encryptedDataKey.ciphertext.length)
  ciphertext.set(wrappedDataKey, 0)
  ciphertext.set(encryptedDataKey.ciphertext, wrappedDataKey.length)
  return {
    ...materials,
    encryptedDataKeys: [...materials.encryptedDataKeys, { ...encryptedDataKey, ciphertext }],
    symmetricSigningKeys: [...existingKeys, signingKey],
  }
}

/** The keyring's ciphertext inside an intermediate-wrapped one, or undefined when it is too short to be one. */
export function wrappedIntermediateKey(edk: EncryptedDataKey, keyLength: number): Uint8Array | undefined {
  const prefix = wrappedDataKeyLength(keyLength)
  return edk.ciphertext.length > prefix ? edk.ciphertext.subarray(prefix) : undefined
}

/**
 * Recover the data key and signing key from one intermediate-wrapped ciphertext, given the intermediate key the
 * keyring unwrapped from its part. Undefined when the data key's tag fails (a wrong context or a changed key).
 */
export async function openIntermediate(
  materials: DecryptionMaterials,
  edk: EncryptedDataKey,
  intermediateKey: Uint8Array,
  backend: CryptoBackend,
): Promise<DecryptionMaterials | undefined> {
  const keyLength = materials.suite.keyLength
  const { signingKey, wrappingKey } = await deriveKeys(backend, materials.suite, intermediateKey).finally(() => intermediateKey.fill(0))
  let dataKey: Uint8Array | undefined
  try {
    dataKey = await open(backend, wrappingKey, serializeContext(materials.encryptionContext), edk.ciphertext.subarray(0, wrappedDataKeyLength(keyLength)))
  } finally {
    wrappingKey.fill(0)
    if (dataKey === undefined) signingKey.fill(0)
  }
  if (dataKey === undefined) return undefined
  return Object.assign({}, materials, { plaintextDataKey: dataKey, symmetricSigningKey: signingKey })
}
