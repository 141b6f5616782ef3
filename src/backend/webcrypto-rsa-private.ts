// The private half of RSA on WebCrypto, loaded on first use by webcrypto-rsa.ts: reading PKCS#8 (and PKCS#1)
// private keys, deriving a public key from one, and RSA-OAEP decryption of a wrapped data key.
import { ConfigurationError, KeyringError, UnsupportedOperationError } from '../errors.js'
import { requireUnwrappedKeyLength } from './unwrapped-key.js'
import { isEncryptedPem } from './encrypted-pem.js'
import { element, fromPem, INTEGER, isRsaAlgorithm, OCTET_STRING, readElement, RSA_ALGORITHM_IDENTIFIER, SEQUENCE, spkiFromPkcs1 } from './der.js'
import { rsaPrivateKeyParts } from './der-private.js'
import type { RsaPadding } from './types.js'
import { fromCryptoKey, isCryptoKey, source, subtleCrypto, unreadable, type OaepHash, type RsaHandle } from './webcrypto-rsa.js'
import { isBytes } from '../is-bytes.js'

/**
 * crypto.subtle, or UnsupportedOperationError: RSA with a private key is WebCrypto's only (the public-key
 * encryption has a JavaScript fallback, in noble.ts).
 */
function requireSubtle(): SubtleCrypto {
  const subtle = subtleCrypto()
  if (subtle === undefined) {
    throw new UnsupportedOperationError(
      'An RSA private key needs WebCrypto (crypto.subtle), which this page does not have: serve it over HTTPS or from localhost.',
    )
  }
  return subtle
}

/** A PKCS#8 PrivateKeyInfo's algorithm identifier and private key (TypeError when it is not PKCS#8 at all). */
function privateKeyInfo(pkcs8: Uint8Array): { readonly algorithm: Uint8Array; readonly privateKey: Uint8Array } {
  const outer = readElement(pkcs8, 0, SEQUENCE, 'PrivateKeyInfo')
  const version = readElement(outer.content, 0, INTEGER, 'version')
  const algorithm = readElement(outer.content, version.end, SEQUENCE, 'algorithm')
  return { algorithm: algorithm.content, privateKey: readElement(outer.content, algorithm.end, OCTET_STRING, 'privateKey').content }
}

/** PKCS#1 RSAPrivateKey → PKCS#8 PrivateKeyInfo. */
function pkcs8FromPkcs1(rsaPrivateKey: Uint8Array): Uint8Array {
  return element(SEQUENCE, Uint8Array.of(INTEGER, 1, 0), RSA_ALGORITHM_IDENTIFIER, element(OCTET_STRING, rsaPrivateKey))
}

/** PEM string or DER PKCS#8 bytes → PKCS#8 DER; ConfigurationError for anything else. */
function readPkcs8(input: unknown): Uint8Array {
  try {
    let pkcs8: Uint8Array
    if (isBytes(input)) pkcs8 = input // RawRsaKeyring's own copy, made by its constructor
    else if (isEncryptedPem(input)) throw new TypeError('it is encrypted with a passphrase; pass it decrypted (WebCrypto cannot read encrypted keys)')
    else if (typeof input === 'string') {
      const { label, der } = fromPem(input)
      if (label === 'PRIVATE KEY') pkcs8 = der
      else if (label === 'RSA PRIVATE KEY') pkcs8 = pkcs8FromPkcs1(der)
      else throw new TypeError(`a "${label}" PEM block is not a private key`)
    } else throw new TypeError(`expected a PEM string, DER bytes or a CryptoKey, got ${typeof input}`)
    if (!isRsaAlgorithm(privateKeyInfo(pkcs8).algorithm)) throw new TypeError('expected an RSA key')
    return pkcs8
  } catch (error) {
    throw unreadable('private', error instanceof TypeError ? error.message : 'invalid key encoding')
  }
}

/** The caller's private key imported for one OAEP hash. */
export async function importPrivateKey(input: unknown, hash: OaepHash): Promise<CryptoKey> {
  if (isCryptoKey(input)) return fromCryptoKey('private', input).key(hash)
  return requireSubtle().importKey('pkcs8', source(readPkcs8(input)), { name: 'RSA-OAEP', hash }, false, ['decrypt'])
}

