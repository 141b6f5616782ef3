import type { CryptoBackend } from '../backend/types.js'
import { ConfigurationError } from '../errors.js'
import { quoteValue } from '../quote.js'
import type { DecryptionMaterials, EncryptedDataKey, EncryptionMaterials, Keyring } from '../types.js'
import { assertMrksAreUnique, isMultiRegionKey, mrkMatch, withRegion } from './kms-arn.js'
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
import { MultiKeyring } from './multi.js'

/** Options of `new KmsMrkKeyring(...)`. */
export interface KmsMrkKeyringOptions {
  /**
   * Key or alias ARN, or an alias name or key id (called in the AWS SDK's default Region). Decrypting needs a key
   * ARN; for a multi-Region key, any replica's ARN.
   */
  keyId: string
  /** Client per Region; this keyring calls only the Region of `keyId` (the default Region without one). */
  clientSupplier?: KmsClientSupplier | undefined
  /** Grant tokens sent with each KMS call, for keys a grant allows (before the grant is consistent, say). */
  grantTokens?: readonly string[] | undefined
}

/**
 * A single-key KMS keyring aware of multi-Region keys: a data key wrapped under a multi-Region key in
 * one Region decrypts with this keyring's replica of that key, calling only this keyring's Region.
 * spec: framework/aws-kms/aws-kms-mrk-keyring.md
 *
 * @example
 * ```ts
 * // The message was encrypted under the us-east-1 primary; decrypt with the local eu-west-1 replica.
 * const keyring = new KmsMrkKeyring({ keyId: 'arn:aws:kms:eu-west-1:111122223333:key/mrk-1234abcd12ab34cd56ef1234567890ab' })
 * const { plaintext } = await decrypt(keyring, ciphertext)
 * ```
 */
export class KmsMrkKeyring implements Keyring {
  /** Its KMS key (`keyId` option). */
  readonly keyId: string
  readonly #client: KmsClientLike
  readonly #grantTokens: readonly string[]

  constructor(options: KmsMrkKeyringOptions) {
    const checked = kmsKeyringOptions('KmsMrkKeyring', options, 'keyId, clientSupplier, grantTokens')
    const { keyId, grantTokens } = checked
    const region = configuredRegion('KmsMrkKeyring', keyId, 'keyId')
    this.#grantTokens = validateGrantTokens('KmsMrkKeyring', grantTokens)
    this.#client = clientFor('KmsMrkKeyring', validateClientSupplier('KmsMrkKeyring', checked), region, keyId)
    this.keyId = keyId
  }

