import type { CryptoBackend, RsaPadding } from '../backend/types.js'
import { ConfigurationError, EnvelopeError, KeyringError, UnsupportedOperationError } from '../errors.js'
import { isBytes } from '../is-bytes.js'
import { bytesEqual, utf8 } from '../format/bytes.js'
import type { DecryptionMaterials, EncryptedDataKey, EncryptionMaterials, Keyring } from '../types.js'
import { addIntermediateRecipient, freshIntermediateKey, openIntermediate, wrappedIntermediateKey } from './intermediate.js'
import { describeKeyring, validateKeyName, wrapDataKey } from './common.js'
import { turn } from '../next-turn.js'
import { loadOnDemand } from '../load-on-demand.js'
import { optionsObject } from '../option-names.js'
import { quoteValue } from '../quote.js'

const PADDINGS: readonly RsaPadding[] = ['OAEP-SHA1', 'OAEP-SHA256', 'OAEP-SHA384', 'OAEP-SHA512', 'PKCS1']

/** Options of `new RawRsaKeyring(...)`: the public key to encrypt, the private key to decrypt (or both). */
export interface RawRsaKeyringOptions {
  /** Stored as the key provider ID. Must not be `aws-kms`. */
  keyNamespace: string
  /** Stored as the key provider info: with `keyNamespace`, what tells this key pair's data keys from others'. */
  keyName: string
  /**
   * PEM (SPKI or PKCS#1), DER SPKI bytes, or a platform key object (`KeyObject` in Node, an RSA-OAEP
   * `CryptoKey` in the browser). Needed to encrypt; derived from `privateKey` when omitted.
   */
  publicKey?: unknown
  /** PEM (PKCS#8 or PKCS#1), DER PKCS#8 bytes, or a platform key object. Needed to decrypt. */
  privateKey?: unknown
  /** Not stored in the message: encrypt and decrypt must agree on it. */
  padding: RsaPadding
}

/** A keyring's keys as one backend parsed them; `pair`, the check that keys given together are one pair. */
interface ParsedKeys {
  publicKey?: unknown
  privateKey?: unknown
  pair?: Promise<void>
}

/**
 * Wraps data keys with RSA under a key pair you hold. PKCS1 (v1.5) decryption uses implicit rejection,
 * so it works on Node releases that refuse PKCS1 private decryption (CVE-2023-46809).
 * spec: framework/raw-rsa-keyring.md
 *
 * @example
 * ```ts
 * const keyring = new RawRsaKeyring({ keyNamespace: 'app', keyName: 'rsa-1', publicKey: pem, padding: 'OAEP-SHA256' })
 * ```
 */
export class RawRsaKeyring implements Keyring {
  /** The key provider ID its data keys are stored under. */
  readonly keyNamespace: string
  /** The name stored with each of its data keys. */
  readonly keyName: string
  /** The RSA padding it wraps and unwraps with. */
  readonly padding: RsaPadding
  readonly #publicKeyInput: unknown
  readonly #privateKeyInput: unknown
  readonly #keyNameBytes: Uint8Array
  /** Parsed keys per backend, so a PEM is parsed once. */
  readonly #parsed = new WeakMap<CryptoBackend, ParsedKeys>()

  constructor(options: RawRsaKeyringOptions) {
    const { keyNamespace, keyName, publicKey, privateKey, padding } = optionsObject(options, 'RawRsaKeyring', 'keyNamespace, keyName, publicKey, privateKey, padding')
    validateKeyName('RawRsaKeyring', keyNamespace, keyName)
    if (!PADDINGS.includes(padding)) {
      throw new ConfigurationError(`RawRsaKeyring padding must be one of ${PADDINGS.join(', ')}; got ${quoteValue(padding)}.`)
    }
    if (publicKey === undefined && privateKey === undefined) {
      throw new ConfigurationError('RawRsaKeyring needs a publicKey (to encrypt), a privateKey (to decrypt), or both.')
    }
    this.keyNamespace = keyNamespace
    this.keyName = keyName
    this.padding = padding
    // Parsed on first use, by each backend: DER bytes are copied now, so that the caller may reuse its buffer (a
    // Buffer's slice() would share its memory).
    this.#publicKeyInput = isBytes(publicKey) ? new Uint8Array(publicKey) : publicKey
    this.#privateKeyInput = isBytes(privateKey) ? new Uint8Array(privateKey) : privateKey
    this.#keyNameBytes = utf8(keyName)
  }

  #keys(backend: CryptoBackend): ParsedKeys {
    let keys = this.#parsed.get(backend)
    if (keys === undefined) {
      const privateKey = this.#privateKeyInput === undefined ? undefined : backend.importRsaPrivateKey(this.#privateKeyInput)
      const publicKey =
        this.#publicKeyInput !== undefined
          ? backend.importRsaPublicKey(this.#publicKeyInput)
          : backend.rsaPublicFromPrivate(privateKey)
      keys = { publicKey, privateKey }
      this.#parsed.set(backend, keys)
    }
    return keys
  }

