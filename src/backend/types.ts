import type { CurveName, HashName } from '../suites.js'

export interface HkdfOutput {
  readonly info: Uint8Array
  readonly length: number
}

export type RsaPadding = 'OAEP-SHA1' | 'OAEP-SHA256' | 'OAEP-SHA384' | 'OAEP-SHA512' | 'PKCS1'

/** An AES-GCM key ready for repeated use (12-byte IV, 16-byte tag). */
export interface AeadKey {
  /** Encrypt `plaintext`, writing ciphertext then tag into `out` at `offset`. */
  seal(iv: Uint8Array, aad: Uint8Array, plaintext: Uint8Array, out: Uint8Array, offset: number): void
  /**
   * Decrypt into `out` at `offset`. Returns false when the tag does not verify; the caller must then
   * discard (zero) what was written.
   */
  open(iv: Uint8Array, aad: Uint8Array, ciphertext: Uint8Array, tag: Uint8Array, out: Uint8Array, offset: number): boolean
}

/** Incremental ECDSA signer over the message bytes. */
export interface Signer {
  update(bytes: Uint8Array): void
  /** DER-encoded signature. */
  sign(): Uint8Array
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
 * `src/backend/node.ts` implements it on node:crypto.
 */
export interface CryptoBackend {
  readonly name: string
  randomBytes(length: number): Uint8Array
  /** Uninitialized memory for output the caller overwrites completely (no zero-fill pass). */
  allocate(length: number): Uint8Array
  /** HKDF (RFC 5869): one extract, then one expand per requested output. */
  hkdf(hash: HashName, ikm: Uint8Array, salt: Uint8Array, outputs: readonly HkdfOutput[]): Uint8Array[]
  aeadKey(key: Uint8Array): AeadKey
  timingSafeEqual(a: Uint8Array, b: Uint8Array): boolean

  /** A fresh ephemeral key pair; may be made ahead of need. */
  generateSigningKey(curve: CurveName): Promise<SigningKeyPair>
  createSigner(curve: CurveName, privateKey: unknown): Signer
  /** Parse a compressed public point; throws when it is not a valid point on the curve. */
  importVerificationKey(curve: CurveName, compressedPoint: Uint8Array): Promise<unknown>
  createVerifier(curve: CurveName, publicKey: unknown): Verifier
  /**
   * Verify a whole message's DER signature in one call, off the main thread where the platform can, so the
   * caller may decrypt meanwhile. Resolves false (never rejects) for a bad or undecodable signature.
   */
  verifyMessage(curve: CurveName, publicKey: unknown, message: Uint8Array, signature: Uint8Array): Promise<boolean>

  /** Parse a PEM string or platform key object; returns an opaque handle. */
  importRsaPublicKey(key: unknown): unknown
  importRsaPrivateKey(key: unknown): unknown
  /** Derive the public half of a private key handle. */
  rsaPublicFromPrivate(privateKey: unknown): unknown
  rsaEncrypt(publicKey: unknown, padding: RsaPadding, plaintext: Uint8Array): Uint8Array
  /**
   * Decrypt a wrapped key of `expectedLength` bytes. PKCS1 uses implicit rejection: bad padding yields a
   * pseudorandom key derived from the private key and ciphertext instead of an error.
   */
  rsaDecrypt(privateKey: unknown, padding: RsaPadding, ciphertext: Uint8Array, expectedLength: number): Uint8Array
}
