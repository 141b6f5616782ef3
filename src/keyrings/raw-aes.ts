import { isAsyncAead, isPromise, type AeadKey, type AsyncAeadKey, type CryptoBackend, type MaybePromise } from '../backend/types.js'
import { ConfigurationError, KeyringError } from '../errors.js'
import { copyBytes, isAllZero, uint32At, utf8 } from '../format/bytes.js'
import { byteCount, countOf } from '../byte-count.js'
import { legacyContextOrders, objectKind, serializeContext } from '../format/context.js'
import type { DecryptionMaterials, EncryptedDataKey, EncryptionMaterials, Keyring } from '../types.js'
import { dataKeyOf, describeKeyring, validateKeyName, wrapDataKey } from './common.js'
import { addIntermediateRecipient, freshIntermediateKey, openIntermediate, wrappedDataKeyLength, wrappedIntermediateKey } from './intermediate.js'
import { turn } from '../next-turn.js'
import { optionsObject } from '../option-names.js'
import { notBytes } from '../input-refusal.js'
import { isBytes } from '../is-bytes.js'

/** Options of `new RawAesKeyring(...)`. */
export interface RawAesKeyringOptions {
  /** Stored as the key provider ID. Must not be `aws-kms`. */
  keyNamespace: string
  /** Stored at the start of the key provider info. */
  keyName: string
  /** 16, 24 or 32 bytes. Copied; the keyring never exposes it. */
  wrappingKey: Uint8Array
}

const IV_LENGTH = 12
const TAG_LENGTH = 16
const TAG_LENGTH_BITS = TAG_LENGTH * 8

/**
 * What a wrapping key that is not bytes of the right length is, and how to pass its bytes. Never the key itself:
 * a key given as text is still a secret.
 */
function keyBytesHint(key: unknown): string {
  if (isBytes(key)) return `got ${byteCount(key.length)}`
  if (typeof key === 'string') return `got a string: pass the key's bytes (Buffer.from(text, "hex") or "base64" in Node)`
  const object = key as { type?: unknown; export?: unknown } | null
  if (objectKind(key) === 'CryptoKey') return 'got a CryptoKey: pass its raw bytes (crypto.subtle.exportKey("raw", key))'
  if (object?.type === 'secret' && typeof object.export === 'function') return 'got a KeyObject: pass keyObject.export()'
  return notBytes(key)
}

/**
 * Wraps data keys with AES-GCM under a key you hold, binding them to the encryption context.
 * spec: framework/raw-aes-keyring.md
 *
 * @example
 * ```ts
 * const keyring = new RawAesKeyring({ keyNamespace: 'app', keyName: 'key-1', wrappingKey: crypto.getRandomValues(new Uint8Array(32)) })
 * const { ciphertext } = await encrypt(keyring, 'hello', { encryptionContext: { tenant: 'a' } })
 * ```
 */
export class RawAesKeyring implements Keyring {
  /** The key provider ID its data keys are stored under. */
  readonly keyNamespace: string
  /** The name stored with each of its data keys; with `keyNamespace`, what tells its keys from others'. */
  readonly keyName: string
  readonly #wrappingKey: Uint8Array
  readonly #keyNameBytes: Uint8Array
  /** The wrapping key prepared once per backend (a CryptoKey on WebCrypto), not per message; it lives as long as the keyring. */
  readonly #aead = new WeakMap<CryptoBackend, AeadKey | AsyncAeadKey>()

  constructor(options: RawAesKeyringOptions) {
    const { keyNamespace, keyName, wrappingKey } = optionsObject(options, 'RawAesKeyring', 'keyNamespace, keyName, wrappingKey')
    validateKeyName('RawAesKeyring', keyNamespace, keyName)
    if (!isBytes(wrappingKey) || ![16, 24, 32].includes(wrappingKey.length)) {
      throw new ConfigurationError(`RawAesKeyring wrappingKey must be a Uint8Array of 16, 24 or 32 bytes; ${keyBytesHint(wrappingKey)}.`)
    }
    // A key of zeros protects nothing: a buffer never filled, or one zeroed after use (the official SDK's raw AES
    // keyring zeroes the key it is given, so a buffer passed to it first arrives here as zeros).
    if (isAllZero(wrappingKey)) {
      throw new ConfigurationError('RawAesKeyring wrappingKey is all zeros, which is no secret: a buffer never filled, or one zeroed after use.')
    }
    this.keyNamespace = keyNamespace
    this.keyName = keyName
    this.#wrappingKey = copyBytes(wrappingKey)
    this.#keyNameBytes = utf8(keyName)
  }

