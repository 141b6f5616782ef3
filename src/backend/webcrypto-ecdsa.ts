// ECDSA on WebCrypto for signing suites, loaded on first use: an application that only uses unsigned suites
// (0x0478 with KmsRsaKeyring) never downloads it. WebCrypto signs and verifies whole messages only.
import { KeyringError } from '../errors.js'
import type { CurveName } from '../suites.js'
import { compressPoint, CURVES, decompressPoint, derToP1363, p1363ToDer } from './ec.js'
import { WebSigningKey } from './signing-key.js'
import type { SigningKeyPair } from './types.js'
import { recentKeys } from './recent-keys.js'
import { requireSubtle, source } from './webcrypto-rsa.js'

const SIGNATURE_HASH: Record<CurveName, string> = { 'P-256': 'SHA-256', 'P-384': 'SHA-384' }

/** What `importVerificationKey` returns: the WebCrypto key and the uncompressed point. */
interface VerificationKey {
  readonly key: CryptoKey
  readonly point: Uint8Array
}

/** The private key is a WebSigningKey: WebCrypto signs whole messages, the scalar serves streams. */
export async function generateSigningKey(curve: CurveName): Promise<SigningKeyPair> {
  const subtle = requireSubtle('ECDSA signing')
  const pair = (await subtle.generateKey({ name: 'ECDSA', namedCurve: curve }, true, ['sign', 'verify'])) as CryptoKeyPair
  const uncompressed = new Uint8Array(await subtle.exportKey('raw', pair.publicKey))
  const { d } = await subtle.exportKey('jwk', pair.privateKey)
  const scalar = Uint8Array.from(atob((d as string).replace(/-/g, '+').replace(/_/g, '/')), (char) => char.charCodeAt(0))
  return { privateKey: new WebSigningKey(pair.privateKey, scalar), publicKey: compressPoint(uncompressed) }
}

/** DER signature of the whole message. */
export async function signMessage(curve: CurveName, privateKey: unknown, message: Uint8Array): Promise<Uint8Array> {
  const subtle = requireSubtle('ECDSA signing')
  const key = privateKey instanceof WebSigningKey ? privateKey.key : (privateKey as CryptoKey)
  let signature: ArrayBuffer
  try {
    signature = await subtle.sign({ name: 'ECDSA', hash: SIGNATURE_HASH[curve] }, key, source(message))
  } catch (error) {
    // A custom materials manager's key, say: the default one makes keys this build can sign with.
    throw new KeyringError(
      "The materials manager's signing key cannot sign this message: WebCrypto needs an ECDSA private CryptoKey on the suite's curve.",
      { cause: error },
    )
  }
  return p1363ToDer(new Uint8Array(signature))
}

/** Decompresses and checks the point; `recentKeys` spares repeating it for the same signer. */
export const importVerificationKey = recentKeys(importPoint)

async function importPoint(curve: CurveName, compressedPoint: Uint8Array): Promise<VerificationKey> {
  const point = decompressPoint(curve, compressedPoint)
  const key = await requireSubtle('ECDSA verification').importKey('raw', source(point), { name: 'ECDSA', namedCurve: curve }, false, ['verify'])
  return { key, point }
}

/** Resolves false for a bad or undecodable DER signature. */
export async function verifyMessage(curve: CurveName, publicKey: unknown, message: Uint8Array, signature: Uint8Array): Promise<boolean> {
  const raw = derToP1363(signature, CURVES[curve].size)
  if (raw === undefined) return false
  const subtle = requireSubtle('ECDSA verification')
  return subtle.verify({ name: 'ECDSA', hash: SIGNATURE_HASH[curve] }, (publicKey as VerificationKey).key, source(raw), source(message))
}
