import type { CryptoBackend, RsaPadding } from '../backend/types.js'
import { checkRsaEncryptBits, fromPem, rsaSpkiModulusBits } from '../backend/der.js'
import { ConfigurationError, EnvelopeError, KeyringError } from '../errors.js'
import { utf8 } from '../format/bytes.js'
import { objectKind } from '../format/context.js'
import type { DecryptionMaterials, EncryptedDataKey, EncryptionMaterials, Keyring } from '../types.js'
import { loadOnDemand, onDemandLoaded } from '../load-on-demand.js'
import { ensureDataKey } from './common.js'
import { isKmsArn, mrkMatch, parseKmsArn, parseKmsKeyArn } from './kms-arn.js'
import { optionsObject } from '../option-names.js'
import { quoteIdentifier } from '../quote.js'
import { CONTEXT_DIGEST_LENGTH, contextDigest, KMS_RSA_PROVIDER_ID, refuseSigningSuite } from './kms-rsa-digest.js'
import type { KmsClientLike, KmsClientSupplier } from './kms-client.js'
import { validateGrantTokens } from './kms-grant-tokens.js'
import { isBytes } from '../is-bytes.js'

/** The RSA encryption algorithms of AWS KMS RSA keys that this keyring may use. */
export type KmsRsaEncryptionAlgorithm = 'RSAES_OAEP_SHA_256' | 'RSAES_OAEP_SHA_1'

// spec: framework/aws-kms/aws-kms-rsa-keyring.md#supported-padding-schemes
const PADDING: Record<KmsRsaEncryptionAlgorithm, RsaPadding> = {
  RSAES_OAEP_SHA_256: 'OAEP-SHA256',
  RSAES_OAEP_SHA_1: 'OAEP-SHA1',
}

/** Options of `new KmsRsaKeyring(...)`: `publicKey` to encrypt offline, a KMS client (or supplier) to decrypt. */
export interface KmsRsaKeyringOptions {
  /** Key ARN of the KMS RSA key (`arn:aws:kms:<region>:<account>:key/<id>`); recorded in the message. Not an alias. */
  keyId: string
  /** The key's encryption algorithm; encrypt and decrypt must agree (it is not stored in the message). */
  encryptionAlgorithm: KmsRsaEncryptionAlgorithm
  /**
   * The key's public half, as KMS GetPublicKey returns it: DER SPKI bytes, or the same as a PEM string
   * (`-----BEGIN PUBLIC KEY-----`). At least 2048 bits. Needed to encrypt, which then makes no AWS call.
   */
  publicKey?: string | Uint8Array | undefined
  /**
   * The client decrypt calls (an `@aws-sdk/client-kms` `KMSClient`, or anything with its `send`). Decrypting
   * needs this or `clientSupplier`; encrypting needs neither.
   */
  kmsClient?: KmsClientLike | undefined
  /** Alternatively, a client per Region (called with the key ARN's Region), e.g. `defaultKmsClientSupplier()`. */
  clientSupplier?: KmsClientSupplier | undefined
  /** Grant tokens sent with each KMS call, for keys a grant allows (before the grant is consistent, say). */
  grantTokens?: readonly string[] | undefined
}

/**
 * Wraps data keys under an AWS KMS RSA key: encryption is offline, with the key's public half (no AWS
 * credentials and no AWS SDK code needed, so it runs in a browser); decryption asks KMS Decrypt. The
 * encryption context is bound by RSA-encrypting `SHA-384(serialized context) || data key` and comparing the
 * digest on decrypt. Signing suites are refused (anyone with the public key could write a message, so a
 * signature proves nothing): use `0x0478`, which `encrypt` picks by default when given this keyring.
 * spec: framework/aws-kms/aws-kms-rsa-keyring.md
 *
 * @example
 * ```ts
 * const keyring = new KmsRsaKeyring({
 *   keyId: 'arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab',
 *   encryptionAlgorithm: 'RSAES_OAEP_SHA_256',
 *   publicKey: pemFromYourServer,
 * })
 * const { ciphertext } = await encrypt(keyring, 'hello', { encryptionContext: { tenant: 'a' } }) // suite 0x0478
 * ```
 */