  async onEncrypt(materials: EncryptionMaterials, backend: CryptoBackend): Promise<EncryptionMaterials> {
    if (materials.suite.edkWrapping === 'intermediate') {
      return wrapDataKey(materials, backend, (withKey) =>
        addIntermediateRecipient(withKey, backend, () =>
          freshIntermediateKey(backend, materials.suite.keyLength, (intermediateKey) => this.#wrap(intermediateKey, materials, backend)),
        ),
      )
    }
    const dataKey = dataKeyOf(materials, backend)
    let edk: EncryptedDataKey
    try {
      edk = await this.#wrap(dataKey, materials, backend)
    } catch (error) {
      if (dataKey !== materials.plaintextDataKey) dataKey.fill(0) // made here: it must not outlive the failed encrypt
      throw error
    }
    return Object.assign({}, materials, { plaintextDataKey: dataKey, encryptedDataKeys: [...materials.encryptedDataKeys, edk] })
  }

  /** AES-GCM of `material` (a data key or an intermediate key) under the wrapping key, bound to the context. */
  async #wrap(material: Uint8Array, materials: EncryptionMaterials, backend: CryptoBackend): Promise<EncryptedDataKey> {
    const iv = backend.randomBytes(IV_LENGTH)
    const aad = serializeContext(materials.encryptionContext)
    const ciphertext = new Uint8Array(material.length + TAG_LENGTH)
    const aead = this.#aeadFor(backend)
    if (isAsyncAead(aead)) await aead.seal(iv, aad, material, ciphertext, 0)
    else aead.seal(iv, aad, material, ciphertext, 0)
    // spec: framework/raw-aes-keyring.md#key-provider-information
    // key name || tag length in bits (uint32) || IV length (uint32) || IV
    const nameLength = this.#keyNameBytes.length
    const info = new Uint8Array(nameLength + 8 + IV_LENGTH)
    info.set(this.#keyNameBytes, 0)
    info[nameLength + 3] = TAG_LENGTH_BITS
    info[nameLength + 7] = IV_LENGTH
    info.set(iv, nameLength + 8)
    return { providerId: this.keyNamespace, providerInfo: info, ciphertext }
  }

  /** The DynamoDB item suites: each of this keyring's keys holds a wrapped intermediate key. */
  async #unwrapIntermediate(
    materials: DecryptionMaterials,
    encryptedDataKeys: readonly EncryptedDataKey[],
    backend: CryptoBackend,
  ): Promise<DecryptionMaterials> {
    const keyLength = materials.suite.keyLength
    const candidates = encryptedDataKeys.filter(
      (edk) => this.#isMine(edk) && edk.ciphertext.length === wrappedDataKeyLength(keyLength) + keyLength + TAG_LENGTH,
    )
    if (candidates.length === 0) return materials
    const aead = this.#aeadFor(backend)
    const aad = serializeContext(materials.encryptionContext)
    for (const [index, edk] of candidates.entries()) {
      if (index > 0 && index % TRIES_PER_TURN === 0) await turn() // as in unwrapFirst
      const wrapped = wrappedIntermediateKey(edk, keyLength) as Uint8Array
      const iv = edk.providerInfo.subarray(edk.providerInfo.length - IV_LENGTH)
      const intermediateKey = new Uint8Array(keyLength)
      const ciphertext = wrapped.subarray(0, keyLength)
      const tag = wrapped.subarray(keyLength)
      const opened = isAsyncAead(aead)
        ? await aead.open(iv, aad, ciphertext, tag, intermediateKey, 0)
        : aead.open(iv, aad, ciphertext, tag, intermediateKey, 0)
      if (!opened) {
        // A context that differs fails the tag but still decrypts: the bytes written are the real key.
        intermediateKey.fill(0)
        continue
      }
      const result = await openIntermediate(materials, edk, intermediateKey, backend)
      if (result !== undefined) return result
    }
    throw new KeyringError(
      `RawAesKeyring ${describeKeyring(this)} found ${countOf(candidates.length, 'encrypted data key')} for its key name, but none unwrapped: ` +
        'the wrapping key or the encryption context differs from the one used to encrypt.',
    )
  }

