// The aws-kms-rsa wire layout and suite rule shared by KmsRsaKeyring's encrypt side and its (on-demand)
// decrypt side.
// spec: framework/aws-kms/aws-kms-rsa-keyring.md
import type { CryptoBackend } from '../backend/types.js'
import { ConfigurationError } from '../errors.js'
import { serializeContext } from '../format/context.js'
import type { AlgorithmSuite } from '../suites.js'
import type { EncryptionContext } from '../types.js'

/** Provider ID of the data keys KmsRsaKeyring writes (#onencrypt). */
export const KMS_RSA_PROVIDER_ID = 'aws-kms-rsa'

/** SHA-384 of the serialized encryption context, stored in front of the data key. */
export const CONTEXT_DIGEST_LENGTH = 48

/** #encryption-context-digest: SHA-384 of the context serialized as in framework/structures.md#serialization. */
export async function contextDigest(backend: CryptoBackend, encryptionContext: EncryptionContext): Promise<Uint8Array> {
  return backend.digest('sha384', serializeContext(encryptionContext))
}

/** KmsRsaKeyring's suites: neither ECDSA nor the DynamoDB item suites (the public key is no secret). */
export function refuseSigningSuite(suite: AlgorithmSuite): void {
  const id = `0x${suite.id.toString(16).padStart(4, '0')}`
  if (suite.edkWrapping === 'intermediate') {
    // Anyone with the public key could also make the recipient tags: they would authenticate nothing.
    throw new ConfigurationError(`KmsRsaKeyring cannot be used with DynamoDB item suite ${id}.`)
  }
  // spec: framework/aws-kms/aws-kms-rsa-keyring.md#security-considerations
  if (suite.signature === undefined) return
  throw new ConfigurationError(
    `KmsRsaKeyring cannot be used with signing suite ${id}: anyone holding the public key can write a message, so a ` +
      'signature would prove nothing. Use algorithmSuite 0x0478 (or 0x0178 under FORBID_ENCRYPT_ALLOW_DECRYPT).',
  )
}