export class KmsRsaKeyring implements Keyring {
  /** The KMS RSA key's ARN, stored with each data key it wraps. */
  readonly keyId: string
  /** The OAEP hash it wraps with, and asks KMS to unwrap with. */
  readonly encryptionAlgorithm: KmsRsaEncryptionAlgorithm
  /** Read by `encrypt`: without an `algorithmSuite` option it picks the policy's unsigned default (0x0478). */
  readonly refusesSigningSuites = true
  /** The public key as given (parsed per backend on first use); undefined for a decrypt-only keyring. */
  readonly #publicKey: string | Uint8Array | undefined
  readonly #parsed = new WeakMap<CryptoBackend, unknown>()
  readonly #keyIdBytes: Uint8Array
  readonly #region: string
  readonly #kmsClient: KmsClientLike | undefined
  readonly #clientSupplier: KmsClientSupplier | undefined
  readonly #grantTokens: readonly string[]

  constructor(options: KmsRsaKeyringOptions) {
    const { keyId, encryptionAlgorithm, publicKey, kmsClient, clientSupplier, grantTokens } = optionsObject(
      options,
      'KmsRsaKeyring',
      'keyId, encryptionAlgorithm, publicKey, kmsClient, clientSupplier, grantTokens',
    )
    // spec: #initialization — a valid identifier, not an alias. A key ARN is required, because a message
    // records it and decrypt accepts only data keys whose provider info is a key ARN.
    const arn = parseKmsKeyArn(keyId, 'KmsRsaKeyring keyId')
    if (!Object.prototype.hasOwnProperty.call(PADDING, encryptionAlgorithm)) {
      throw new ConfigurationError(
        `KmsRsaKeyring encryptionAlgorithm must be RSAES_OAEP_SHA_256 or RSAES_OAEP_SHA_1; got ${quoteIdentifier(encryptionAlgorithm)}.`,
      )
    }
    if (publicKey !== undefined) checkPublicKey(publicKey)
    if (kmsClient !== undefined && typeof (kmsClient as KmsClientLike | null)?.send !== 'function') {
      throw new ConfigurationError('KmsRsaKeyring kmsClient must be a KMSClient (an object with send).')
    }
    if (clientSupplier !== undefined && typeof clientSupplier !== 'function') {
      throw new ConfigurationError('KmsRsaKeyring clientSupplier must be a function from a Region name to a KMS client.')
    }
    if (kmsClient !== undefined && clientSupplier !== undefined) {
      throw new ConfigurationError('KmsRsaKeyring takes a kmsClient or a clientSupplier, not both.')
    }
    this.#grantTokens = validateGrantTokens('KmsRsaKeyring', grantTokens)
    this.keyId = keyId
    this.encryptionAlgorithm = encryptionAlgorithm
    // A copy made by the constructor: a Buffer's slice() would share the caller's memory.
    this.#publicKey = typeof publicKey === 'string' || publicKey === undefined ? publicKey : new Uint8Array(publicKey)
    this.#keyIdBytes = utf8(keyId)
    this.#region = arn.region
    this.#kmsClient = kmsClient
    this.#clientSupplier = clientSupplier
  }

