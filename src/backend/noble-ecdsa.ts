// Incremental ECDSA for the browser build's streams of signing suites: WebCrypto hashes the whole message
// itself and cannot sign or verify a digest computed chunk by chunk, so the digest comes from @noble/hashes
// and the signature from @noble/curves (prehash off). Loaded only by a stream that signs or verifies, and by
// signing suites on pages without crypto.subtle, which make their keys here too.
import { p256, p384 } from '@noble/curves/nist.js'
import { sha256, sha384 } from '@noble/hashes/sha2.js'
import type { CurveName } from '../suites.js'
import { WebSigningKey, webVerificationKeyFor } from './signing-key.js'
import type { Signer, Verifier } from './types.js'

const CURVE = { 'P-256': { ecdsa: p256, hash: sha256 }, 'P-384': { ecdsa: p384, hash: sha384 } } as const

/**
 * Undefined for a key the browser build did not make for `curve` (a custom materials manager's): a stream's
 * signature needs its scalar. (The backend then throws UnsupportedOperationError: see signing-key.ts.)
 */
export function createSigner(curve: CurveName, privateKey: unknown): Signer | undefined {
  if (!(privateKey instanceof WebSigningKey) || privateKey.curve !== curve) return undefined
  const { ecdsa, hash } = CURVE[curve]
  const digest = hash.create()
  return {
    update: (bytes) => void digest.update(bytes),
    // DER, as the message format stores it. Hedged (RFC 6979 with fresh randomness), as WebCrypto's and node:crypto's
    // signatures are random: a DynamoDB item's footer retries until its DER signature is 103 bytes long, which the
    // same signature every time would never become.
    sign: () => ecdsa.sign(digest.digest(), privateKey.scalar(), { prehash: false, format: 'der', extraEntropy: true }),
  }
}

/**
 * `publicKey` is importVerificationKey's result (undefined for any other key, as for `createSigner`); high-S
 * signatures (other SDKs make them) verify too.
 */
export function createVerifier(curve: CurveName, publicKey: unknown): Verifier | undefined {
  const verificationKey = webVerificationKeyFor(curve, publicKey)
  if (verificationKey === undefined) return undefined
  const { point } = verificationKey
  const { ecdsa, hash } = CURVE[curve]
  const digest = hash.create()
  return {
    update: (bytes) => void digest.update(bytes),
    verify(signature) {
      try {
        return ecdsa.verify(signature, digest.digest(), point, { prehash: false, format: 'der', lowS: false })
      } catch {
        return false // an undecodable signature does not verify
      }
    },
  }
}

/** A new key pair's secret scalar and compressed public point, for pages without crypto.subtle. */
export function generateScalarKey(curve: CurveName): { readonly scalar: Uint8Array; readonly publicKey: Uint8Array } {
  const { ecdsa } = CURVE[curve]
  const scalar = ecdsa.utils.randomSecretKey()
  return { scalar, publicKey: ecdsa.getPublicKey(scalar, true) }
}
