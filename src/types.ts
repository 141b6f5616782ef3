import type { CryptoBackend } from './backend/types.js'
import type { AlgorithmSuite } from './suites.js'

/** Which algorithm suites may be used to encrypt and to decrypt (spec: framework/commitment-policy.md). */
export type CommitmentPolicy =
  | 'REQUIRE_ENCRYPT_REQUIRE_DECRYPT'
  | 'REQUIRE_ENCRYPT_ALLOW_DECRYPT'
  | 'FORBID_ENCRYPT_ALLOW_DECRYPT'

/** String pairs bound to a message as authenticated data. Stored in the clear in the header. */
export type EncryptionContext = Record<string, string>

/**
 * Bytes kms-envelope made and returns: a `Uint8Array` on an `ArrayBuffer` (never a `SharedArrayBuffer`). Under
 * TypeScript 5.7 and later this is `Uint8Array<ArrayBuffer>`, which DOM APIs (`Blob`, `fetch`, `crypto.subtle`)
 * take as it is; under earlier versions, `Uint8Array`.
 */
export type Bytes = ReturnType<Uint8Array['slice']>

/** A data key wrapped by one keyring (spec: data-format/message-header.md#encrypted-data-keys). */
export interface EncryptedDataKey {
  /** Key provider ID, e.g. the raw keyring's key namespace or `aws-kms`. */
  readonly providerId: string
  /** Key provider information: raw bytes (the raw AES keyring stores an IV in it). */
  readonly providerInfo: Uint8Array
  /** The wrapped data key. */
  readonly ciphertext: Uint8Array
}

/**
 * Everything in a message header that a caller may want to inspect. On decrypt, its byte fields (`messageId`,
 * each key's `providerInfo` and `ciphertext`) are the library's own copies: reusing the message's buffer leaves
 * them as they were. A small header's copies share memory with other messages' headers (and with nothing else),
 * so a field's `.buffer` holds more than the field: pass on the field, or `field.slice()`, not its `.buffer`
 * (a structured clone, as `postMessage` makes, copies the whole buffer: clone `field.slice()`).
 */
export interface MessageHeader {
  readonly version: 1 | 2
  readonly algorithmSuiteId: number
  readonly messageId: Bytes
  /**
   * The context stored in the message, including `aws-crypto-public-key` for signing suites. Pairs that
   * were only authenticated (required encryption context keys) are not in it.
   */
  readonly encryptionContext: EncryptionContext
  readonly encryptedDataKeys: readonly EncryptedDataKey[]
  readonly contentType: 'framed' | 'non-framed'
  /** Plaintext bytes per regular frame; 0 for non-framed messages. */
  readonly frameLength: number
}

/**
 * Materials a keyring receives and completes on encrypt (spec: framework/structures.md#encryption-materials).
 * Keyrings and managers return new materials instead of changing these. The library builds them with
 * `Object.assign({}, materials, changes)`: on Node 20, a spread that adds a property
 * (`{ ...materials, plaintextDataKey }`) takes a slow path in V8 that costs about 0.7 µs per message.
 */
export interface EncryptionMaterials {
  readonly suite: AlgorithmSuite
  /**
   * The context keyrings must bind wrapped keys to: caller pairs plus `aws-crypto-public-key` for signing
   * suites. Includes the pairs named in `requiredEncryptionContextKeys`, which the message does not store.
   */
  readonly encryptionContext: EncryptionContext
  /** Set by the first (generator) keyring; never logged. */
  readonly plaintextDataKey?: Uint8Array
  readonly encryptedDataKeys: readonly EncryptedDataKey[]
  /**
   * Keys of `encryptionContext` that are authenticated (header tag, keyrings) but not stored in the message:
   * decrypt must be given their values again. spec: framework/structures.md#required-encryption-context-keys
   */
  readonly requiredEncryptionContextKeys?: readonly string[]
  /**
   * For suites with a symmetric signature (the DynamoDB item suites): one HMAC key per encrypted data key, in
   * the same order, each derived from that key's intermediate key. Never logged; the caller zeroes them.
   * spec: framework/structures.md#symmetric-signing-keys
   */
  readonly symmetricSigningKeys?: readonly Uint8Array[]
}

/** Materials a keyring receives and completes on decrypt. */
export interface DecryptionMaterials {
  readonly suite: AlgorithmSuite
  /** The stored context plus the caller's pairs the message does not store (spec: framework/cmm-interface.md#decrypt-materials). */
  readonly encryptionContext: EncryptionContext
  readonly plaintextDataKey?: Uint8Array
  /** Keys of `encryptionContext` the message does not store: the header tag authenticates them (client-apis/decrypt.md). */
  readonly requiredEncryptionContextKeys?: readonly string[]
  /**
   * For suites with a symmetric signature: the HMAC key derived from the encrypted data key that was unwrapped.
   * Never logged; the caller zeroes it.
   */
  readonly symmetricSigningKey?: Uint8Array
}

/**
 * Wraps and unwraps data keys. One method each way, as in age's recipient/identity contract.
 *
 * `onDecrypt` returns the materials unchanged when none of `encryptedDataKeys` is for it ("not my key"),
 * and throws only when something is actually wrong (a matching key failed to unwrap).
 *
 * `signal` is the caller's abort signal, when it gave one (the request's `signal`): a keyring that calls out
 * (KMS) passes it on, and one that holds others (MultiKeyring) hands it to each.
 */
