import type { EncryptionSession } from '../encrypt.js'
import type { CurveName, HashName } from '../suites.js'
import type { Bytes, EncryptResult } from '../types.js'

export interface HkdfOutput {
  readonly info: Uint8Array
  readonly length: number
}

/** RSA padding of a raw RSA keyring; `PKCS1` (v1.5) works in the Node build only. */
export type RsaPadding = 'OAEP-SHA1' | 'OAEP-SHA256' | 'OAEP-SHA384' | 'OAEP-SHA512' | 'PKCS1'

/** A result that a synchronous backend (node:crypto) returns at once and WebCrypto only later. */
export type MaybePromise<T> = T | Promise<T>

/** An AES-GCM key ready for repeated use (12-byte IV, 16-byte tag), answering synchronously (node:crypto). */
export interface AeadKey {
  readonly async?: false
  /** Encrypt `plaintext`, writing ciphertext then tag into `out` at `offset`. */
  seal(iv: Uint8Array, aad: Uint8Array, plaintext: Uint8Array, out: Uint8Array, offset: number): void
  /**
   * Decrypt into `out` at `offset`. Returns false when the tag does not verify; the caller must then
   * discard (zero) what was written.
   */
  open(iv: Uint8Array, aad: Uint8Array, ciphertext: Uint8Array, tag: Uint8Array, out: Uint8Array, offset: number): boolean
  /**
   * Decrypt into a new buffer the cipher itself returns, when that saves a copy (node:crypto's update always
   * allocates). Undefined when the tag does not verify; the plaintext has then been zeroed.
   */
  openDetached?(iv: Uint8Array, aad: Uint8Array, ciphertext: Uint8Array, tag: Uint8Array): Bytes | undefined
  /** Zero the key bytes this object holds, when it holds any; it must not be used afterwards. */
  dispose?(): void
}

/**
 * The same AES-GCM key for a platform whose cipher answers later (WebCrypto). The frame engine lays out
 * frames identically and only awaits the cipher call. Callers leave `iv`, `aad` and the input unchanged,
 * and do not read the output range, until the promise settles; several calls may be in flight at once.
 */
export interface AsyncAeadKey {
  readonly async: true
  seal(iv: Uint8Array, aad: Uint8Array, plaintext: Uint8Array, out: Uint8Array, offset: number): Promise<void>
  /** Resolves false when the tag does not verify; the caller then zeroes the output range. */
  open(iv: Uint8Array, aad: Uint8Array, ciphertext: Uint8Array, tag: Uint8Array, out: Uint8Array, offset: number): Promise<boolean>
  /** As `AeadKey.dispose`; calls still in flight may fail or produce garbage, which callers then discard. */
  dispose?(): void
}

export function isAsyncAead(aead: AeadKey | AsyncAeadKey): aead is AsyncAeadKey {
  return aead.async === true
}

/** Await a value only when it is a promise: the synchronous backend's path then takes no microtask turn. */
export function isPromise<T>(value: MaybePromise<T>): value is Promise<T> {
  return typeof (value as Promise<T> | null)?.then === 'function'
}

/**
 * Incremental ECDSA signer over the message bytes, for streams. A backend that cannot hash and sign
 * incrementally (WebCrypto) throws `UnsupportedOperationError` from `createSigner`; one-shot encryption
 * uses `signMessage` instead.
 */
export interface Signer {
  update(bytes: Uint8Array): void
  /** DER-encoded signature. */
  sign(): Uint8Array
}

/**
 * A signature made on another thread while the message is written (Node's one-shot encrypt of large signed
 * messages, backend/signing-thread.ts). Any failure means "sign inline": `publish` returns false, or `finish`
 * resolves undefined.
 */
export interface OffThreadSignature {
  /** Hand the thread `message[from, to)`, the next bytes of the signed part. False: it stalled, sign inline. */
  publish(message: Uint8Array, from: number, to: number): boolean
  /** The DER signature, or undefined when the caller must sign inline. */
  finish(): Promise<Uint8Array | undefined>
  /** Give the job up (the caller failed or signs inline); the thread drops it. */
  abandon(): void
}

