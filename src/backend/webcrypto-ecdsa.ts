// ECDSA on WebCrypto for signing suites, loaded on first use: an application that only uses unsigned suites
// (0x0478 with KmsRsaKeyring) never downloads it. WebCrypto signs and verifies whole messages only. Without
// crypto.subtle (a page served over plain HTTP from another host, a JavaScript engine without WebCrypto),
// @noble/curves makes the keys and signs and verifies, as it does for streams.
import { KeyringError } from '../errors.js'
import { loadOnce } from '../load-on-demand.js'
import type { CurveName } from '../suites.js'
import { compressPoint, CURVES, decompressPoint, derToP1363, p1363ToDer } from './ec.js'
import { WebSigningKey, WebVerificationKey, webVerificationKeyFor } from './signing-key.js'
import type { SigningKeyPair, Verifier } from './types.js'
import { recentKeys } from './recent-keys.js'
import { isCryptoKey, source, subtleCrypto } from './webcrypto-rsa.js'

const SIGNATURE_HASH: Record<CurveName, string> = { 'P-256': 'SHA-256', 'P-384': 'SHA-384' }

const loadNobleEcdsa = /* @__PURE__ */ loadOnce(() => import('./noble-ecdsa.js'))

/** The private key is a WebSigningKey: WebCrypto signs whole messages, the scalar serves streams. */
export async function generateSigningKey(curve: CurveName): Promise<SigningKeyPair> {
  const subtle = subtleCrypto()
  if (subtle === undefined) {
    const { scalar, publicKey } = (await loadNobleEcdsa()).generateScalarKey(curve)
    return { privateKey: new WebSigningKey(curve, undefined, scalar), publicKey }
  }
  const pair = (await subtle.generateKey({ name: 'ECDSA', namedCurve: curve }, true, ['sign', 'verify'])) as CryptoKeyPair
  const uncompressed = new Uint8Array(await subtle.exportKey('raw', pair.publicKey))
  const { d } = await subtle.exportKey('jwk', pair.privateKey)
  const scalar = Uint8Array.from(atob((d as string).replace(/-/g, '+').replace(/_/g, '/')), (char) => char.charCodeAt(0))
  return { privateKey: new WebSigningKey(curve, pair.privateKey, scalar), publicKey: compressPoint(uncompressed) }
}

/** DER signature of the whole message. */
export async function signMessage(curve: CurveName, privateKey: unknown, message: Uint8Array): Promise<Uint8Array> {
  const subtle = subtleCrypto()
  if (subtle === undefined) {
    const signer = (await loadNobleEcdsa()).createSigner(curve, privateKey)
    if (signer === undefined) {
      throw new KeyringError(`The materials manager's signing key cannot sign this message: without WebCrypto, it must be a key this build made for ${curve}, the suite's curve.`)
    }
    signer.update(message)
    return signer.sign()
  }
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
  const subtle = subtleCrypto()
  const key = subtle === undefined ? undefined : await subtle.importKey('raw', source(point), { name: 'ECDSA', namedCurve: curve }, false, ['verify'])
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
  const subtle = subtleCrypto()
  if (subtle === undefined || key === undefined) {
    const verifier = (await loadNobleEcdsa()).createVerifier(curve, verificationKey) as Verifier
    verifier.update(message)
    return verifier.verify(signature)
  }
  const raw = derToP1363(signature, CURVES[curve].size)
  if (raw === undefined) return false
  try {
    return await subtle.verify({ name: 'ECDSA', hash: SIGNATURE_HASH[curve] }, key, source(raw), source(message))
  } catch {
    return false // a signature that cannot be checked does not verify
  }
}
