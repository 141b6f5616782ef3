// How a request uses a key: resolve it in the request's Region, check the caller and the key's state, then
// encrypt or decrypt under it. Shared by the operations that touch key material.
import { blobKeyId, openBlob, RSA_ALGORITHMS, rsaDecrypt, rsaEncrypt, rsaMaxPlaintext, sealBlob, type RsaAlgorithm } from './kms-crypto.js'
import { invalidCiphertext, invalidKeyUsage, invalidState, KmsServiceError, validation } from './kms-errors.js'
import type { KmsFaults } from './kms-faults.js'
import type { EmulatedKey, KmsStore } from './kms-state.js'

/** What a handler knows about its request, and what it reports back to the server. */
export interface OperationContext {
  readonly operation: string
  readonly region: string
  readonly accessKeyId: string
  readonly store: KmsStore
  readonly faults: KmsFaults
  /** The key the request resolved to, for the call log; set as soon as it is known, so failures carry it too. */
  keyArn: string | undefined
  /** Set when the request changed keys or aliases, so the server saves the state file. */
  mutated: boolean
}

export type EncryptionAlgorithm = 'SYMMETRIC_DEFAULT' | RsaAlgorithm

/** Resolve a KeyId parameter, record it, then check the caller's permission and (unless told not to) the key's state. */
export function useKey(context: OperationContext, identifier: string, requireEnabled = true): EmulatedKey {
  return authorize(context, context.store.resolve(context.region, identifier), requireEnabled)
}

function authorize(context: OperationContext, key: EmulatedKey, requireEnabled: boolean): EmulatedKey {
  context.keyArn = key.arn
  // Authorization comes before the key state, as in KMS: a denied caller learns nothing about the key.
  if (context.faults.isDenied(key.arn, context.operation, context.accessKeyId)) {
    const { partition, accountId } = context.store
    throw new KmsServiceError(
      'AccessDeniedException',
      `User: arn:${partition}:iam::${accountId}:user/emulated (access key ${context.accessKeyId}) is not authorized to perform: ` +
        `kms:${context.operation} on resource: ${key.arn} because the KMS emulator denies it (faults.deny).`,
    )
  }
  if (requireEnabled) assertEnabled(key)
  return key
}

function assertEnabled(key: EmulatedKey): void {
  if (key.state === 'Disabled') throw new KmsServiceError('DisabledException', `${key.arn} is disabled.`)
  if (key.state === 'PendingDeletion') throw invalidState(`${key.arn} is pending deletion.`)
}

export function assertNotPendingDeletion(key: EmulatedKey): void {
  if (key.state === 'PendingDeletion') throw invalidState(`${key.arn} is pending deletion.`)
}

export function checkAlgorithm(key: EmulatedKey, algorithm: string): EncryptionAlgorithm {
  const fits = key.keySpec === 'SYMMETRIC_DEFAULT' ? algorithm === 'SYMMETRIC_DEFAULT' : RSA_ALGORITHMS.includes(algorithm as RsaAlgorithm)
  if (!fits) throw invalidKeyUsage(`Algorithm ${algorithm} is incompatible with key spec ${key.keySpec}.`)
  return algorithm as EncryptionAlgorithm
}

/** Encrypt under an enabled key: a symmetric blob, or raw OAEP for RSA keys (which take no encryption context). */
export function encryptUnder(
  context: OperationContext,
  key: EmulatedKey,
  algorithm: EncryptionAlgorithm,
  plaintext: Uint8Array,
  encryptionContext: Record<string, string>,
): Buffer {
  const material = context.store.materialOf(key)
  if (material.kind === 'aes') return sealBlob(material.secret, key.keyId, plaintext, encryptionContext)
  if (Object.keys(encryptionContext).length > 0) throw validation('EncryptionContext is not supported with asymmetric KMS keys.')
  const limit = rsaMaxPlaintext(material, algorithm as RsaAlgorithm)
  if (plaintext.length > limit) throw validation(`Plaintext is ${plaintext.length} bytes; ${key.keySpec} with ${algorithm} takes at most ${limit}.`)
  return rsaEncrypt(material, algorithm as RsaAlgorithm, plaintext)
}

export interface Decrypted {
  readonly key: EmulatedKey
  readonly plaintext: Buffer
  readonly algorithm: EncryptionAlgorithm
}

/**
 * Decrypt `blob`. Symmetric blobs name their key; a KeyId, when given, must be that key (IncorrectKeyException).
 * A blob naming a key this Region does not have is treated as damaged, as KMS does for foreign ciphertext.
 * RSA ciphertext names no key, so it needs the KeyId and an RSAES algorithm.
 */
export function decryptBlob(
  context: OperationContext,
  blob: Buffer,
  keyIdentifier: string | undefined,
  requestedAlgorithm: string | undefined,
  encryptionContext: Record<string, string>,
): Decrypted {
  const algorithmName = requestedAlgorithm ?? 'SYMMETRIC_DEFAULT'
  if (algorithmName !== 'SYMMETRIC_DEFAULT') {
    if (keyIdentifier === undefined) throw validation(`KeyId is required to decrypt with ${algorithmName}: asymmetric ciphertext does not name its key.`)
    const key = useKey(context, keyIdentifier)
    const algorithm = checkAlgorithm(key, algorithmName)
    if (Object.keys(encryptionContext).length > 0) throw validation('EncryptionContext is not supported with asymmetric KMS keys.')
    const material = context.store.materialOf(key)
    const plaintext = material.kind === 'rsa' ? rsaDecrypt(material, algorithm as RsaAlgorithm, blob) : undefined
    if (plaintext === undefined) throw invalidCiphertext()
    return { key, plaintext, algorithm }
  }
  const blobKey = blobKeyId(blob)
  let key: EmulatedKey
  if (keyIdentifier !== undefined) {
    key = useKey(context, keyIdentifier)
    checkAlgorithm(key, algorithmName)
    if (blobKey === undefined) throw invalidCiphertext()
    if (blobKey !== key.keyId) {
      if (context.store.findKey(context.region, blobKey) === undefined) throw invalidCiphertext()
      throw new KmsServiceError('IncorrectKeyException', 'The key ID in the request does not identify the KMS key that encrypted the ciphertext.')
    }
  } else {
    const found = blobKey === undefined ? undefined : context.store.findKey(context.region, blobKey)
    if (found === undefined) throw invalidCiphertext()
    key = authorize(context, found, true)
  }
  const material = context.store.materialOf(key)
  const plaintext = material.kind === 'aes' ? openBlob(material.secret, blob, encryptionContext) : undefined
  if (plaintext === undefined) throw invalidCiphertext()
  return { key, plaintext, algorithm: 'SYMMETRIC_DEFAULT' }
}
