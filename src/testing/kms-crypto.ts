// The emulator's key material and ciphertext formats. Nothing here talks HTTP or knows about Regions.
import {
  constants,
  createCipheriv,
  createDecipheriv,
  createPrivateKey,
  createPublicKey,
  createSecretKey,
  generateKeyPair,
  generateKeyPairSync,
  privateDecrypt,
  publicEncrypt,
  randomBytes,
  type KeyObject,
} from 'node:crypto'

/** The key specs the emulator can create, all with key usage ENCRYPT_DECRYPT. */
export type EmulatedKeySpec = 'SYMMETRIC_DEFAULT' | 'RSA_2048' | 'RSA_3072' | 'RSA_4096'
export const KEY_SPECS: readonly EmulatedKeySpec[] = ['SYMMETRIC_DEFAULT', 'RSA_2048', 'RSA_3072', 'RSA_4096']

export type RsaAlgorithm = 'RSAES_OAEP_SHA_1' | 'RSAES_OAEP_SHA_256'
export const RSA_ALGORITHMS: readonly RsaAlgorithm[] = ['RSAES_OAEP_SHA_1', 'RSAES_OAEP_SHA_256']
const OAEP_HASH: Record<RsaAlgorithm, { name: string; length: number }> = {
  RSAES_OAEP_SHA_1: { name: 'sha1', length: 20 },
  RSAES_OAEP_SHA_256: { name: 'sha256', length: 32 },
}
const MODULUS_BITS: Record<Exclude<EmulatedKeySpec, 'SYMMETRIC_DEFAULT'>, number> = {
  RSA_2048: 2048,
  RSA_3072: 3072,
  RSA_4096: 4096,
}

/** Held in KeyObjects, so `inspect` shows a key's kind and size, never its bytes. */
export type KeyMaterial =
  | { readonly kind: 'aes'; readonly secret: KeyObject }
  | { readonly kind: 'rsa'; readonly privateKey: KeyObject; readonly publicKey: KeyObject }

const AES_KEY_LENGTH = 32

export function generateMaterial(spec: EmulatedKeySpec): KeyMaterial {
  if (spec === 'SYMMETRIC_DEFAULT') return { kind: 'aes', secret: createSecretKey(randomBytes(AES_KEY_LENGTH)) }
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: MODULUS_BITS[spec] })
  return { kind: 'rsa', privateKey, publicKey }
}

/** As `generateMaterial`, but RSA key generation (up to a second for RSA_4096) runs on the thread pool. */
export async function generateMaterialAsync(spec: EmulatedKeySpec): Promise<KeyMaterial> {
  if (spec === 'SYMMETRIC_DEFAULT') return generateMaterial(spec)
  const modulusLength = MODULUS_BITS[spec]
  return new Promise((resolve, reject) => {
    generateKeyPair('rsa', { modulusLength }, (error, publicKey, privateKey) =>
      error ? reject(error) : resolve({ kind: 'rsa', privateKey, publicKey }),
    )
  })
}

/** Base64 of the raw AES key or the PKCS#8 DER private key, for the state file only. */
export function exportMaterial(material: KeyMaterial): string {
  const bytes = material.kind === 'aes' ? material.secret.export() : material.privateKey.export({ format: 'der', type: 'pkcs8' })
  return bytes.toString('base64')
}

export function importMaterial(spec: EmulatedKeySpec, base64: string): KeyMaterial {
  const bytes = Buffer.from(base64, 'base64')
  if (spec === 'SYMMETRIC_DEFAULT') {
    if (bytes.length !== AES_KEY_LENGTH) throw new Error(`a SYMMETRIC_DEFAULT key holds ${AES_KEY_LENGTH} bytes, not ${bytes.length}`)
    return { kind: 'aes', secret: createSecretKey(bytes) }
  }
  const privateKey = createPrivateKey({ key: bytes, format: 'der', type: 'pkcs8' })
  if (privateKey.asymmetricKeyType !== 'rsa' || privateKey.asymmetricKeyDetails?.modulusLength !== MODULUS_BITS[spec]) {
    throw new Error(`the stored private key is not an ${spec} key`)
  }
  return { kind: 'rsa', privateKey, publicKey: createPublicKey(privateKey) }
}

export function publicKeyDer(material: KeyMaterial & { kind: 'rsa' }): Buffer {
  return material.publicKey.export({ format: 'der', type: 'spki' })
}

