/**
 * Every failure kms-envelope reports is an `EnvelopeError` with a stable `code`.
 * Match on `code` (or `instanceof`), never on message text: messages may improve between versions.
 *
 * @example
 * ```ts
 * try {
 *   await decrypt(keyring, ciphertext)
 * } catch (error) {
 *   if (error instanceof EnvelopeError && error.code === 'NO_DECRYPTABLE_KEY') { ... }
 * }
 * ```
 */
export class EnvelopeError extends Error {
  /** Stable, machine-readable identifier of the failure. */
  readonly code: string = 'ENVELOPE_ERROR'

  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options)
    // A bundler may leave a class without a name (Turbopack writes anonymous class expressions), or a minifier give it
    // one of its own (`h`), which would be the error's in logs and trackers: then the base's. Each class of ours
    // ends in Error; the Node entries and the standalone builds give theirs their names back (error-copies.ts).
    // (A test, not a method call: a class may have a static `name` that is no string.)
    const name = new.target.name
    this.name = /Error$/.test(name) ? name : 'EnvelopeError'
  }
}

/** The input is not a well-formed message: bad field, unknown version or suite, truncation, trailing bytes. */
export class MalformedMessageError extends EnvelopeError {
  override readonly code: string = 'MALFORMED_MESSAGE'
}

/** The input ends before the message does. */
export class TruncatedMessageError extends MalformedMessageError {
  override readonly code = 'TRUNCATED_MESSAGE'
  /** When known: how many input bytes the parse needed at least (a streaming reader waits for them). */
  readonly minimumLength: number | undefined

  constructor(message: string, options?: { cause?: unknown; minimumLength?: number }) {
    super(message, options)
    this.minimumLength = options?.minimumLength
  }
}

/** Bytes follow the end of a complete message. */
export class TrailingDataError extends MalformedMessageError {
  override readonly code = 'TRAILING_DATA'
}

/** The input looks like a base64 encoding of a message rather than the message bytes. */
export class Base64MessageError extends MalformedMessageError {
  override readonly code = 'BASE64_ENCODED_MESSAGE'
}

/** The message names an algorithm suite this library does not know. */
export class UnsupportedAlgorithmSuiteError extends MalformedMessageError {
  override readonly code = 'UNSUPPORTED_ALGORITHM_SUITE'
}

/** A cryptographic check failed: the message was altered, or the key is not the one it was encrypted with. */
export class AuthenticationError extends EnvelopeError {
  override readonly code: string = 'AUTHENTICATION_FAILED'
}

/** The header authentication tag does not verify. */
export class HeaderAuthenticationError extends AuthenticationError {
  override readonly code = 'HEADER_AUTHENTICATION_FAILED'
}

/** A body frame's (or the non-framed body's) authentication tag does not verify. */
export class FrameAuthenticationError extends AuthenticationError {
  override readonly code = 'FRAME_AUTHENTICATION_FAILED'
}

/** The key commitment stored in a v2 header does not match the data key. */
export class CommitmentMismatchError extends AuthenticationError {
  override readonly code = 'COMMITMENT_MISMATCH'
}

/** The footer signature does not verify, or the signing public key is invalid. */
export class SignatureVerificationError extends AuthenticationError {
  override readonly code = 'SIGNATURE_INVALID'
}

/** One keyring's reason for not decrypting an encrypted data key. */
export interface KeyringFailure {
  /** Name of the keyring (its class name) that failed. */
  readonly keyring: string
  /** Why: KMS's error, a `KeyringError`, or whatever the keyring threw. Never key material. */
  readonly error: unknown
}

/** No keyring could decrypt any of the message's encrypted data keys. `failures` carries each keyring's reason. */
export class NoDecryptableKeyError extends EnvelopeError {
  override readonly code = 'NO_DECRYPTABLE_KEY'
  readonly failures: readonly KeyringFailure[]

  constructor(message: string, failures: readonly KeyringFailure[] = []) {
    super(message, failures.length > 0 ? { cause: failures[0]?.error } : undefined)
    this.failures = failures
  }
}

/** The message's encryption context does not contain the pairs the caller required. */
export class EncryptionContextMismatchError extends EnvelopeError {
  override readonly code = 'ENCRYPTION_CONTEXT_MISMATCH'
}

/** A policy set by the caller refuses the operation. */
export class PolicyViolationError extends EnvelopeError {
  override readonly code: string = 'POLICY_VIOLATION'
}

/** The commitment policy refuses the algorithm suite. */
export class CommitmentPolicyError extends PolicyViolationError {
  override readonly code = 'COMMITMENT_POLICY_VIOLATION'
}

/** The message carries more encrypted data keys than `maxEncryptedDataKeys` allows. */
export class TooManyEncryptedDataKeysError extends PolicyViolationError {
  override readonly code = 'TOO_MANY_ENCRYPTED_DATA_KEYS'
}

/** A size limit (`maxBodySize`, frame count, field length) would be exceeded. */
export class LimitExceededError extends PolicyViolationError {
  override readonly code = 'LIMIT_EXCEEDED'
}

/** Options, keys or keyring settings are invalid. */
export class ConfigurationError extends EnvelopeError {
  override readonly code: string = 'INVALID_CONFIGURATION'
}

/** The encryption context given by the caller is invalid (reserved prefix, not strings, too large). */
export class InvalidEncryptionContextError extends ConfigurationError {
  override readonly code = 'INVALID_ENCRYPTION_CONTEXT'
}

/** A keyring failed while encrypting, or returned materials that break the keyring contract. */
export class KeyringError extends EnvelopeError {
  override readonly code = 'KEYRING_FAILURE'
}

/** The caller aborted or cancelled a stream; everything it held has been released. */
export class AbortedError extends EnvelopeError {
  override readonly code = 'ABORTED'
}

/**
 * The operation is valid but this build or platform cannot do it: for example an ECDSA-signed stream in the
 * browser build (WebCrypto cannot sign incrementally), or RSA without WebCrypto. The message says what to use instead.
 */
export class UnsupportedOperationError extends EnvelopeError {
  override readonly code = 'UNSUPPORTED_OPERATION'
}

/**
 * kms-envelope could not finish an operation for a reason of its own, not the input's: a signed stream whose
 * hashing thread stopped before it answered, say. Nothing unverified is released; the operation may be retried.
 */
export class InternalError extends EnvelopeError {
  override readonly code = 'INTERNAL_ERROR'
}
