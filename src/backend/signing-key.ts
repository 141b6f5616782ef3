// The browser build's ECDSA signing key: a WebCrypto key for whole-message signatures plus its secret scalar
// for streams, whose incremental signatures go through @noble/curves. The scalar never shows when the key
// is logged, inspected or serialized.
export class WebSigningKey {
  readonly key: CryptoKey
  readonly #scalar: Uint8Array

  constructor(key: CryptoKey, scalar: Uint8Array) {
    this.key = key
    this.#scalar = scalar
  }

  /** The secret scalar, big-endian. For the incremental signer only. */
  scalar(): Uint8Array {
    return this.#scalar
  }

  toJSON(): object {
    return { type: 'WebSigningKey' }
  }

  [Symbol.for('nodejs.util.inspect.custom')](): string {
    return 'WebSigningKey'
  }
}
