// The decrypt side of KmsRsaKeyring, loaded on its first decrypt: it is the only part that talks to KMS, so an
// application that only encrypts with a public key never downloads it (nor the AWS SDK it loads).
// spec: framework/aws-kms/aws-kms-rsa-keyring.md#ondecrypt
import type { CryptoBackend } from '../backend/types.js'
import { ConfigurationError, KeyringError, MalformedMessageError, NoDecryptableKeyError, type KeyringFailure } from '../errors.js'
import { copyBytes, fromUtf8 } from '../format/bytes.js'
import { anyOfThe, byteCount } from '../byte-count.js'
import type { AlgorithmSuite } from '../suites.js'
import type { DecryptionMaterials, EncryptedDataKey } from '../types.js'
import { quoteIdentifier } from '../quote.js'
import type { KmsClientLike, KmsClientSupplier } from './kms-client.js'
import { sendDecrypt } from './kms-commands.js'
import { stopIfAborted } from '../abort.js'
import { clientFor } from './kms-common.js'
import { errorMessage, namedErrorMessage, sentence } from '../error-text.js'
import type { KmsRsaEncryptionAlgorithm } from './kms-rsa.js'
import { CONTEXT_DIGEST_LENGTH, contextDigest, KMS_RSA_PROVIDER_ID, refuseSigningSuite } from './kms-rsa-digest.js'
import { isBytes } from '../is-bytes.js'

/** What the keyring was configured with. */
export interface KmsRsaDecryptConfig {
  readonly keyId: string
  readonly encryptionAlgorithm: KmsRsaEncryptionAlgorithm
  readonly region: string
  readonly kmsClient: KmsClientLike | undefined
  readonly clientSupplier: KmsClientSupplier | undefined
  readonly grantTokens: readonly string[]
}

/**
 * KmsRsaKeyring's onDecrypt: the data keys for its key (or a replica of it) are tried in order; the first
 * whose KMS-decrypted digest matches the materials' context wins. Every failure is collected.
 */
export async function kmsRsaDecrypt(
  config: KmsRsaDecryptConfig,
  materials: DecryptionMaterials,
  encryptedDataKeys: readonly EncryptedDataKey[],
  backend: CryptoBackend,
  /** Whether a recorded key ARN MRK-matches the configured key; undefined when `recorded` is not a key ARN. */
  matchesKeyArn: (recorded: string) => boolean | undefined,
  signal?: AbortSignal,
): Promise<DecryptionMaterials> {
  if (config.kmsClient === undefined && config.clientSupplier === undefined) {
    // spec: "OnDecrypt MUST fail if this keyring does not have a specified AWS KMS SDK client."
    throw new ConfigurationError(
      `KmsRsaKeyring ${config.keyId} has no KMS client, so it cannot decrypt: pass kmsClient (a KMSClient) or clientSupplier (e.g. defaultKmsClientSupplier()).`,
    )
  }
  refuseSigningSuite(materials.suite)
  if (materials.plaintextDataKey !== undefined) {
    throw new KeyringError('KmsRsaKeyring was given decryption materials that already hold a data key.')
  }
  const candidates = encryptedDataKeys.filter((edk, index) => edk.providerId === KMS_RSA_PROVIDER_ID && isFor(edk, index, matchesKeyArn))
  if (candidates.length === 0) return materials
  // spec: #encryption-context-digest-prime
  const expectedDigest = await contextDigest(backend, materials.encryptionContext)
  const failures: KeyringFailure[] = []
  for (const edk of candidates) {
    try {
      return Object.assign({}, materials, { plaintextDataKey: await unwrap(config, edk, materials.suite, expectedDigest, backend, signal) })
    } catch (error) {
      // Aborted: the request was cancelled, and no other data key is tried.
      stopIfAborted(signal)
      failures.push({ keyring: 'KmsRsaKeyring', error })
    }
  }
  const reasons = failures.map(({ error }) => sentence(errorMessage(error)))
  throw new NoDecryptableKeyError(
    `KmsRsaKeyring could not decrypt ${anyOfThe(candidates.length, 'data key')} for ${config.keyId}: ${reasons.join(' ')}`,
    failures,
  )
}

/** Provider info must be a key ARN (else the whole decrypt fails) that MRK-matches the configured key. */
function isFor(edk: EncryptedDataKey, index: number, matchesKeyArn: (recorded: string) => boolean | undefined): boolean {
  const recorded = fromUtf8(edk.providerInfo, `encrypted data key #${index + 1} provider info`)
  const matches = matchesKeyArn(recorded)
  if (matches === undefined) {
    throw new MalformedMessageError(
      `Encrypted data key #${index + 1} is an "${KMS_RSA_PROVIDER_ID}" key, but its provider info ${quoteIdentifier(recorded)} is not a KMS key ARN.`,
    )
  }
  return matches
}

/** The configured client (the keyring checked that there is one). */
function clientOf(config: KmsRsaDecryptConfig): KmsClientLike {
  return config.kmsClient ?? clientFor('KmsRsaKeyring', config.clientSupplier as KmsClientSupplier, config.region)
}

async function unwrap(
  config: KmsRsaDecryptConfig,
  edk: EncryptedDataKey,
  suite: AlgorithmSuite,
  expectedDigest: Uint8Array,
  backend: CryptoBackend,
  signal: AbortSignal | undefined,
): Promise<Uint8Array> {
  const { keyId, encryptionAlgorithm } = config
  let response: unknown
  try {
    // spec: KeyId = configured identifier, the EDK ciphertext, grant tokens, EncryptionAlgorithm = configured value
    response = await sendDecrypt(clientOf(config), {
      KeyId: keyId,
      CiphertextBlob: edk.ciphertext,
      GrantTokens: [...config.grantTokens],
      EncryptionAlgorithm: encryptionAlgorithm,
    }, signal)
  } catch (error) {
    if (error instanceof ConfigurationError) throw error
    throw new KeyringError(`KMS Decrypt with ${keyId} (${encryptionAlgorithm}) failed: ${sentence(namedErrorMessage(error))}`, { cause: error })
  }
  const { KeyId, Plaintext } = (response ?? {}) as Record<string, unknown>
  if (KeyId !== keyId) {
    if (isBytes(Plaintext)) Plaintext.fill(0)
    throw new KeyringError(`KMS Decrypt answered for KeyId ${quoteIdentifier(KeyId)}, not the requested ${keyId}.`)
  }
  const expectedLength = CONTEXT_DIGEST_LENGTH + suite.keyLength
  if (!isBytes(Plaintext) || Plaintext.length !== expectedLength) {
    if (isBytes(Plaintext)) Plaintext.fill(0)
    throw new KeyringError(
      `KMS Decrypt with ${keyId} returned ${isBytes(Plaintext) ? byteCount(Plaintext.length) : 'no plaintext'}; ` +
        `an ${KMS_RSA_PROVIDER_ID} data key for this suite is ${expectedLength} bytes (48-byte context digest and ${suite.keyLength}-byte key).`,
    )
  }
  try {
    // spec: "the first 48 bytes is the encryption context digest"; it must equal the digest of this message's context.
    if (!backend.timingSafeEqual(Plaintext.subarray(0, CONTEXT_DIGEST_LENGTH), expectedDigest)) {
      throw new KeyringError(
        `The data key for ${keyId} is bound to a different encryption context than this message's: the context was altered or not reproduced.`,
      )
    }
    // A copy: a client of one's own may answer with a Node Buffer, whose slice() is a view of what is zeroed below.
    return copyBytes(Plaintext.subarray(CONTEXT_DIGEST_LENGTH))
  } finally {
    Plaintext.fill(0)
  }
}
