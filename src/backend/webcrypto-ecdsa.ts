// ECDSA on WebCrypto for signing suites, loaded on first use: an application that only uses unsigned suites
// (0x0478 with KmsRsaKeyring) never downloads it. WebCrypto signs and verifies whole messages only.
import { KeyringError } from '../errors.js'
import type { CurveName } from '../suites.js'
import { compressPoint, CURVES, decompressPoint, derToP1363, p1363ToDer } from './ec.js'
import { WebSigningKey, WebVerificationKey, webVerificationKeyFor } from './signing-key.js'
import type { SigningKeyPair } from './types.js'
import { recentKeys } from './recent-keys.js'
import { isCryptoKey, requireSubtle, source } from './webcrypto-rsa.js'

const SIGNATURE_HASH: Record<CurveName, string> = { 'P-256': 'SHA-256', 'P-384': 'SHA-384' }

/** The private key is a WebSigningKey: WebCrypto signs whole messages, the scalar serves streams. */
export async function generateSigningKey(curve: CurveName): Promise<SigningKeyPair> {
  const subtle = requireSubtle('ECDSA signing')
  const pair = (await subtle.generateKey({ name: 'ECDSA', namedCurve: curve }, true, ['sign', 'verify'])) as CryptoKeyPair
  const uncompressed = new Uint8Array(await subtle.exportKey('raw', pair.publicKey))
  const { d } = await subtle.exportKey('jwk', pair.privateKey)
  const scalar = Uint8Array.from(atob((d as string).replace(/-/g, '+').replace(/_/g, '/')), (char) => char.charCodeAt(0))
  return { privateKey: new WebSigningKey(curve, pair.privateKey, scalar), publicKey: compressPoint(uncompressed) }
}

/** DER signature of the whole message. */
export async function signMessage(curve: CurveName, privateKey: unknown, message: Uint8Array): Promise<Uint8Array> {
  const subtle = requireSubtle('ECDSA signing')
  const key = privateKey instanceof WebSigningKey ? privateKey.key : privateKey
  let signature: ArrayBuffer | undefined
  let cause: unknown
  // A custom materials manager's key may be anything; the default one makes keys this build can sign with. A key
  // on another curve would sign, and make a message no one can verify.
  if (isCryptoKey(key) && (key.algorithm as EcKeyAlgorithm).namedCurve === curve) {
    try {
      signature = await subtle.sign({ name: 'ECDSA', hash: SIGNATURE_HASH[curve] }, key, source(message))
    } catch (error) {
      cause = error
    }
  }
  if (signature === undefined) {
    throw new KeyringError(
      `The materials manager's signing key cannot sign this message: WebCrypto needs an ECDSA private CryptoKey on ${curve}, the suite's curve.`,
      cause === undefined ? undefined : { cause },
    )
  }
  return p1363ToDer(new Uint8Array(signature))
}

/** Decompresses and checks the point; `recentKeys` spares repeating it for the same signer. */
export const importVerificationKey = recentKeys(importPoint)

async function importPoint(curve: CurveName, compressedPoint: Uint8Array): Promise<WebVerificationKey> {
  const point = decompressPoint(curve, compressedPoint)
  const key = await requireSubtle('ECDSA verification').importKey('raw', source(point), { name: 'ECDSA', namedCurve: curve }, false, ['verify'])
  return new WebVerificationKey(curve, key, point)
}

/** Resolves false for a bad or undecodable DER signature; rejects with KeyringError for a key not from importVerificationKey. */
export async function verifyMessage(curve: CurveName, publicKey: unknown, message: Uint8Array, signature: Uint8Array): Promise<boolean> {
  const verificationKey = webVerificationKeyFor(curve, publicKey)
  if (verificationKey === undefined) {
    // A custom materials manager's own key object, say: it would otherwise read as a bad signature.
    throw new KeyringError(
      `The materials manager's verification key cannot verify this message: the browser build needs a key from its backend's ` +
        `importVerificationKey for ${curve}, the suite's curve.`,
    )
  }
  const { key } = verificationKey
  const raw = derToP1363(signature, CURVES[curve].size)
  if (raw === undefined) return false
  const subtle = requireSubtle('ECDSA verification')
  try {
    return await subtle.verify({ name: 'ECDSA', hash: SIGNATURE_HASH[curve] }, key, source(raw), source(message))
  } catch {
    return false // a signature that cannot be checked does not verify
  }
}
