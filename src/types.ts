import type { CryptoBackend } from './backend/types.js'
import type { AlgorithmSuite } from './suites.js'

/** Which algorithm suites may be used to encrypt and to decrypt (spec: framework/commitment-policy.md). */
export type CommitmentPolicy =
  | 'REQUIRE_ENCRYPT_REQUIRE_DECRYPT'
  | 'REQUIRE_ENCRYPT_ALLOW_DECRYPT'
  | 'FORBID_ENCRYPT_ALLOW_DECRYPT'

/** String pairs bound to a message as authenticated data. Stored in the clear in the header. */
export type EncryptionContext = Record<string, string>

/** A data key wrapped by one keyring (spec: data-format/message-header.md#encrypted-data-keys). */
export interface EncryptedDataKey {
  /** Key provider ID, e.g. the raw keyring's key namespace or `aws-kms`. */
  readonly providerId: string
  /** Key provider information: raw bytes (the raw AES keyring stores an IV in it). */
  readonly providerInfo: Uint8Array
  /** The wrapped data key. */
  readonly ciphertext: Uint8Array
}

/** Everything in a message header that a caller may want to inspect. */
export interface MessageHeader {
  readonly version: 1 | 2
  readonly algorithmSuiteId: number
  readonly messageId: Uint8Array
  /** The full stored context, including `aws-crypto-public-key` for signing suites. */
  readonly encryptionContext: EncryptionContext
  readonly encryptedDataKeys: readonly EncryptedDataKey[]
  readonly contentType: 'framed' | 'non-framed'
  /** Plaintext bytes per regular frame; 0 for non-framed messages. */
  readonly frameLength: number
}

/** Materials a keyring receives and completes on encrypt (spec: framework/structures.md#encryption-materials). */
export interface EncryptionMaterials {
  readonly suite: AlgorithmSuite
  /** The context keyrings must bind wrapped keys to: caller pairs plus `aws-crypto-public-key` for signing suites. */
  readonly encryptionContext: EncryptionContext
  /** Set by the first (generator) keyring; never logged. */
  readonly plaintextDataKey?: Uint8Array
  readonly encryptedDataKeys: readonly EncryptedDataKey[]
}

/** Materials a keyring receives and completes on decrypt. */
export interface DecryptionMaterials {
  readonly suite: AlgorithmSuite
  readonly encryptionContext: EncryptionContext
  readonly plaintextDataKey?: Uint8Array
}

/**
 * Wraps and unwraps data keys. One method each way, as in age's recipient/identity contract.
 *
 * `onDecrypt` returns the materials unchanged when none of `encryptedDataKeys` is for it ("not my key"),
 * and throws only when something is actually wrong (a matching key failed to unwrap).
 */
export interface Keyring {
  onEncrypt(materials: EncryptionMaterials, backend: CryptoBackend): Promise<EncryptionMaterials>
  onDecrypt(
    materials: DecryptionMaterials,
    encryptedDataKeys: readonly EncryptedDataKey[],
    backend: CryptoBackend,
  ): Promise<DecryptionMaterials>
}

export interface EncryptionRequest {
  readonly suite: AlgorithmSuite
  readonly encryptionContext: EncryptionContext
  readonly commitmentPolicy: CommitmentPolicy
  /** Known plaintext length when the caller has it (the caching manager uses it). */
  readonly plaintextLength?: number
}

/** Encryption materials returned by a materials manager: keyring output plus the signing key. */
export interface CompleteEncryptionMaterials extends EncryptionMaterials {
  readonly plaintextDataKey: Uint8Array
  /** ECDSA private key handle (backend specific) for signing suites. */
  readonly signingKey?: unknown
}

export interface DecryptionRequest {
  readonly suite: AlgorithmSuite
  readonly encryptionContext: EncryptionContext
  readonly encryptedDataKeys: readonly EncryptedDataKey[]
  readonly commitmentPolicy: CommitmentPolicy
  /** Pairs the caller expects in the message's context. */
  readonly reproducedEncryptionContext?: EncryptionContext
}

export interface CompleteDecryptionMaterials extends DecryptionMaterials {
  readonly plaintextDataKey: Uint8Array
  /** ECDSA public key handle (backend specific) for signing suites. */
  readonly verificationKey?: unknown
}

/** Sits between the API and the keyrings (spec: framework/cmm-interface.md). */
export interface MaterialsManager {
  getEncryptionMaterials(request: EncryptionRequest, backend: CryptoBackend): Promise<CompleteEncryptionMaterials>
  getDecryptionMaterials(request: DecryptionRequest, backend: CryptoBackend): Promise<CompleteDecryptionMaterials>
}

export interface EncryptOptions {
  /** Caller pairs bound to the message. Keys must not start with `aws-crypto-`. */
  encryptionContext?: EncryptionContext
  /** Algorithm suite ID, e.g. `0x0578` (the default under the default policy). */
  algorithmSuite?: number
  /** Plaintext bytes per frame, 1 to 2^32-1. Default 4096. */
  frameLength?: number
  /** Default `'REQUIRE_ENCRYPT_REQUIRE_DECRYPT'`. */
  commitmentPolicy?: CommitmentPolicy
  /** Refuse to write a message with more encrypted data keys than this. */
  maxEncryptedDataKeys?: number
}

export interface DecryptOptions {
  /** Default `'REQUIRE_ENCRYPT_REQUIRE_DECRYPT'`. */
  commitmentPolicy?: CommitmentPolicy
  /** Reject messages with more encrypted data keys than this, before any keyring runs. */
  maxEncryptedDataKeys?: number
  /** Pairs the caller expects: each must be present in the message's context with the same value. */
  encryptionContext?: EncryptionContext
  /** Reject messages whose body (ciphertext without header and footer) is larger than this many bytes. */
  maxBodySize?: number
}

export interface EncryptResult {
  readonly ciphertext: Uint8Array
  readonly header: MessageHeader
}

export interface DecryptResult {
  readonly plaintext: Uint8Array
  readonly header: MessageHeader
}