/**
 * An encrypted stream's signed bytes hashed on another thread while the stream goes on (Node,
 * backend/signing-thread.ts), then signed there. Unlike `OffThreadSignature`, there is no falling back once
 * begun: a stream's earlier bytes are gone. `sign` resolves undefined when the thread stopped before answering.
 */
export interface StreamDigest {
  /**
   * The next bytes, copied before this returns. A promise means the thread has fallen behind: settle it before
   * the next update, which bounds the copies held for the thread.
   */
  update(bytes: Uint8Array): Promise<void> | undefined
  /**
   * The DER signature over the bytes given, with the private key. Ends the job. Rejects with `KeyringError` for a
   * key the thread cannot sign with.
   */
  sign(privateKey: unknown): Promise<Uint8Array | undefined>
  /** Give the job up (the stream failed or was cancelled); the thread drops it. */
  abandon(): void
}

export interface Verifier {
  update(bytes: Uint8Array): void
  verify(signature: Uint8Array): boolean
}

export interface SigningKeyPair {
  /** Opaque private key handle. */
  readonly privateKey: unknown
  /** SEC1 compressed public point. */
  readonly publicKey: Uint8Array
}

/**
 * The primitives the library needs, so that the format code never imports a platform module.
 * `src/backend/node.ts` implements it on node:crypto, `src/backend/webcrypto.ts` on WebCrypto. Methods typed
 * `MaybePromise` answer synchronously on node:crypto; callers await them only when they are promises.
 */
export interface CryptoBackend {
  /** Which backend it is, for messages and tests: `node` (node:crypto) or `webcrypto`. */
  readonly name: string
  /** Bytes from the platform's cryptographically secure generator. */
  randomBytes(length: number): Bytes
  /** Uninitialized memory for output the caller overwrites completely (no zero-fill pass). */
  allocate(length: number): Bytes
  /** HKDF (RFC 5869): one extract, then one expand per requested output. */
  hkdf(hash: HashName, ikm: Uint8Array, salt: Uint8Array, outputs: readonly HkdfOutput[]): MaybePromise<Uint8Array[]>
  /**
   * Copies (or imports) `key`, so the caller may zero it as soon as this returns. A backend returns either
   * synchronous keys (node:crypto) or asynchronous ones (WebCrypto); the engine branches once per message.
   */
  aeadKey(key: Uint8Array): AeadKey | AsyncAeadKey
  /**
   * `aeadKey` for a key the caller hands over (a freshly derived one): the key keeps `key` itself rather than
   * a copy, and `dispose()` zeroes it; the caller must neither use nor zero it afterwards. Optional: a backend
   * without it is given a copy through `aeadKey`.
   */
  adoptAeadKey?(key: Uint8Array): AeadKey | AsyncAeadKey
  /**
   * The one-shot encrypt body loop for this backend's synchronous keys (sync-body.ts), with no promise per
   * frame. A backend brings it so that a browser bundle, whose keys are asynchronous, does not carry it;
   * without it, one-shot encrypt uses the asynchronous loop.
   */
  sealBody?(session: EncryptionSession, input: Uint8Array): EncryptResult | Promise<EncryptResult>
  /** The hash of `data` in one call. */
  digest(hash: HashName, data: Uint8Array): MaybePromise<Uint8Array>
  /** Whether two byte arrays are equal, in time that does not depend on where they differ (tags, commitments). */
  timingSafeEqual(a: Uint8Array, b: Uint8Array): boolean