  async onEncrypt(materials: EncryptionMaterials, backend: CryptoBackend): Promise<EncryptionMaterials> {
    const keys = this.#keys(backend)
    const { publicKey, privateKey } = keys
    // Keys given together must be one pair (checked once; the check is loaded on demand, as only such keyrings need it).
    if (privateKey !== undefined && this.#publicKeyInput !== undefined) {
      await (keys.pair ??= loadOnDemand().then((onDemand) => onDemand.checkRsaPair(backend, describeKeyring(this), this.padding, publicKey, privateKey)))
    }
    const wrap = async (material: Uint8Array): Promise<EncryptedDataKey> => {
      let ciphertext: Uint8Array
      try {
        ciphertext = await backend.rsaEncrypt(publicKey, this.padding, material)
      } catch (error) {
        if (error instanceof EnvelopeError) throw error // e.g. PKCS1 on WebCrypto: UNSUPPORTED_OPERATION, as is
        throw new KeyringError(`RawRsaKeyring ${describeKeyring(this)} could not wrap the data key with ${this.padding}.`, { cause: error })
      }
      return { providerId: this.keyNamespace, providerInfo: this.#keyNameBytes.slice(), ciphertext }
    }
    return wrapDataKey(materials, backend, async (withKey) => {
      if (materials.suite.edkWrapping === 'intermediate') {
        // spec: framework/algorithm-suites.md#intermediate-key-wrapping (the RSA key wraps a fresh intermediate key)
        return addIntermediateRecipient(withKey, backend, () => freshIntermediateKey(backend, materials.suite.keyLength, wrap))
      }
      const edk = await wrap(withKey.plaintextDataKey as Uint8Array)
      return { ...withKey, encryptedDataKeys: [...withKey.encryptedDataKeys, edk] }
    })
  }

  async onDecrypt(
    materials: DecryptionMaterials,
    encryptedDataKeys: readonly EncryptedDataKey[],
    backend: CryptoBackend,
  ): Promise<DecryptionMaterials> {
    if (materials.plaintextDataKey !== undefined) return materials
    const candidates = encryptedDataKeys.filter(
      (edk) => edk.providerId === this.keyNamespace && bytesEqual(edk.providerInfo, this.#keyNameBytes),
    )
    if (candidates.length === 0) return materials
    const { privateKey } = this.#keys(backend)
    if (privateKey === undefined) {
      throw new KeyringError(`RawRsaKeyring ${describeKeyring(this)} has no private key, so it cannot decrypt.`)
    }
    const causes: unknown[] = []
    for (const [index, edk] of candidates.entries()) {
      // Each try is a private-key operation: about 3 ms for a 4096-bit key, and in Node on the main thread. A message
      // wraps its data key once per key, but a hostile one can name this key thousands of times: the tries after
      // the first let the event loop turn, so a server stays responsive (decrypt's maxEncryptedDataKeys bounds them).
      if (index > 0) await turn()
      try {
        const keyLength = materials.suite.keyLength
        if (materials.suite.edkWrapping === 'direct') {
          return Object.assign({}, materials, { plaintextDataKey: await backend.rsaDecrypt(privateKey, this.padding, edk.ciphertext, keyLength) })
        }
        const wrapped = wrappedIntermediateKey(edk, keyLength)
        if (wrapped === undefined) throw new KeyringError('The encrypted data key is too short to hold a wrapped intermediate key.')
        const opened = await openIntermediate(materials, edk, await backend.rsaDecrypt(privateKey, this.padding, wrapped, keyLength), backend)
        if (opened !== undefined) return opened
        throw new KeyringError('The data key does not open with its intermediate key: the encryption context differs.')
      } catch (error) {
        // The same for every candidate: the padding is unsupported, or the key cannot do it (a CryptoKey imported for another hash).
        if (error instanceof UnsupportedOperationError || error instanceof ConfigurationError) throw error
        causes.push(error)
      }
    }
    // The plural is spelled inline: RawRsaKeyring is in a browser application's first load.
    throw new KeyringError(
      `RawRsaKeyring ${describeKeyring(this)} found ${candidates.length} encrypted data key${candidates.length === 1 ? '' : 's'} for its key name, but none decrypted with ${this.padding}.`,
      { cause: causes[0] },
    )
  }

  /** Never shows a key. */
  toJSON(): object {
    return { type: 'RawRsaKeyring', keyNamespace: this.keyNamespace, keyName: this.keyName, padding: this.padding }
  }

  [Symbol.for('nodejs.util.inspect.custom')](): string {
    return `RawRsaKeyring ${describeKeyring(this)} ${this.padding}`
  }
}
