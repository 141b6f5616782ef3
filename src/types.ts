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
  /** Message format version: 2 for the committing suites (0x0478, 0x0578), 1 for the others. */
  readonly version: 1 | 2
  /** The algorithm suite's ID, e.g. `0x0578` (see `ALGORITHM_SUITE_IDS`). */
  readonly algorithmSuiteId: number
  /** Random per message: 32 bytes in version 2, 16 in version 1. */
  readonly messageId: Bytes
  /**
   * The context stored in the message, including `aws-crypto-public-key` for signing suites. Pairs that
   * were only authenticated (required encryption context keys) are not in it.
   */
  readonly encryptionContext: EncryptionContext
  /** The data key as each keyring wrapped it, in the order written. */
  readonly encryptedDataKeys: readonly EncryptedDataKey[]
  /** kms-envelope writes framed messages; non-framed ones (one body, legacy) are read. */
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
  /** The algorithm suite of the message being written: the data key is `suite.keyLength` bytes. */
  readonly suite: AlgorithmSuite
  /**
   * The context keyrings must bind wrapped keys to: caller pairs plus `aws-crypto-public-key` for signing
   * suites. Includes the pairs named in `requiredEncryptionContextKeys`, which the message does not store.
   */
  readonly encryptionContext: EncryptionContext
  /** Set by the first (generator) keyring; never logged. */
  readonly plaintextDataKey?: Uint8Array
  /** The data key wrapped by each keyring so far; a keyring returns materials with its own added. */
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
  /** The algorithm suite of the message being read. */
  readonly suite: AlgorithmSuite
  /** The stored context plus the caller's pairs the message does not store (spec: framework/cmm-interface.md#decrypt-materials). */
  readonly encryptionContext: EncryptionContext
  /** Set by the keyring that unwrapped one of the message's data keys; a keyring leaves materials that have one as they are. Never logged. */
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
  /**
   * Returns `materials` with a data key wrapped by this keyring added to `encryptedDataKeys`; a generator keyring
   * first sets `plaintextDataKey` when the materials have none (a keyring that cannot generate throws then).
   */
  onEncrypt(materials: EncryptionMaterials, backend: CryptoBackend, signal?: AbortSignal): Promise<EncryptionMaterials>
  /**
   * Returns `materials` with `plaintextDataKey` set from the first of `encryptedDataKeys` this keyring unwraps, or
   * unchanged when none is its own or the materials already have a data key.
   */
  onDecrypt(
    materials: DecryptionMaterials,
    encryptedDataKeys: readonly EncryptedDataKey[],
    backend: CryptoBackend,
    signal?: AbortSignal,
  ): Promise<DecryptionMaterials>
}

/** What a materials manager is asked for on encrypt. `encrypt` builds it; a manager of your own passes it on (or a copy with fields changed). */
export interface EncryptionRequest {
  /** The suite to encrypt with: the caller's `algorithmSuite`, or the default. */
  readonly suite: AlgorithmSuite
  /** The caller's pairs (without `aws-crypto-public-key`, which the default manager adds for signing suites). */
  readonly encryptionContext: EncryptionContext
  /** The caller's policy: the materials' suite must be one it allows to encrypt. */
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
  /** The message's data key, `suite.keyLength` bytes; zeroed by the caller once the message is written. */
  readonly plaintextDataKey: Uint8Array
  /** ECDSA private key handle (backend specific) for signing suites. */
  readonly signingKey?: unknown
}

/** What a materials manager is asked for on decrypt, built by `decrypt` from the message header. */
export interface DecryptionRequest {
  /** The message's suite. */
  readonly suite: AlgorithmSuite
  /** The context the message stores. */
  readonly encryptionContext: EncryptionContext
  /** The message's wrapped data keys, for the keyrings to try. */
  readonly encryptedDataKeys: readonly EncryptedDataKey[]
  /** The caller's policy: the message's suite must be one it allows to decrypt. */
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
  /** The message's data key; zeroed by the caller once the message is read. */
  readonly plaintextDataKey: Uint8Array
  /** ECDSA public key handle (backend specific) for signing suites. */
  readonly verificationKey?: unknown
}

/** Sits between the API and the keyrings (spec: framework/cmm-interface.md). */
export interface MaterialsManager {
  /** The data key, its wrapped copies, the context to store and (signing suites) the signing key for one message. */
  getEncryptionMaterials(request: EncryptionRequest, backend: CryptoBackend): Promise<CompleteEncryptionMaterials>
  /** The data key of one message, unwrapped by a keyring, and (signing suites) the key that verifies its signature. */
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
  /** The whole message: header, frames and (signing suites) the footer signature. */
  readonly ciphertext: Bytes
  /** The header written, its context including `aws-crypto-public-key` for signing suites. */
  readonly header: MessageHeader
}

/** What `decrypt` resolves to: the plaintext, returned only once everything verified, and the header. */
export interface DecryptResult {
  /** The message's plaintext, returned only after every tag and the signature verified. */
  readonly plaintext: Bytes
  /** `header.encryptionContext` is the context stored in the message. */
  readonly header: MessageHeader
  /**
   * Every authenticated pair: the stored context plus the pairs the message does not store that were
   * authenticated from the caller's `encryptionContext` (spec: client-apis/decrypt.md#encryption-context).
   */
  readonly encryptionContext: EncryptionContext
}