/**
 * The public half of the caller's private key as SPKI: its modulus and exponent, read from PKCS#8 (a CryptoKey's
 * own export, zeroed once read). Not through a JWK export, which would leave every part of the private key on the
 * heap as strings that nothing clears.
 */
export async function publicSpki(input: unknown): Promise<Uint8Array> {
  const subtle = requireSubtle() // the public half is used through WebCrypto (rsaPublicFromPrivate)
  let exported: Uint8Array | undefined
  if (isCryptoKey(input)) {
    if (!input.extractable) {
      throw new ConfigurationError('The RSA private CryptoKey is not extractable, so its public half cannot be derived: pass publicKey as well.')
    }
    exported = new Uint8Array(await subtle.exportKey('pkcs8', input))
  }
  try {
    return publicHalf(exported ?? readPkcs8(input))
  } catch (error) {
    if (error instanceof ConfigurationError) throw error
    throw unreadable('private', error instanceof TypeError ? error.message : 'invalid key encoding')
  } finally {
    exported?.fill(0)
  }
}

/** PKCS#8 RSA PrivateKeyInfo → SPKI of its modulus and public exponent (RSAPrivateKey: version, n, e, d, ...). */
function publicHalf(pkcs8: Uint8Array): Uint8Array {
  const { modulus, publicExponent } = rsaPrivateKeyParts(privateKeyInfo(pkcs8).privateKey)
  return spkiFromPkcs1(element(SEQUENCE, element(INTEGER, modulus), element(INTEGER, publicExponent)))
}

export async function rsaDecrypt(
  privateKey: RsaHandle,
  hash: OaepHash,
  padding: RsaPadding,
  ciphertext: Uint8Array,
  expectedLength: number,
): Promise<Uint8Array> {
  const key = await privateKey.key(hash)
  const subtle = requireSubtle()
  let plaintext: Uint8Array
  try {
    plaintext = new Uint8Array(await subtle.decrypt({ name: 'RSA-OAEP' }, key, source(ciphertext)))
  } catch (error) {
    throw new KeyringError(`RSA ${padding} decryption of the data key failed.`, { cause: error })
  }
  // A data key that starts with a zero byte (1 in 256) comes back short where RSA-OAEP drops them: put them back.
  // Up to 7 of them: a key 8 or more bytes short is another suite's (16, 24, 32 bytes) or made up, refused as
  // elsewhere, while a real key starts with 8 zero bytes once in 2^64. A key that was a few bytes short when
  // wrapped becomes another key, which the header's authentication refuses.
  const missing = expectedLength - plaintext.length
  if (missing > 0 && missing <= MAX_DROPPED_ZEROS && (await dropsLeadingZeros(subtle))) {
    const padded = new Uint8Array(expectedLength)
    padded.set(plaintext, missing)
    plaintext.fill(0)
    plaintext = padded
  }
  return requireUnwrappedKeyLength(plaintext, expectedLength)
}

const MAX_DROPPED_ZEROS = 7

/** Per WebCrypto implementation: whether its RSA-OAEP drops them. */
const leadingZeroChecks = new WeakMap<SubtleCrypto, Promise<boolean>>()

/**
 * Whether this WebCrypto's RSA-OAEP drops the leading zero bytes of what it decrypts, as WebKitGTK's and WPE's do
 * (on libgcrypt), found once, on the first short key, with a key pair of its own (others keep them, and a short
 * key stays an error there, as in Node).
 */
function dropsLeadingZeros(subtle: SubtleCrypto): Promise<boolean> {
  let check = leadingZeroChecks.get(subtle)
  if (check === undefined) {
    const oaep = { name: 'RSA-OAEP' }
    check = (async () => {
      const { publicKey, privateKey } = (await subtle.generateKey(
        { ...oaep, modulusLength: 1024, publicExponent: Uint8Array.of(1, 0, 1), hash: 'SHA-256' },
        false,
        ['encrypt', 'decrypt'],
      )) as CryptoKeyPair
      const message = Uint8Array.of(0, 1)
      return (await subtle.decrypt(oaep, privateKey, await subtle.encrypt(oaep, publicKey, message))).byteLength < message.length
    })().catch(() => false)
    leadingZeroChecks.set(subtle, check)
  }
  return check
}
