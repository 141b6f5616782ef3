// RSA-OAEP on WebCrypto for the raw RSA and KMS RSA keyrings. WebCrypto binds the OAEP hash to the key at
// import, so a handle keeps the key's encoding and imports it once per hash on first use.
import { ConfigurationError, EnvelopeError, UnsupportedOperationError } from '../errors.js'
import { checkRsaEncryptBits, fromPem, rsaSpkiModulusBits, spkiFromPkcs1 } from './der.js'
import { loadOnDemand, loadOnce } from '../load-on-demand.js'
import type { RsaPadding } from './types.js'
import { isBytes } from '../is-bytes.js'
import { objectKind } from '../format/context.js'

export type OaepHash = 'SHA-1' | 'SHA-256' | 'SHA-384' | 'SHA-512'

const OAEP_HASH: Record<Exclude<RsaPadding, 'PKCS1'>, OaepHash> = {
  'OAEP-SHA1': 'SHA-1',
  'OAEP-SHA256': 'SHA-256',
  'OAEP-SHA384': 'SHA-384',
  'OAEP-SHA512': 'SHA-512',
}

export interface RsaHandle {
  readonly kind: 'public' | 'private'
  /** The key imported for one OAEP hash (cached per hash). */
  key(hash: OaepHash): Promise<CryptoKey>
  /** A public key's SPKI, when it was given as PEM or DER: without crypto.subtle, @noble code encrypts with it. */
  readonly spki?: Uint8Array
}

/**
 * The pure-JavaScript primitives (noble.ts), loaded on demand, so an application that never needs them does not
 * download them (with code splitting): for AES-192, and for pages without crypto.subtle.
 */
export const loadNoble = /* @__PURE__ */ loadOnce(() => import('./noble.js'))

/**
 * Our byte arrays as WebCrypto's `BufferSource`. They never sit on a SharedArrayBuffer, which is all
 * TypeScript's DOM types worry about: the library allocates them, copies the keys it is given, and copies
 * shared one-shot input (browser.ts) and stream chunks (`asChunk`) as they come in.
 */
export function source(bytes: Uint8Array): BufferSource {
  return bytes as Uint8Array<ArrayBuffer>
}

export function subtleCrypto(): SubtleCrypto | undefined {
  return globalThis.crypto?.subtle
}

export function unreadable(kind: 'public' | 'private', reason: string): ConfigurationError {
  return new ConfigurationError(`The RSA ${kind} key could not be read: ${reason}.`)
}

/**
 * By its tag, not instanceof: the key may come from another realm's WebCrypto than the global CryptoKey's (a test
 * environment's page realm over Node's WebCrypto, say), or from a realm with no CryptoKey global. An object that only
 * claims the tag is refused by WebCrypto itself.
 */
export function isCryptoKey(value: unknown): value is CryptoKey {
  return objectKind(value) === 'CryptoKey'
}

function handle(kind: 'public' | 'private', importFor: (hash: OaepHash) => Promise<CryptoKey>): RsaHandle {
  const imported = new Map<OaepHash, Promise<CryptoKey>>()
  return {
    kind,
    key(hash) {
      let key = imported.get(hash)
      if (key === undefined) {
        key = importFor(hash).catch((error: unknown) => {
          imported.delete(hash)
          if (error instanceof EnvelopeError) throw error // a key refused by name, or a private key without crypto.subtle
          throw unreadable(kind, `WebCrypto refused it (${(error as Error)?.name ?? 'error'})`)
        })
        imported.set(hash, key)
      }
      return key
    },
  }
}

/** A caller's own RSA-OAEP CryptoKey: usable only with the hash it was imported for. */
export function fromCryptoKey(kind: 'public' | 'private', key: CryptoKey): RsaHandle {
  const algorithm = key.algorithm as RsaHashedKeyAlgorithm
  if (key.type !== kind || algorithm.name !== 'RSA-OAEP') throw unreadable(kind, `expected an RSA-OAEP ${kind} CryptoKey`)
  return handle(kind, async (hash) => {
    if (algorithm.hash.name !== hash) {
      throw new ConfigurationError(`The RSA ${kind} CryptoKey was imported for ${algorithm.hash.name}; this padding needs ${hash}.`)
    }
    return key
  })
}