export interface Keyring {
  onEncrypt(materials: EncryptionMaterials, backend: CryptoBackend, signal?: AbortSignal): Promise<EncryptionMaterials>
  onDecrypt(
    materials: DecryptionMaterials,
    encryptedDataKeys: readonly EncryptedDataKey[],
    backend: CryptoBackend,
    signal?: AbortSignal,
  ): Promise<DecryptionMaterials>
}

/** What a materials manager is asked for on encrypt. `encrypt` builds it; a manager of your own passes it on (or a copy with fields changed). */
export interface EncryptionRequest {
  readonly suite: AlgorithmSuite
  readonly encryptionContext: EncryptionContext
  readonly commitmentPolicy: CommitmentPolicy
  /** Known plaintext length when the caller has it (the caching manager uses it). */
  readonly plaintextLength?: number | undefined
  /**
   * When the length is not known: the most plaintext the caller will encrypt with these materials
   * (encrypt enforces it). spec: framework/cmm-interface.md#encryption-materials-request
   */
  readonly maxPlaintextLength?: number | undefined
  /** Context keys that must be authenticated but not stored; set by materials managers that wrap others. */
  readonly requiredEncryptionContextKeys?: readonly string[]
  /**
   * The caller's abort signal (encrypt's or decrypt's \`signal\` option), for keyrings to pass on: the KMS keyrings
   * cancel their requests when it aborts. A manager of your own passes it on with the request.
   */
  readonly signal?: AbortSignal | undefined
}

/**
 * Encryption materials returned by a materials manager: keyring output plus the signing key.
 * The caller owns what it receives and zeroes `plaintextDataKey` when done: a manager that keeps materials
 * (the caching manager) hands out a copy of the data key.
 */
export interface CompleteEncryptionMaterials extends EncryptionMaterials {
  readonly plaintextDataKey: Uint8Array
  /** ECDSA private key handle (backend specific) for signing suites. */
  readonly signingKey?: unknown
}

/** What a materials manager is asked for on decrypt, built by `decrypt` from the message header. */
export interface DecryptionRequest {
  readonly suite: AlgorithmSuite
  readonly encryptionContext: EncryptionContext
  readonly encryptedDataKeys: readonly EncryptedDataKey[]
  readonly commitmentPolicy: CommitmentPolicy
  /** Pairs the caller expects in the message's context. */
  readonly reproducedEncryptionContext?: EncryptionContext
  /**
   * The caller's abort signal (encrypt's or decrypt's \`signal\` option), for keyrings to pass on: the KMS keyrings
   * cancel their requests when it aborts. A manager of your own passes it on with the request.
   */
  readonly signal?: AbortSignal | undefined
}

/** Decryption materials returned by a materials manager; as on encrypt, the caller owns and zeroes `plaintextDataKey`. */
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

/** Options of `encrypt`; every one may be left out or given as `undefined`. */
export interface EncryptOptions {
  /** Caller pairs bound to the message. Keys must not start with `aws-crypto-`. */
  encryptionContext?: EncryptionContext | undefined
  /** Algorithm suite ID, e.g. `0x0578` (the default under the default policy). */
  algorithmSuite?: number | undefined
  /** Plaintext bytes per frame, 1 to 2^32-1. Default 4096. */
  frameLength?: number | undefined
  /** Default `'REQUIRE_ENCRYPT_REQUIRE_DECRYPT'`. */
  commitmentPolicy?: CommitmentPolicy | undefined
  /** Refuse to write a message with more encrypted data keys than this. */
  maxEncryptedDataKeys?: number | undefined
  /**
   * Abort the call: it rejects at once with \`ABORTED\` (\`AbortedError\`, the signal's reason as its cause), and the
   * signal goes on to the materials manager and the keyrings, whose KMS requests are cancelled. Decrypt returns
   * no plaintext after an abort.
   */
  signal?: AbortSignal | undefined
}

/** Options of `decrypt`; every one may be left out or given as `undefined`. */
export interface DecryptOptions {
  /** Default `'REQUIRE_ENCRYPT_REQUIRE_DECRYPT'`. */
  commitmentPolicy?: CommitmentPolicy | undefined
  /** Reject messages with more encrypted data keys than this, before any keyring runs. */
  maxEncryptedDataKeys?: number | undefined
  /**
   * Pairs the caller expects (the reproduced encryption context). A pair the message stores must have the
   * same value (else `ENCRYPTION_CONTEXT_MISMATCH`, before any keyring runs); a pair it does not store is
   * passed to the keyrings and authenticated by the header tag, so a wrong value fails the decrypt.
   * Messages written through a `RequiredEncryptionContextMaterialsManager` need their unstored pairs here.
   */
  encryptionContext?: EncryptionContext | undefined
  /** Reject messages whose body (ciphertext without header and footer) is larger than this many bytes. */
  maxBodySize?: number | undefined
  /**
   * Abort the call: it rejects at once with \`ABORTED\` (\`AbortedError\`, the signal's reason as its cause), and the
   * signal goes on to the materials manager and the keyrings, whose KMS requests are cancelled. Decrypt returns
   * no plaintext after an abort.
   */
  signal?: AbortSignal | undefined
}

/** What `encrypt` resolves to. */
export interface EncryptResult {
  readonly ciphertext: Bytes
  readonly header: MessageHeader
}

/** What `decrypt` resolves to: the plaintext, returned only once everything verified, and the header. */
export interface DecryptResult {
  readonly plaintext: Bytes
  /** `header.encryptionContext` is the context stored in the message. */
  readonly header: MessageHeader
  /**
   * Every authenticated pair: the stored context plus the pairs the message does not store that were
   * authenticated from the caller's `encryptionContext` (spec: client-apis/decrypt.md#encryption-context).
   */
  readonly encryptionContext: EncryptionContext
}