  // spec: framework/aws-kms/aws-kms-rsa-keyring.md#onencrypt
  async onEncrypt(materials: EncryptionMaterials, backend: CryptoBackend): Promise<EncryptionMaterials> {
    refuseSigningSuite(materials.suite)
    if (this.#publicKey === undefined) {
      throw new ConfigurationError(`KmsRsaKeyring ${this.keyId} has no publicKey, so it cannot encrypt: pass the key's public half (KMS GetPublicKey).`)
    }
    const publicKey = this.#publicKeyFor(backend)
    const withKey = ensureDataKey(materials, backend)
    const dataKey = withKey.plaintextDataKey as Uint8Array
    const digest = await contextDigest(backend, materials.encryptionContext)
    // spec: "The Encryption Context Digest concatenated with the plaintext data key is the plaintext input to RSA encryption."
    const plaintext = new Uint8Array(CONTEXT_DIGEST_LENGTH + dataKey.length)
    plaintext.set(digest, 0)
    plaintext.set(dataKey, CONTEXT_DIGEST_LENGTH)
    let ciphertext: Uint8Array
    try {
      ciphertext = await backend.rsaEncrypt(publicKey, PADDING[this.encryptionAlgorithm], plaintext)
    } catch (error) {
      if (materials.plaintextDataKey === undefined) dataKey.fill(0)
      if (error instanceof EnvelopeError) throw error
      throw new KeyringError(`KmsRsaKeyring could not wrap the data key for ${this.keyId} with ${this.encryptionAlgorithm}.`, { cause: error })
    } finally {
      plaintext.fill(0)
    }
    const edk: EncryptedDataKey = { providerId: KMS_RSA_PROVIDER_ID, providerInfo: this.#keyIdBytes.slice(), ciphertext }
    return { ...withKey, encryptedDataKeys: [...withKey.encryptedDataKeys, edk] }
  }

  // spec: framework/aws-kms/aws-kms-rsa-keyring.md#ondecrypt
  async onDecrypt(
    materials: DecryptionMaterials,
    encryptedDataKeys: readonly EncryptedDataKey[],
    backend: CryptoBackend,
    signal?: AbortSignal,
  ): Promise<DecryptionMaterials> {
    // All of it (kms-rsa-decrypt.ts) is loaded on demand: an application that only encrypts (in a browser)
    // never downloads the decrypt side.
    const onDemand = onDemandLoaded() ?? (await loadOnDemand())
    return onDemand.kmsRsaDecrypt(
      {
        keyId: this.keyId,
        encryptionAlgorithm: this.encryptionAlgorithm,
        region: this.#region,
        kmsClient: this.#kmsClient,
        clientSupplier: this.#clientSupplier,
        grantTokens: this.#grantTokens,
      },
      materials,
      encryptedDataKeys,
      backend,
      // The ARN rules are passed in rather than imported there: kms-arn.ts is public API, and esbuild puts what
      // on-demand code uses of a module the browser entry re-exports into the first load of every page.
      (recorded) => (isKmsArn(recorded) && parseKmsArn(recorded).resourceType === 'key' ? mrkMatch(this.keyId, recorded) : undefined),
      signal,
    )
  }

  #publicKeyFor(backend: CryptoBackend): unknown {
    let parsed = this.#parsed.get(backend)
    if (parsed === undefined) this.#parsed.set(backend, (parsed = backend.importRsaPublicKey(this.#publicKey)))
    return parsed
  }

  /** Shows its key ARN and algorithm. */
  toJSON(): object {
    return { type: 'KmsRsaKeyring', keyId: this.keyId, encryptionAlgorithm: this.encryptionAlgorithm }
  }

  [Symbol.for('nodejs.util.inspect.custom')](): string {
    return `KmsRsaKeyring ${this.keyId} ${this.encryptionAlgorithm}`
  }
}

/** PEM or DER SPKI of an RSA key of at least 2048 bits. spec: #initialization */
function checkPublicKey(publicKey: unknown): void {
  let der: Uint8Array
  if (isBytes(publicKey)) der = publicKey
  else if (typeof publicKey === 'string') {
    let block: { label: string; der: Uint8Array }
    try {
      block = fromPem(publicKey)
    } catch {
      throw new ConfigurationError('KmsRsaKeyring publicKey is not a PEM public key (-----BEGIN PUBLIC KEY-----).')
    }
    if (block.label !== 'PUBLIC KEY') {
      throw new ConfigurationError(`KmsRsaKeyring publicKey must be an SPKI public key ("PUBLIC KEY" PEM); got a "${block.label}" block.`)
    }
    der = block.der
  } else {
    throw new ConfigurationError(`KmsRsaKeyring publicKey must be DER bytes or a PEM string (as KMS GetPublicKey returns it); got ${objectKind(publicKey)}.`)
  }
  let bits: number
  try {
    bits = rsaSpkiModulusBits(der)
  } catch (error) {
    throw new ConfigurationError(`KmsRsaKeyring publicKey is not an RSA SubjectPublicKeyInfo: ${(error as Error).message}.`)
  }
  checkRsaEncryptBits(bits, 'KmsRsaKeyring publicKey')
}
