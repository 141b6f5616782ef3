// The ECDSA keys node:crypto signs and verifies message signatures with, and the errors for keys it cannot use.
// The default materials manager makes and imports only usable keys; a custom one may return anything.
import { KeyObject } from 'node:crypto'
import { KeyringError } from '../errors.js'
import type { CurveName } from '../suites.js'

/** The digest each curve's message signatures use (the suite table pairs them the same way). */
export const SIGNATURE_HASH: Record<CurveName, string> = { 'P-256': 'sha256', 'P-384': 'sha384' }

/** OpenSSL's names for the curves, as `KeyObject.asymmetricKeyDetails` gives them. */
const OPENSSL_CURVE: Record<CurveName, string> = { 'P-256': 'prime256v1', 'P-384': 'secp384r1' }

/**
 * A signing key node:crypto cannot sign with. The same error whether the message was signed here or on the
 * signing thread.
 */
export function unusableSigningKey(cause?: unknown): KeyringError {
  return new KeyringError(
    "The materials manager's signing key cannot sign this message: node:crypto needs an EC private KeyObject on the suite's curve.",
    cause === undefined ? undefined : { cause },
  )
}

/**
 * `CryptoBackend.checkSignatureKey` on node:crypto: an EC KeyObject on the suite's curve, private to sign;
 * public or private to verify (node:crypto verifies with either). About 15 ns: KeyObject caches its details.
 */
export function checkSignatureKey(curve: CurveName, key: unknown, use: 'sign' | 'verify'): void {
  const usable =
    key instanceof KeyObject &&
    (use === 'verify' || key.type === 'private') &&
    key.asymmetricKeyType === 'ec' &&
    key.asymmetricKeyDetails?.namedCurve === OPENSSL_CURVE[curve]
  if (usable) return
  if (use === 'sign') throw unusableSigningKey()
  throw new KeyringError(
    `The materials manager's verification key cannot verify this message: node:crypto needs an EC KeyObject on ${curve}, the suite's curve.`,
  )
}
