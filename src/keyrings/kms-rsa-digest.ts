// The aws-kms-rsa wire layout shared by KmsRsaKeyring's encrypt side and its (on-demand) decrypt side.
// spec: framework/aws-kms/aws-kms-rsa-keyring.md
import type { CryptoBackend } from '../backend/types.js'
import { serializeContext } from '../format/context.js'
import type { EncryptionContext } from '../types.js'

/** Provider ID of the data keys KmsRsaKeyring writes (#onencrypt). */
export const KMS_RSA_PROVIDER_ID = 'aws-kms-rsa'

/** SHA-384 of the serialized encryption context, stored in front of the data key. */
export const CONTEXT_DIGEST_LENGTH = 48

/** #encryption-context-digest: SHA-384 of the context serialized as in framework/structures.md#serialization. */
export async function contextDigest(backend: CryptoBackend, encryptionContext: EncryptionContext): Promise<Uint8Array> {
  return backend.digest('sha384', serializeContext(encryptionContext))
}
