import type { CryptoBackend } from '../backend/types.js'
import { ConfigurationError, KeyringError } from '../errors.js'
import type { EncryptionMaterials, Keyring } from '../types.js'
import { LONE_SURROGATE_PROBLEM, loneSurrogateAt } from '../format/bytes.js'
import { quoteIdentifier } from '../quote.js'

/** Reserved for the AWS KMS keyrings (spec: framework/raw-aes-keyring.md#initialization). */
const KMS_PROVIDER_ID = 'aws-kms'

export function validateKeyName(keyring: string, keyNamespace: unknown, keyName: unknown): void {
  if (typeof keyNamespace !== 'string' || keyNamespace === '') {
    throw new ConfigurationError(`${keyring} keyNamespace must be a non-empty string.`)
  }
  if (keyNamespace.startsWith(KMS_PROVIDER_ID)) {
    throw new ConfigurationError(`${keyring} keyNamespace must not start with "${KMS_PROVIDER_ID}"; that provider ID belongs to the KMS keyrings.`)
  }
  if (typeof keyName !== 'string' || keyName === '') {
    throw new ConfigurationError(`${keyring} keyName must be a non-empty string.`)
  }
  // The names are stored as UTF-8 and matched on decrypt: text UTF-8 changes would not match its own messages.
  for (const [option, name] of [['keyNamespace', keyNamespace], ['keyName', keyName]] as const) {
    if (loneSurrogateAt(name) >= 0) throw new ConfigurationError(`${keyring} ${option} ${quoteIdentifier(name)} ${LONE_SURROGATE_PROBLEM}.`)
  }
}

export function describeKeyring(keyring: { keyNamespace: string; keyName: string }): string {
  return `"${keyring.keyNamespace}/${keyring.keyName}"`
}

/** The generator step: make a fresh data key if no keyring before this one did. */
export function ensureDataKey(materials: EncryptionMaterials, backend: CryptoBackend): EncryptionMaterials {
  const plaintextDataKey = dataKeyOf(materials, backend)
  return plaintextDataKey === materials.plaintextDataKey ? materials : Object.assign({}, materials, { plaintextDataKey })
}

/**
 * The generator step and what follows it: `wrap` gets the materials with a data key. A key made here is zeroed
 * when `wrap` fails, so it does not outlive the failed encrypt; a key the materials brought belongs to whoever made it.
 */
export async function wrapDataKey(
  materials: EncryptionMaterials,
  backend: CryptoBackend,
  wrap: (withKey: EncryptionMaterials) => Promise<EncryptionMaterials>,
): Promise<EncryptionMaterials> {
  const withKey = ensureDataKey(materials, backend)
  try {
    return await wrap(withKey)
  } catch (error) {
    if (withKey !== materials) withKey.plaintextDataKey?.fill(0)
    throw error
  }
}

/** The data key a keyring wraps: the one already in the materials (its length checked), or a fresh one. */
export function dataKeyOf(materials: EncryptionMaterials, backend: CryptoBackend): Uint8Array {
  const { plaintextDataKey, suite } = materials
  if (plaintextDataKey === undefined) return backend.randomBytes(suite.keyLength)
  if (plaintextDataKey.length !== suite.keyLength) {
    throw new KeyringError(`The data key is ${plaintextDataKey.length} bytes; the suite needs ${suite.keyLength}.`)
  }
  return plaintextDataKey
}

export function isKeyring(value: unknown): value is Keyring {
  return typeof (value as Keyring | null)?.onEncrypt === 'function' && typeof (value as Keyring).onDecrypt === 'function'
}
