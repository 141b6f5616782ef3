import type { CryptoBackend } from '../backend/types.js'
import { ConfigurationError, KeyringError } from '../errors.js'
import { quoteValue } from '../quote.js'
import type { DecryptionMaterials, EncryptedDataKey, EncryptionMaterials, Keyring } from '../types.js'
import type { KmsClientLike, KmsClientSupplier } from './kms-client.js'
import {
  clientFor,
  configuredRegion,
  isRegionName,
  decryptFirst,
  encryptDataKey,
  generateDataKey,
  kmsKeyringOptions,
  passesDiscoveryFilter,
  recordedKmsKeys,
  refuseWithoutKeyArn,
  validateClientSupplier,
  validateDiscoveryFilter,
  type DecryptAttempt,
  type DiscoveryFilter,
} from './kms-common.js'
import { validateGrantTokens } from './kms-grant-tokens.js'

/** Options of `new KmsKeyring(...)`. */
export interface KmsKeyringOptions {
  /**
   * The KMS key that makes the data key (GenerateDataKey): a key or alias ARN, or an alias name or key id, which
   * are called in the AWS SDK's default Region. Needed unless a generator ran before this keyring.
   */
  generatorKeyId?: string | undefined
  /** Keys that each wrap the data key too (Encrypt), named as `generatorKeyId` is. Decrypting needs key ARNs. */
  keyIds?: readonly string[] | undefined
  /** Client per Region; default: one `KMSClient` per Region, made on first use. */
  clientSupplier?: KmsClientSupplier | undefined
  /** Grant tokens sent with each KMS call, for keys a grant allows (before the grant is consistent, say). */
  grantTokens?: readonly string[] | undefined
}

/**
 * Wraps data keys under AWS KMS keys. On encrypt the generator key makes the data key and every key in
 * `keyIds` wraps it as well; on decrypt the keyring asks KMS only about data keys recorded under exactly
 * one of its key ARNs. Behaves as a multi-keyring of single-key AWS KMS keyrings.
 * spec: framework/aws-kms/aws-kms-keyring.md, framework/aws-kms/aws-kms-multi-keyrings.md#aws-kms-multi-keyring
 *
 * @example
 * ```ts
 * const keyring = new KmsKeyring({
 *   generatorKeyId: 'arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab',
 *   keyIds: ['arn:aws:kms:eu-west-1:111122223333:key/0987dcba-09fe-87dc-65ba-ab0987654321'],
 * })
 * const { ciphertext } = await encrypt(keyring, 'hello', { encryptionContext: { tenant: 'a' } })
 * ```
 */
export class KmsKeyring implements Keyring {
  /** The KMS key that makes the data key (`generatorKeyId` option). */
  readonly generatorKeyId: string | undefined
  /** The KMS keys that wrap it too (`keyIds` option). */
  readonly keyIds: readonly string[]
  readonly #grantTokens: readonly string[]
  /** One client per configured key, from the Region in its ARN (the default Region without one). */
  readonly #clients = new Map<string, KmsClientLike>()