  /**
   * Whether `createSigner` / `createVerifier` work: streams of signing suites need them. Without them,
   * signed messages are one-shot only (`signMessage`, `verifyMessage`), and streams refuse signing suites
   * before any keyring runs.
   */
  readonly incrementalSignatures: boolean
  /**
   * For a backend whose incremental signatures live in a module loaded on demand (the browser build): loads it
   * and resolves true, after which `createSigner` / `createVerifier` work. Streams of signing suites call it.
   */
  loadIncrementalSignatures?(): Promise<boolean>
  /**
   * Throws `KeyringError` unless `key` is one this backend can sign (`'sign'`) or verify (`'verify'`) the curve's
   * message signatures with. The check of a materials manager's materials calls it (cmm/materials-check.ts), so
   * that a custom manager's wrong key is reported as such before any frame, not as a platform error, a message no
   * one can verify, or a bad signature. Absent in the browser build, whose signing and verifying calls check their
   * keys themselves.
   */
  checkSignatureKey?(curve: CurveName, key: unknown, use: 'sign' | 'verify'): void
  /** A fresh ephemeral key pair; may be made ahead of need. */
  generateSigningKey(curve: CurveName): Promise<SigningKeyPair>
  /** An incremental ECDSA signer (DER signatures) for a private key of `generateSigningKey`. */
  createSigner(curve: CurveName, privateKey: unknown): Signer
  /** Sign a whole message in one call (DER signature): what one-shot encryption uses on an asynchronous backend. */
  signMessage(curve: CurveName, privateKey: unknown, message: Uint8Array): Promise<Uint8Array>
  /** Parse a compressed public point; throws when it is not a valid point on the curve. */
  importVerificationKey(curve: CurveName, compressedPoint: Uint8Array): Promise<unknown>
  /** An incremental ECDSA verifier for a key of `importVerificationKey`. */
  createVerifier(curve: CurveName, publicKey: unknown): Verifier
  /**
   * For encrypted streams of signing suites: hash the signed bytes on another thread, so that this one only
   * encrypts, and sign there. Undefined (or absent) when no such thread is running: the stream uses `createSigner`.
   */
  streamDigest?(curve: CurveName): StreamDigest | undefined
  /**
   * Told how many bytes an encrypted signed stream carried that had no `streamDigest` (or declares it will carry): a backend
   * may start the thread `streamDigest` needs once streams prove large, so a process that never streams much
   * never starts it.
   */
  signedStreamSeen?(length: number): void
  /**
   * Verify a whole message's DER signature in one call, off the main thread where the platform can, so the
   * caller may decrypt meanwhile. Resolves false for a bad or undecodable signature. Rejects with a `KeyringError`
   * for a key it cannot verify with (where the backend has no `checkSignatureKey`), or with the platform's error
   * when it cannot run at all (the browser build's on-demand code did not load).
   */
  verifyMessage(curve: CurveName, publicKey: unknown, message: Uint8Array, signature: Uint8Array): Promise<boolean>

  /**
   * Parse a PEM string, DER bytes (SPKI public, PKCS#8 private) or a platform key object; returns an opaque
   * handle. Throws `ConfigurationError` for input that is not an RSA key of the asked kind.
   */
  importRsaPublicKey(key: unknown): unknown
  /** As `importRsaPublicKey`, for a private key (PEM, DER PKCS#8 or a platform key object). */
  importRsaPrivateKey(key: unknown): unknown
  /** Derive the public half of a private key handle. */
  rsaPublicFromPrivate(privateKey: unknown): unknown
  /**
   * Whether two handles are the halves of one key pair, where the backend can tell without a private-key operation
   * (undefined where it cannot, for these handles: the caller then wraps and unwraps a value).
   */
  rsaKeysArePair?(publicKey: unknown, privateKey: unknown): boolean | undefined
  /** Wrap `plaintext` (a data key) with RSA under a public key handle, with the given padding. */
  rsaEncrypt(publicKey: unknown, padding: RsaPadding, plaintext: Uint8Array): MaybePromise<Uint8Array>
  /**
   * Decrypt a wrapped key of `expectedLength` bytes. PKCS1 uses implicit rejection: bad padding yields a
   * pseudorandom key derived from the private key and ciphertext instead of an error.
   */
  rsaDecrypt(privateKey: unknown, padding: RsaPadding, ciphertext: Uint8Array, expectedLength: number): MaybePromise<Uint8Array>
}
