/**
 * The public API both entries share (keyrings, materials managers, errors, types); each entry adds its
 * backend-bound encrypt/decrypt functions and its own extras.
 */
export * from './errors.js'
export { RawAesKeyring, type RawAesKeyringOptions } from './keyrings/raw-aes.js'
export { RawRsaKeyring, type RawRsaKeyringOptions } from './keyrings/raw-rsa.js'
export { MultiKeyring, type MultiKeyringOptions } from './keyrings/multi.js'
export { KmsKeyring, KmsDiscoveryKeyring, type KmsKeyringOptions, type KmsDiscoveryKeyringOptions } from './keyrings/kms.js'
export {
  KmsMrkKeyring,
  KmsMrkDiscoveryKeyring,
  buildKmsMrkMultiKeyring,
  buildKmsMrkDiscoveryMultiKeyring,
  type KmsMrkKeyringOptions,
  type KmsMrkDiscoveryKeyringOptions,
  type KmsMrkMultiKeyringOptions,
  type KmsMrkDiscoveryMultiKeyringOptions,
} from './keyrings/kms-mrk.js'
export {
  defaultKmsClientSupplier,
  type DefaultKmsClientSupplierOptions,
  type KmsClientConfig,
  type KmsClientLike,
  type KmsClientSupplier,
} from './keyrings/kms-client.js'
export {
  assertMrksAreUnique,
  formatKmsArn,
  isKmsArn,
  isMultiRegionKey,
  mrkMatch,
  parseKmsArn,
  parseKmsKeyArn,
  type KmsArn,
} from './keyrings/kms-arn.js'
export type { DiscoveryFilter } from './keyrings/kms-common.js'
export { DefaultMaterialsManager } from './cmm/default.js'
export { CachingMaterialsManager, type CachingMaterialsManagerOptions } from './cmm/caching.js'
export {
  LocalMaterialsCache,
  type CacheEntry,
  type CacheEvent,
  type CacheEvictionReason,
  type CacheStats,
  type LocalMaterialsCacheOptions,
  type MaterialsCache,
} from './cmm/cache.js'
export {
  RequiredEncryptionContextMaterialsManager,
  type RequiredEncryptionContextMaterialsManagerOptions,
} from './cmm/required-context.js'
export { ALGORITHM_SUITE_IDS, type AlgorithmSuite } from './suites.js'
export type { CryptoBackend, RsaPadding } from './backend/types.js'
export type * from './types.js'
export type { DecryptStreamOptions, EncryptStreamOptions, EnvelopeStream } from './stream.js'
export { KmsRsaKeyring, type KmsRsaKeyringOptions, type KmsRsaEncryptionAlgorithm } from './keyrings/kms-rsa.js'
export { createKmsPublicKeyCache, type KmsPublicKey, type KmsPublicKeyCache, type KmsPublicKeyCacheOptions } from './keyrings/kms-public-key.js'