// Symmetric ciphertext blob, version 1 (our own format; real KMS blobs are opaque too):
//   version (1 byte, 0x01) | key id length (1 byte) | key id (ASCII) | IV (12) | AES-256-GCM ciphertext | tag (16)
// The AAD is the bytes before the IV followed by the canonical encryption context, so neither the key id nor
// the context can change without the tag failing. The blob names the key id but not the Region: a replica of a
// multi-Region key (same id, same material) decrypts what its primary encrypted.
const BLOB_VERSION = 0x01
const IV_LENGTH = 12
const TAG_LENGTH = 16
const KEY_ID_PATTERN = /^[A-Za-z0-9-]{1,255}$/

/** Sorted by UTF-8 bytes of the keys, as JSON pairs: one byte string per context, and unambiguous. */
function canonicalContext(context: Readonly<Record<string, string>>): Buffer {
  const pairs = Object.entries(context).sort(([a], [b]) => Buffer.compare(Buffer.from(a), Buffer.from(b)))
  return Buffer.from(JSON.stringify(pairs))
}

export function sealBlob(secret: KeyObject, keyId: string, plaintext: Uint8Array, context: Readonly<Record<string, string>>): Buffer {
  const idBytes = Buffer.from(keyId, 'ascii')
  const header = Buffer.concat([Buffer.of(BLOB_VERSION, idBytes.length), idBytes])
  const iv = randomBytes(IV_LENGTH)
  const cipher = createCipheriv('aes-256-gcm', secret, iv)
  cipher.setAAD(Buffer.concat([header, canonicalContext(context)]))
  const body = Buffer.concat([cipher.update(plaintext), cipher.final()])
  return Buffer.concat([header, iv, body, cipher.getAuthTag()])
}

/** The key id a blob names, or undefined when the bytes are not a version 1 blob. */
export function blobKeyId(blob: Uint8Array): string | undefined {
  if (blob.length < 2 || blob[0] !== BLOB_VERSION) return undefined
  const idLength = blob[1] as number
  if (blob.length < 2 + idLength + IV_LENGTH + 1 + TAG_LENGTH) return undefined
  const keyId = Buffer.from(blob.subarray(2, 2 + idLength)).toString('latin1')
  return KEY_ID_PATTERN.test(keyId) ? keyId : undefined
}

/** The plaintext, or undefined when the tag does not verify (wrong key, context or altered bytes). */
export function openBlob(secret: KeyObject, blob: Uint8Array, context: Readonly<Record<string, string>>): Buffer | undefined {
  if (blobKeyId(blob) === undefined) return undefined
  const headerLength = 2 + (blob[1] as number)
  const bytes = Buffer.from(blob.buffer, blob.byteOffset, blob.length)
  const decipher = createDecipheriv('aes-256-gcm', secret, bytes.subarray(headerLength, headerLength + IV_LENGTH))
  decipher.setAAD(Buffer.concat([bytes.subarray(0, headerLength), canonicalContext(context)]))
  decipher.setAuthTag(bytes.subarray(bytes.length - TAG_LENGTH))
  try {
    return Buffer.concat([decipher.update(bytes.subarray(headerLength + IV_LENGTH, bytes.length - TAG_LENGTH)), decipher.final()])
  } catch {
    return undefined
  }
}

/** The longest plaintext OAEP takes under this key and hash (what real KMS also enforces). */
export function rsaMaxPlaintext(material: KeyMaterial & { kind: 'rsa' }, algorithm: RsaAlgorithm): number {
  const modulusBytes = (material.publicKey.asymmetricKeyDetails?.modulusLength ?? 0) / 8
  return modulusBytes - 2 * OAEP_HASH[algorithm].length - 2
}

/** Raw OAEP ciphertext with MGF1 over the same hash, as KMS returns it. */
export function rsaEncrypt(material: KeyMaterial & { kind: 'rsa' }, algorithm: RsaAlgorithm, plaintext: Uint8Array): Buffer {
  const { name } = OAEP_HASH[algorithm]
  return publicEncrypt({ key: material.publicKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: name }, plaintext)
}

export function rsaDecrypt(material: KeyMaterial & { kind: 'rsa' }, algorithm: RsaAlgorithm, ciphertext: Uint8Array): Buffer | undefined {
  const { name } = OAEP_HASH[algorithm]
  try {
    return privateDecrypt({ key: material.privateKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: name }, ciphertext)
  } catch {
    return undefined
  }
}