  // spec: framework/aws-kms/aws-kms-mrk-keyring.md#onencrypt
  async onEncrypt(materials: EncryptionMaterials, backend: CryptoBackend, signal?: AbortSignal): Promise<EncryptionMaterials> {
    if (materials.plaintextDataKey === undefined) {
      return generateDataKey('KmsMrkKeyring', this.#client, this.keyId, materials, this.#grantTokens, backend, signal)
    }
    return encryptDataKey('KmsMrkKeyring', this.#client, this.keyId, materials, this.#grantTokens, backend, signal)
  }

  async onDecrypt(
    materials: DecryptionMaterials,
    encryptedDataKeys: readonly EncryptedDataKey[],
    backend: CryptoBackend,
    signal?: AbortSignal,
  ): Promise<DecryptionMaterials> {
    // spec: framework/aws-kms/aws-kms-mrk-keyring.md#ondecrypt
    if (materials.plaintextDataKey !== undefined) return materials
    const attempts: DecryptAttempt[] = recordedKmsKeys(encryptedDataKeys)
      .filter((recorded) => mrkMatch(this.keyId, recorded.arn))
      // KeyId is the configured ARN, so KMS is asked in this keyring's Region only.
      .map((recorded) => ({ recorded, keyId: this.keyId, client: () => this.#client }))
    if (attempts.length === 0) {
      refuseWithoutKeyArn('KmsMrkKeyring', [this.keyId])
      return materials
    }
    return decryptFirst('KmsMrkKeyring', materials, attempts, this.#grantTokens, backend, signal)
  }

  /** Its key identifier. */
  toJSON(): object {
    return { type: 'KmsMrkKeyring', keyId: this.keyId }
  }
}

/** Options of `new KmsMrkDiscoveryKeyring(...)` (decrypt only, in one Region). */
export interface KmsMrkDiscoveryKeyringOptions {
  /** The only Region this keyring calls. */
  region: string
  /** Use only keys of these accounts in this partition. */
  discoveryFilter?: DiscoveryFilter | undefined
  /** Client per Region; default: one `KMSClient` per Region, made on first use (`defaultKmsClientSupplier()`). */
  clientSupplier?: KmsClientSupplier | undefined
  /** Grant tokens sent with each KMS call, for keys a grant allows (before the grant is consistent, say). */
  grantTokens?: readonly string[] | undefined
}

/**
 * Decrypts with any KMS key that passes the discovery filter, calling one Region only: a data key under a
 * multi-Region key is decrypted with that key's replica in this Region; a data key under a single-Region
 * key in another Region is skipped. It cannot encrypt.
 * spec: framework/aws-kms/aws-kms-mrk-discovery-keyring.md
 *
 * @example
 * ```ts
 * const keyring = new KmsMrkDiscoveryKeyring({ region: 'eu-west-1', discoveryFilter: { partition: 'aws', accountIds: ['111122223333'] } })
 * ```
 */
export class KmsMrkDiscoveryKeyring implements Keyring {
  /** The only Region it calls. */
  readonly region: string
  /** The accounts and partition whose keys it uses; undefined: any key KMS lets the caller use. */
  readonly discoveryFilter: DiscoveryFilter | undefined
  readonly #client: KmsClientLike
  readonly #grantTokens: readonly string[]

  constructor(options: KmsMrkDiscoveryKeyringOptions) {
    const checked = kmsKeyringOptions('KmsMrkDiscoveryKeyring', options, 'region, discoveryFilter, clientSupplier, grantTokens')
    const { region, discoveryFilter, grantTokens } = checked
    if (!isRegionName(region)) {
      throw new ConfigurationError(`KmsMrkDiscoveryKeyring needs region: the Region whose KMS it calls, a Region name (lowercase letters, digits and hyphens); got ${quoteValue(region)}.`)
    }
    this.region = region
    this.discoveryFilter = validateDiscoveryFilter('KmsMrkDiscoveryKeyring', discoveryFilter)
    this.#grantTokens = validateGrantTokens('KmsMrkDiscoveryKeyring', grantTokens)
    this.#client = clientFor('KmsMrkDiscoveryKeyring', validateClientSupplier('KmsMrkDiscoveryKeyring', checked), region)
  }

  // spec: framework/aws-kms/aws-kms-mrk-discovery-keyring.md#onencrypt
  async onEncrypt(_materials: EncryptionMaterials, _backend: CryptoBackend): Promise<EncryptionMaterials> {
    throw new ConfigurationError('KmsMrkDiscoveryKeyring only decrypts: encrypt with a KmsMrkKeyring or KmsKeyring.')
  }

  async onDecrypt(
    materials: DecryptionMaterials,
    encryptedDataKeys: readonly EncryptedDataKey[],
    backend: CryptoBackend,
    signal?: AbortSignal,
  ): Promise<DecryptionMaterials> {
    if (materials.plaintextDataKey !== undefined) return materials
    // spec: framework/aws-kms/aws-kms-mrk-discovery-keyring.md#ondecrypt
    const attempts: DecryptAttempt[] = []
    for (const recorded of recordedKmsKeys(encryptedDataKeys)) {
      if (!passesDiscoveryFilter(this.discoveryFilter, recorded.parsed)) continue
      const multiRegion = isMultiRegionKey(recorded.arn)
      if (!multiRegion && recorded.parsed.region !== this.region) continue
      const keyId = multiRegion ? withRegion(recorded.parsed, this.region) : recorded.arn
      attempts.push({ recorded, keyId, client: () => this.#client })
    }
    if (attempts.length === 0) return materials
    return decryptFirst('KmsMrkDiscoveryKeyring', materials, attempts, this.#grantTokens, backend, signal)
  }

  /** Its Region and filter. */
  toJSON(): object {
    return { type: 'KmsMrkDiscoveryKeyring', region: this.region, discoveryFilter: this.discoveryFilter }
  }
}

/** Options of `buildKmsMrkMultiKeyring(...)`. */
export interface KmsMrkMultiKeyringOptions {
  /** Key or alias ARN that makes the data key. */
  generator?: string | undefined
  /** Key or alias ARNs that wrap it too. */
  keyIds?: readonly string[] | undefined
  /** Client per Region; default: one `KMSClient` per Region, made on first use (`defaultKmsClientSupplier()`). */
  clientSupplier?: KmsClientSupplier | undefined
  /** Grant tokens sent with each KMS call, for keys a grant allows (before the grant is consistent, say). */
  grantTokens?: readonly string[] | undefined
}

/**
 * A `MultiKeyring` of `KmsMrkKeyring`s: the generator's makes the data key, each of `keyIds` wraps it.
 * Refuses two ARNs of the same multi-Region key, since which Region to call would be ambiguous.
 * spec: framework/aws-kms/aws-kms-mrk-multi-keyrings.md#aws-kms-mrk-multi-keyring
 *
 * @example
 * ```ts
 * const keyring = buildKmsMrkMultiKeyring({ generator: usEast1MrkArn, keyIds: [singleRegionKeyArn] })
 * ```
 */
export function buildKmsMrkMultiKeyring(options: KmsMrkMultiKeyringOptions): MultiKeyring {
  const checked = kmsKeyringOptions('buildKmsMrkMultiKeyring', options, 'generator, keyIds, clientSupplier, grantTokens')
  const { generator, keyIds = [], grantTokens } = checked
  if (!Array.isArray(keyIds)) throw new ConfigurationError('buildKmsMrkMultiKeyring keyIds must be an array of key ARNs.')
  if (generator === undefined && keyIds.length === 0) {
    throw new ConfigurationError('buildKmsMrkMultiKeyring needs a generator or at least one of keyIds.')
  }
  const all = generator === undefined ? [...keyIds] : [generator, ...keyIds]
  if (generator !== undefined) configuredRegion('buildKmsMrkMultiKeyring', generator, 'generator')
  keyIds.forEach((keyId, index) => configuredRegion('buildKmsMrkMultiKeyring', keyId, `keyIds[${index}]`))
  assertMrksAreUnique(all)
  const supplier = validateClientSupplier('buildKmsMrkMultiKeyring', checked)
  const keyring = (keyId: string): KmsMrkKeyring =>
    new KmsMrkKeyring({ keyId, clientSupplier: supplier, ...(grantTokens === undefined ? {} : { grantTokens }) })
  return new MultiKeyring({
    ...(generator === undefined ? {} : { generator: keyring(generator) }),
    children: keyIds.map(keyring),
  })
}

/** Options of `buildKmsMrkDiscoveryMultiKeyring(...)`. */
export interface KmsMrkDiscoveryMultiKeyringOptions {
  /** One `KmsMrkDiscoveryKeyring` per Region, tried in this order. */
  regions: readonly string[]
  /** Use only keys of these accounts in this partition. */
  discoveryFilter?: DiscoveryFilter | undefined
  /** Client per Region; default: one `KMSClient` per Region, made on first use (`defaultKmsClientSupplier()`). */
  clientSupplier?: KmsClientSupplier | undefined
  /** Grant tokens sent with each KMS call, for keys a grant allows (before the grant is consistent, say). */
  grantTokens?: readonly string[] | undefined
}

/**
 * A `MultiKeyring` of `KmsMrkDiscoveryKeyring`s, one per Region, tried in order.
 * spec: framework/aws-kms/aws-kms-mrk-multi-keyrings.md#aws-kms-mrk-discovery-multi-keyring
 *
 * @example
 * ```ts
 * const keyring = buildKmsMrkDiscoveryMultiKeyring({ regions: ['eu-west-1', 'us-east-1'], discoveryFilter })
 * ```
 */
export function buildKmsMrkDiscoveryMultiKeyring(options: KmsMrkDiscoveryMultiKeyringOptions): MultiKeyring {
  const checked = kmsKeyringOptions('buildKmsMrkDiscoveryMultiKeyring', options, 'regions, discoveryFilter, clientSupplier, grantTokens')
  const { regions, discoveryFilter, grantTokens } = checked
  if (!Array.isArray(regions) || regions.length === 0 || !regions.every(isRegionName)) {
    throw new ConfigurationError('buildKmsMrkDiscoveryMultiKeyring regions must be a non-empty array of Region names.')
  }
  const supplier = validateClientSupplier('buildKmsMrkDiscoveryMultiKeyring', checked)
  return new MultiKeyring({
    children: [...new Set(regions)].map(
      (region) =>
        new KmsMrkDiscoveryKeyring({
          region,
          clientSupplier: supplier,
          ...(discoveryFilter === undefined ? {} : { discoveryFilter }),
          ...(grantTokens === undefined ? {} : { grantTokens }),
        }),
    ),
  })
}