  constructor(options: KmsKeyringOptions) {
    const checked = kmsKeyringOptions('KmsKeyring', options, 'generatorKeyId, keyIds, clientSupplier, grantTokens')
    const { generatorKeyId, keyIds = [], grantTokens } = checked
    if (!Array.isArray(keyIds)) throw new ConfigurationError('KmsKeyring keyIds must be an array of key identifiers (key ARNs).')
    if (generatorKeyId === undefined && keyIds.length === 0) {
      throw new ConfigurationError('KmsKeyring needs a generatorKeyId or at least one of keyIds; to decrypt with any key, use KmsDiscoveryKeyring.')
    }
    const supplier = validateClientSupplier('KmsKeyring', checked)
    this.#grantTokens = validateGrantTokens('KmsKeyring', grantTokens)
    const configured: Array<[string, string]> = [
      ...(generatorKeyId === undefined ? [] : [['generatorKeyId', generatorKeyId] as [string, string]]),
      ...keyIds.map((keyId, index): [string, string] => [`keyIds[${index}]`, keyId]),
    ]
    for (const [what, keyId] of configured) {
      const region = configuredRegion('KmsKeyring', keyId, what)
      // spec: framework/aws-kms/aws-kms-multi-keyrings.md#aws-kms-multi-keyring (client from the ARN's Region)
      if (!this.#clients.has(keyId)) this.#clients.set(keyId, clientFor('KmsKeyring', supplier, region, keyId))
    }
    this.generatorKeyId = generatorKeyId
    this.keyIds = Object.freeze([...keyIds])
  }

  async onEncrypt(materials: EncryptionMaterials, backend: CryptoBackend, signal?: AbortSignal): Promise<EncryptionMaterials> {
    let current = materials
    let wrapWith: readonly string[]
    if (current.plaintextDataKey === undefined) {
      if (this.generatorKeyId === undefined) {
        throw new KeyringError('KmsKeyring has no generatorKeyId and no data key was supplied: give it a generatorKeyId.')
      }
      current = await generateDataKey('KmsKeyring', this.#client(this.generatorKeyId), this.generatorKeyId, current, this.#grantTokens, backend, signal)
      wrapWith = this.keyIds
    } else {
      // A data key made before this keyring: every configured key, the generator's too, only wraps it.
      wrapWith = this.generatorKeyId === undefined ? this.keyIds : [this.generatorKeyId, ...this.keyIds]
    }
    try {
      for (const keyId of wrapWith) current = await encryptDataKey('KmsKeyring', this.#client(keyId), keyId, current, this.#grantTokens, backend, signal)
    } catch (error) {
      // The data key this keyring made must not outlive a failed encrypt.
      if (materials.plaintextDataKey === undefined) current.plaintextDataKey?.fill(0)
      throw error
    }
    return current
  }

  async onDecrypt(
    materials: DecryptionMaterials,
    encryptedDataKeys: readonly EncryptedDataKey[],
    backend: CryptoBackend,
    signal?: AbortSignal,
  ): Promise<DecryptionMaterials> {
    if (materials.plaintextDataKey !== undefined) return materials
    // spec: framework/aws-kms/aws-kms-keyring.md#ondecrypt — the provider info must equal a configured key
    const attempts: DecryptAttempt[] = recordedKmsKeys(encryptedDataKeys)
      .filter((recorded) => this.#clients.has(recorded.arn))
      .map((recorded) => ({ recorded, keyId: recorded.arn, client: () => this.#client(recorded.arn) }))
    if (attempts.length === 0) {
      refuseWithoutKeyArn('KmsKeyring', [...this.#clients.keys()])
      return materials
    }
    return decryptFirst('KmsKeyring', materials, attempts, this.#grantTokens, backend, signal)
  }

  #client(keyId: string): KmsClientLike {
    return this.#clients.get(keyId) as KmsClientLike
  }

  /** Its key identifiers. */
  toJSON(): object {
    return { type: 'KmsKeyring', generatorKeyId: this.generatorKeyId, keyIds: this.keyIds }
  }
}

/** Options of `new KmsDiscoveryKeyring(...)` (decrypt only). */
export interface KmsDiscoveryKeyringOptions {
  /** Use only keys of these accounts in this partition. Recommended: without it any key KMS lets you use will do. */
  discoveryFilter?: DiscoveryFilter | undefined
  /** Client per Region; each data key is decrypted in the Region its ARN names. */
  clientSupplier?: KmsClientSupplier | undefined
  /** Use only keys in this Region (one client), as the spec's discovery keyring does. Default: any Region. */
  region?: string | undefined
  /** Grant tokens sent with each KMS call, for keys a grant allows (before the grant is consistent, say). */
  grantTokens?: readonly string[] | undefined
}

/**
 * Decrypts with whichever KMS key a message's data key was wrapped under, as long as the key's ARN
 * passes the discovery filter and KMS lets the caller use it. It cannot encrypt.
 * spec: framework/aws-kms/aws-kms-discovery-keyring.md
 *
 * @example
 * ```ts
 * const keyring = new KmsDiscoveryKeyring({ discoveryFilter: { partition: 'aws', accountIds: ['111122223333'] } })
 * const { plaintext } = await decrypt(keyring, ciphertext)
 * ```
 */
export class KmsDiscoveryKeyring implements Keyring {
  /** The accounts and partition whose keys it uses; undefined: any key KMS lets the caller use. */
  readonly discoveryFilter: DiscoveryFilter | undefined
  /** The only Region it calls, or undefined for the Region each data key's ARN names. */
  readonly region: string | undefined
  readonly #supplier: KmsClientSupplier
  readonly #grantTokens: readonly string[]

  constructor(options: KmsDiscoveryKeyringOptions = {}) {
    const checked = kmsKeyringOptions('KmsDiscoveryKeyring', options, 'discoveryFilter, clientSupplier, region, grantTokens')
    const { discoveryFilter, region, grantTokens } = checked
    if (region !== undefined && !isRegionName(region)) {
      throw new ConfigurationError(`KmsDiscoveryKeyring region must be a Region name (lowercase letters, digits and hyphens) when given; got ${quoteValue(region)}.`)
    }
    this.discoveryFilter = validateDiscoveryFilter('KmsDiscoveryKeyring', discoveryFilter)
    this.region = region
    this.#supplier = validateClientSupplier('KmsDiscoveryKeyring', checked)
    this.#grantTokens = validateGrantTokens('KmsDiscoveryKeyring', grantTokens)
  }

  // spec: framework/aws-kms/aws-kms-discovery-keyring.md#onencrypt
  async onEncrypt(_materials: EncryptionMaterials, _backend: CryptoBackend): Promise<EncryptionMaterials> {
    throw new ConfigurationError('KmsDiscoveryKeyring only decrypts: encrypt with a KmsKeyring configured with key ARNs.')
  }

  async onDecrypt(
    materials: DecryptionMaterials,
    encryptedDataKeys: readonly EncryptedDataKey[],
    backend: CryptoBackend,
    signal?: AbortSignal,
  ): Promise<DecryptionMaterials> {
    if (materials.plaintextDataKey !== undefined) return materials
    // spec: framework/aws-kms/aws-kms-discovery-keyring.md#ondecrypt
    const attempts: DecryptAttempt[] = recordedKmsKeys(encryptedDataKeys)
      .filter(({ parsed }) => passesDiscoveryFilter(this.discoveryFilter, parsed))
      .filter(({ parsed }) => this.region === undefined || parsed.region === this.region)
      .map((recorded) => ({
        recorded,
        keyId: recorded.arn,
        client: () => clientFor('KmsDiscoveryKeyring', this.#supplier, recorded.parsed.region),
      }))
    if (attempts.length === 0) return materials
    return decryptFirst('KmsDiscoveryKeyring', materials, attempts, this.#grantTokens, backend, signal)
  }

  /** Its filter and Region. */
  toJSON(): object {
    return { type: 'KmsDiscoveryKeyring', discoveryFilter: this.discoveryFilter, region: this.region }
  }
}