  onDecrypt(
    materials: DecryptionMaterials,
    encryptedDataKeys: readonly EncryptedDataKey[],
    backend: CryptoBackend,
  ): Promise<DecryptionMaterials> {
    try {
      if (materials.plaintextDataKey !== undefined) return Promise.resolve(materials)
      if (materials.suite.edkWrapping === 'intermediate') return this.#unwrapIntermediate(materials, encryptedDataKeys, backend)
      const keyLength = materials.suite.keyLength
      const candidates = encryptedDataKeys.filter((edk) => this.#isMine(edk) && edk.ciphertext.length === keyLength + TAG_LENGTH)
      if (candidates.length === 0) return Promise.resolve(materials)
      const aead = this.#aeadFor(backend)
      const found = unwrapFirst(aead, candidates, serializeContext(materials.encryptionContext), keyLength)
      // node:crypto answers synchronously: a key that unwraps at once then costs no async frame.
      if (isBytes(found)) return Promise.resolve(Object.assign({}, materials, { plaintextDataKey: found }))
      return this.#unwrapRest(materials, candidates, aead, found)
    } catch (error) {
      return Promise.reject(error)
    }
  }

  /** The rest of `onDecrypt`: an asynchronous key's answer, then the legacy-order retry if it found nothing. */
  async #unwrapRest(
    materials: DecryptionMaterials,
    candidates: readonly EncryptedDataKey[],
    aead: AeadKey | AsyncAeadKey,
    first: MaybePromise<Uint8Array | undefined>,
  ): Promise<DecryptionMaterials> {
    const context = materials.encryptionContext
    let found = await first
    // Messages from official JavaScript SDK releases before utf8Sorting sorted the AAD with localeCompare:
    // retry in its orders, only when the spec order failed, each order that differs from those tried.
    if (found === undefined) {
      for (const aad of legacyContextOrders(context)) {
        found = await unwrapFirst(aead, candidates, aad, materials.suite.keyLength)
        if (found !== undefined) break
      }
    }
    if (found !== undefined) return Object.assign({}, materials, { plaintextDataKey: found })
    throw new KeyringError(
      `RawAesKeyring ${describeKeyring(this)} found ${countOf(candidates.length, 'encrypted data key')} for its key name, but none unwrapped: ` +
        'the wrapping key or the encryption context differs from the one used to encrypt.',
    )
  }

  #aeadFor(backend: CryptoBackend): AeadKey | AsyncAeadKey {
    let aead = this.#aead.get(backend)
    if (aead === undefined) this.#aead.set(backend, (aead = backend.aeadKey(this.#wrappingKey)))
    return aead
  }

  #isMine(edk: EncryptedDataKey): boolean {
    const info = edk.providerInfo
    const name = this.#keyNameBytes
    const nameLength = name.length
    if (edk.providerId !== this.keyNamespace || info.length !== nameLength + 8 + IV_LENGTH) return false
    for (let index = 0; index < nameLength; index++) if (info[index] !== name[index]) return false
    return uint32At(info, nameLength) === TAG_LENGTH_BITS && uint32At(info, nameLength + 4) === IV_LENGTH
  }

  /** Never shows the wrapping key. */
  toJSON(): object {
    return { type: 'RawAesKeyring', keyNamespace: this.keyNamespace, keyName: this.keyName }
  }

  [Symbol.for('nodejs.util.inspect.custom')](): string {
    return `RawAesKeyring ${describeKeyring(this)}`
  }
}

/** Unwrapping tries between turns of the event loop: about 4 ms of them. */
const TRIES_PER_TURN = 256

/**
 * The first candidate's data key that AES-GCM unwraps under `aad`: synchronously for a node:crypto key, as a
 * promise for an asynchronous one. A failed attempt's output is zeroed (a differing context fails the tag
 * but still decrypts the real key).
 */
function unwrapFirst(
  aead: AeadKey | AsyncAeadKey,
  candidates: readonly EncryptedDataKey[],
  aad: Uint8Array,
  keyLength: number,
  from = 0,
): MaybePromise<Uint8Array | undefined> {
  for (let index = from; index < candidates.length; index++) {
    // A message wraps its data key once per key, but a hostile one can name this key 65,535 times, and node:crypto
    // tries them synchronously (a second for all of them, twice over with the legacy order): let the event loop turn.
    if (index > from && (index - from) % TRIES_PER_TURN === 0) {
      return turn().then(() => unwrapFirst(aead, candidates, aad, keyLength, index))
    }
    const { providerInfo, ciphertext } = candidates[index] as EncryptedDataKey
    const iv = providerInfo.subarray(providerInfo.length - IV_LENGTH)
    const detached = (aead as AeadKey).openDetached
    if (detached !== undefined) {
      // node:crypto: the cipher's own output, already outside the JavaScript heap where HKDF reads it.
      const dataKey = detached.call(aead, iv, aad, ciphertext.subarray(0, keyLength), ciphertext.subarray(keyLength))
      if (dataKey !== undefined) return dataKey
      continue
    }
    const dataKey = new Uint8Array(keyLength)
    const opened = aead.open(iv, aad, ciphertext.subarray(0, keyLength), ciphertext.subarray(keyLength), dataKey, 0)
    if (isPromise(opened)) {
      return opened.then((ok) => {
        if (ok) return dataKey
        dataKey.fill(0)
        return unwrapFirst(aead, candidates, aad, keyLength, index + 1)
      })
    }
    if (opened) return dataKey
    dataKey.fill(0)
  }
  return undefined
}
