// The browser build's ECDSA keys. The signing key is a WebCrypto key for whole-message signatures plus its secret
// scalar for streams, whose incremental signatures go through @noble/curves; the scalar never shows when the key
// is logged, inspected or serialized. The verification key is a WebCrypto key plus the uncompressed point the
// streams' verifier needs. Both know their curve, so a materials manager's key for another curve is refused.
// Without crypto.subtle there is no WebCrypto key, and @noble/curves signs and verifies whole messages too.
// (No import of the errors module here: the stream chunk that shares this module would split it off the initial
// bundle's chunk, at a cost of some 110 bytes gzipped.)
import type { CurveName } from '../suites.js'

export class WebSigningKey {
  readonly curve: CurveName
  readonly key: CryptoKey | undefined
  readonly #scalar: Uint8Array

  constructor(curve: CurveName, key: CryptoKey | undefined, scalar: Uint8Array) {
    this.curve = curve
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

/** `key` if it is the browser build's verification key for `curve`, else undefined (a custom materials manager's). */
export function webVerificationKeyFor(curve: CurveName, key: unknown): WebVerificationKey | undefined {
  return key instanceof WebVerificationKey && key.curve === curve ? key : undefined
}

/** What the browser build's `importVerificationKey` returns. */
export class WebVerificationKey {
  readonly curve: CurveName
  readonly key: CryptoKey | undefined
  readonly point: Uint8Array

  constructor(curve: CurveName, key: CryptoKey | undefined, point: Uint8Array) {
    this.curve = curve
    this.key = key
    this.point = point
  }
}
