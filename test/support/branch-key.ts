// Test support: the key wrapping of the AWS KMS hierarchical keyring over a branch key given in plaintext
// (the test-vector "static branch key"), so tests can read items the official SDKs wrote under
// `aws-kms-hierarchy` without KMS or a branch key store.
// spec: framework/aws-kms/aws-kms-hierarchical-keyring.md#ciphertext, #branch-key-wrapping,
// #branch-key-unwrapping, #branch-key-wrapping-and-unwrapping-aad
import { createCipheriv, createDecipheriv, createHmac, randomBytes } from 'node:crypto'
import type { CryptoBackend } from '../../src/backend/types.js'
import { serializeContext } from '../../src/format/context.js'
import { ensureDataKey } from '../../src/keyrings/common.js'
import { addIntermediateRecipient, openIntermediate, wrappedIntermediateKey } from '../../src/keyrings/intermediate.js'
import type { DecryptionMaterials, EncryptedDataKey, EncryptionContext, EncryptionMaterials, Keyring } from '../../src/types.js'

export const HIERARCHY_PROVIDER_ID = 'aws-kms-hierarchy'
const SALT_LENGTH = 16
const IV_LENGTH = 12
const VERSION_LENGTH = 16
const TAG_LENGTH = 16

export interface StaticBranchKey {
  readonly branchKeyId: string
  /** The branch key version, a UUID string. */
  readonly version: string
  readonly key: Uint8Array
}

/** spec: the branch key version UUID's 36 characters as its 16 bytes. */
export function uuidBytes(uuid: string): Buffer {
  const hex = uuid.replaceAll('-', '')
  if (!/^[0-9a-f]{32}$/i.test(hex)) throw new Error(`not a UUID: ${uuid}`)
  return Buffer.from(hex, 'hex')
}

/**
 * NIST SP 800-108 KDF in counter mode with HMAC-SHA256, one block: HMAC(branchKey, 00000001 ‖ label ‖ 0x00 ‖
 * salt ‖ 00000100 (256 bits)). The label is the provider ID.
 */
export function deriveBranchWrappingKey(branchKey: Uint8Array, salt: Uint8Array): Buffer {
  const lengthBits = Buffer.alloc(4)
  lengthBits.writeUInt32BE(256)
  return createHmac('sha256', branchKey)
    .update(Buffer.from([0, 0, 0, 1]))
    .update(HIERARCHY_PROVIDER_ID)
    .update(Buffer.from([0]))
    .update(salt)
    .update(lengthBits)
    .digest()
}

function wrappingAad(branchKey: StaticBranchKey, context: EncryptionContext): Buffer {
  return Buffer.concat([
    Buffer.from(HIERARCHY_PROVIDER_ID),
    Buffer.from(branchKey.branchKeyId),
    uuidBytes(branchKey.version),
    serializeContext(context),
  ])
}

/** salt ‖ IV ‖ version ‖ AES-256-GCM(derived key, material) ‖ tag */
export function wrapWithBranchKey(branchKey: StaticBranchKey, material: Uint8Array, context: EncryptionContext): Uint8Array {
  const salt = randomBytes(SALT_LENGTH)
  const iv = randomBytes(IV_LENGTH)
  const cipher = createCipheriv('aes-256-gcm', deriveBranchWrappingKey(branchKey.key, salt), iv)
  cipher.setAAD(wrappingAad(branchKey, context))
  const encrypted = Buffer.concat([cipher.update(material), cipher.final()])
  return Buffer.concat([salt, iv, uuidBytes(branchKey.version), encrypted, cipher.getAuthTag()])
}

/** The inverse of wrapWithBranchKey; throws when the version differs or the tag fails. */
export function unwrapWithBranchKey(branchKey: StaticBranchKey, wrapped: Uint8Array, context: EncryptionContext, keyLength: number): Uint8Array {
  if (wrapped.length !== SALT_LENGTH + IV_LENGTH + VERSION_LENGTH + keyLength + TAG_LENGTH) {
    throw new Error(`hierarchy ciphertext is ${wrapped.length} bytes, not ${SALT_LENGTH + IV_LENGTH + VERSION_LENGTH + keyLength + TAG_LENGTH}`)
  }
  const salt = wrapped.subarray(0, SALT_LENGTH)
  const iv = wrapped.subarray(SALT_LENGTH, SALT_LENGTH + IV_LENGTH)
  const version = wrapped.subarray(SALT_LENGTH + IV_LENGTH, SALT_LENGTH + IV_LENGTH + VERSION_LENGTH)
  if (!uuidBytes(branchKey.version).equals(version)) throw new Error('the data key was wrapped under another branch key version')
  const encrypted = wrapped.subarray(SALT_LENGTH + IV_LENGTH + VERSION_LENGTH, wrapped.length - TAG_LENGTH)
  const decipher = createDecipheriv('aes-256-gcm', deriveBranchWrappingKey(branchKey.key, salt), iv)
  decipher.setAAD(wrappingAad(branchKey, context))
  decipher.setAuthTag(wrapped.subarray(wrapped.length - TAG_LENGTH))
  return new Uint8Array(Buffer.concat([decipher.update(encrypted), decipher.final()]))
}

/**
 * A hierarchical keyring over a plaintext branch key. The provider info is the branch key ID. For the DynamoDB
 * item suites (intermediate key wrapping) the hierarchy ciphertext above wraps the intermediate key; for the
 * message suites (decrypt only) it wraps the data key itself.
 */
export class StaticBranchKeyKeyring implements Keyring {
  constructor(readonly branchKey: StaticBranchKey) {}

  async onEncrypt(materials: EncryptionMaterials, backend: CryptoBackend): Promise<EncryptionMaterials> {
    if (materials.suite.edkWrapping !== 'intermediate') throw new Error('StaticBranchKeyKeyring supports the DynamoDB item suites only')
    return addIntermediateRecipient(ensureDataKey(materials, backend), backend, async () => {
      const intermediateKey = new Uint8Array(randomBytes(materials.suite.keyLength))
      const ciphertext = wrapWithBranchKey(this.branchKey, intermediateKey, materials.encryptionContext)
      return {
        intermediateKey,
        encryptedDataKey: { providerId: HIERARCHY_PROVIDER_ID, providerInfo: new TextEncoder().encode(this.branchKey.branchKeyId), ciphertext },
      }
    })
  }

  async onDecrypt(materials: DecryptionMaterials, encryptedDataKeys: readonly EncryptedDataKey[], backend: CryptoBackend): Promise<DecryptionMaterials> {
    if (materials.plaintextDataKey !== undefined) return materials
    const keyLength = materials.suite.keyLength
    for (const edk of encryptedDataKeys) {
      if (edk.providerId !== HIERARCHY_PROVIDER_ID || new TextDecoder().decode(edk.providerInfo) !== this.branchKey.branchKeyId) continue
      if (materials.suite.edkWrapping !== 'intermediate') {
        return { ...materials, plaintextDataKey: unwrapWithBranchKey(this.branchKey, edk.ciphertext, materials.encryptionContext, keyLength) }
      }
      const wrapped = wrappedIntermediateKey(edk, keyLength)
      if (wrapped === undefined) continue
      const intermediateKey = unwrapWithBranchKey(this.branchKey, wrapped, materials.encryptionContext, keyLength)
      const opened = await openIntermediate(materials, edk, intermediateKey, backend)
      if (opened !== undefined) return opened
    }
    return materials
  }
}