/** PEM string, DER bytes or CryptoKey → a public key handle. */
export function importRsaPublicKey(input: unknown): RsaHandle {
  if (isCryptoKey(input)) return fromCryptoKey('public', input)
  let spki: Uint8Array
  try {
    if (isBytes(input)) spki = input // the keyring's own copy (RawRsaKeyring's and KmsRsaKeyring's constructors copy DER bytes)
    else if (typeof input === 'string') {
      const { label, der } = fromPem(input)
      if (label === 'PUBLIC KEY') spki = der
      else if (label === 'RSA PUBLIC KEY') spki = spkiFromPkcs1(der)
      else throw new TypeError(`a "${label}" PEM block is not a public key`)
    } else throw new TypeError(`expected a PEM string, DER bytes or a CryptoKey, got ${typeof input}`)
    rsaSpkiModulusBits(spki)
  } catch (error) {
    throw unreadable('public', error instanceof TypeError ? error.message : 'invalid key encoding')
  }
  // Imported only where crypto.subtle is (rsaEncrypt takes the spki where it is not).
  return { ...handle('public', (hash) => (subtleCrypto() as SubtleCrypto).importKey('spki', source(spki), { name: 'RSA-OAEP', hash }, false, ['encrypt'])), spki }
}

// The private half (PKCS#8 parsing, deriving the public key, decryption: webcrypto-rsa-private.ts) is loaded
// on first use: an application that only encrypts with a public key never downloads it.

/** What a private key handle holds: the caller's input, read (and checked) on first use. */
export interface PrivateRsaHandle extends RsaHandle {
  readonly input: unknown
}

/** PEM string, DER PKCS#8 bytes or CryptoKey → a private key handle; a bad key is reported on first use. */
export function importRsaPrivateKey(input: unknown): PrivateRsaHandle {
  return { ...handle('private', async (hash) => (await loadOnDemand()).importPrivateKey(input, hash)), input }
}

/** The public half of a private key handle, through its modulus and exponent (imported on first use). */
export function rsaPublicFromPrivate(privateKey: unknown): RsaHandle {
  let spki: Promise<Uint8Array> | undefined
  return handle('public', async (hash) => {
    spki ??= loadOnDemand().then((onDemand) => onDemand.publicSpki((privateKey as PrivateRsaHandle).input))
    const publicHalf = await spki // refused without crypto.subtle (webcrypto-rsa-private.ts)
    return (subtleCrypto() as SubtleCrypto).importKey('spki', source(publicHalf), { name: 'RSA-OAEP', hash }, false, ['encrypt'])
  })
}

export async function rsaDecrypt(privateKey: unknown, padding: RsaPadding, ciphertext: Uint8Array, expectedLength: number): Promise<Uint8Array> {
  return (await loadOnDemand()).rsaDecrypt(privateKey as RsaHandle, oaepHash(padding), padding, ciphertext, expectedLength)
}

export function oaepHash(padding: RsaPadding): OaepHash {
  if (padding === 'PKCS1') {
    throw new UnsupportedOperationError(
      'RSA PKCS1 (v1.5) padding needs the Node build of kms-envelope: WebCrypto has RSA-OAEP only. Use an OAEP padding for data that browsers handle.',
    )
  }
  return OAEP_HASH[padding]
}

/** RSA-OAEP on WebCrypto; without crypto.subtle, in JavaScript (noble.ts), with a public key given as PEM or DER. */
export async function rsaEncrypt(publicKey: unknown, padding: RsaPadding, plaintext: Uint8Array): Promise<Uint8Array> {
  const hash = oaepHash(padding)
  const { spki } = publicKey as RsaHandle
  const subtle = subtleCrypto()
  if (subtle === undefined && spki !== undefined) return (await loadNoble()).rsaOaepEncrypt(spki, hash, plaintext, checkRsaEncryptBits)
  // Without crypto.subtle, only the public half of a private key gets here, and reading the private key refuses.
  const key = await (publicKey as RsaHandle).key(hash)
  checkRsaEncryptBits((key.algorithm as RsaHashedKeyAlgorithm).modulusLength, 'The RSA public key')
  return new Uint8Array(await (subtle as SubtleCrypto).encrypt({ name: 'RSA-OAEP' }, key, source(plaintext)))
}

