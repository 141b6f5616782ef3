// The materials a materials manager returns are checked before anything is built from them. The specification
// leaves their validity to the manager (framework/cmm-interface.md: "The CMM MUST ensure that the encryption
// materials returned are valid", and the same for decryption materials); the library's own managers' always
// pass, but a custom manager's could otherwise make a message no one can decrypt (a data key of another length,
// no encrypted data key, a signing suite without its public key), blame the message on decrypt, or fail with a
// platform error.
import type { CryptoBackend } from '../backend/types.js'
import { ConfigurationError, EnvelopeError, KeyringError } from '../errors.js'
import { LONE_SURROGATE_PROBLEM, isAllZero, loneSurrogateAt } from '../format/bytes.js'
import { objectKind, PUBLIC_KEY_CONTEXT_KEY } from '../format/context.js'
import { errorMessage, sentence } from '../error-text.js'
import { quoteIdentifier } from '../quote.js'
import type { AlgorithmSuite } from '../suites.js'
import type { CompleteDecryptionMaterials, CompleteEncryptionMaterials } from '../types.js'
import { isBytes } from '../is-bytes.js'

const SUITE_CHANGED = 'changed the algorithm suite'

/**
 * Throws unless the materials are complete for `suite`, the suite asked for: ConfigurationError when the
 * manager changed the suite, KeyringError naming what else they lack, or for a signing key the backend cannot
 * sign with (`checkSignatureKey`, where it has one). The data key of refused materials is zeroed.
 */
export function checkEncryptionMaterials(materials: CompleteEncryptionMaterials, suite: AlgorithmSuite, backend: CryptoBackend): void {
  refuse(materials, encryptionMaterialsProblem(materials, suite), 'encryption')
  checkKey(materials, suite, backend, materials.signingKey, 'sign')
}

/** As `checkEncryptionMaterials`, for decrypt: the suite, a data key of its length, and the verification key. */
export function checkDecryptionMaterials(materials: CompleteDecryptionMaterials, suite: AlgorithmSuite, backend: CryptoBackend): void {
  refuse(materials, decryptionMaterialsProblem(materials, suite), 'decryption')
  checkKey(materials, suite, backend, materials.verificationKey, 'verify')
}

/**
 * What a materials manager threw, as a typed error: kms-envelope's own errors as they are, anything else (a
 * custom manager's or keyring's own error, or a value that is not an error) as a KeyringError with it as cause.
 */
export function managerFailure(error: unknown): EnvelopeError {
  if (isEnvelopeError(error)) return error
  return new KeyringError(`The materials manager (or a keyring it called) failed: ${sentence(errorMessage(error))}`, { cause: error })
}

/** `instanceof EnvelopeError` for anything a manager or keyring threw: false, not a throw, for a Proxy whose trap throws. */
export function isEnvelopeError(value: unknown): value is EnvelopeError {
  try {
    return value instanceof EnvelopeError
  } catch {
    return false
  }
}

/** The materials `fetch` gets from a manager, or its failure as a typed error (`managerFailure`). */
export async function materialsFrom<T>(fetch: () => Promise<T>): Promise<T> {
  try {
    return await fetch()
  } catch (error) {
    throw managerFailure(error)
  }
}

function refuse(materials: { readonly plaintextDataKey?: unknown } | null, problem: string | undefined, kind: string): void {
  if (problem === undefined) return
  zeroDataKey(materials)
  if (problem === SUITE_CHANGED) throw new ConfigurationError(`The materials manager (or its keyring) ${SUITE_CHANGED}.`)
  throw new KeyringError(`The ${kind} materials ${problem} (from the materials manager, or its keyring).`)
}

/** A signing suite's key, checked where the backend can: a key it cannot use would fail late, or read as a bad signature. */
function checkKey(
  materials: { readonly plaintextDataKey: Uint8Array },
  suite: AlgorithmSuite,
  backend: CryptoBackend,
  key: unknown,
  use: 'sign' | 'verify',
): void {
  if (suite.signature === undefined || backend.checkSignatureKey === undefined) return
  try {
    backend.checkSignatureKey(suite.signature.curve, key, use)
  } catch (error) {
    zeroDataKey(materials)
    throw error
  }
}

/** Zeroes the materials' data key, where they have one that is bytes (refused materials: the caller owns it). */
export function zeroDataKey(materials: { readonly plaintextDataKey?: unknown } | null): void {
  const key = materials?.plaintextDataKey
  if (isBytes(key)) key.fill(0)
}

function commonProblem(materials: CompleteEncryptionMaterials | CompleteDecryptionMaterials, suite: AlgorithmSuite): string | undefined {
  if (typeof materials !== 'object' || materials === null) return 'are missing'
  if (materials.suite?.id === undefined) return 'have no algorithm suite'
  if (materials.suite.id !== suite.id) return SUITE_CHANGED
  const key = materials.plaintextDataKey
  if (!isBytes(key) || key.length !== suite.keyLength) return `have no ${suite.keyLength}-byte plaintext data key`
  if (isAllZero(key)) return 'have a data key of zeros: one used before (kms-envelope zeroes a data key once used) or not random'
  return undefined
}

function encryptionMaterialsProblem(materials: CompleteEncryptionMaterials, suite: AlgorithmSuite): string | undefined {
  const problem = commonProblem(materials, suite)
  if (problem !== undefined) return problem
  const { encryptedDataKeys, encryptionContext } = materials
  if (!Array.isArray(encryptedDataKeys) || encryptedDataKeys.length === 0) return 'have no encrypted data key'
  for (const key of encryptedDataKeys) {
    if (typeof key?.providerId !== 'string' || !isBytes(key.providerInfo) || !isBytes(key.ciphertext)) {
      return 'have an encrypted data key that is not { providerId: string, providerInfo: Uint8Array, ciphertext: Uint8Array }'
    }
    // Keyrings are matched on the provider ID as stored, so one UTF-8 would change could never decrypt.
    if (loneSurrogateAt(key.providerId) >= 0) return `have an encrypted data key whose provider ID ${quoteIdentifier(key.providerId)} ${LONE_SURROGATE_PROBLEM}`
  }
  // A Map's pairs are not its own properties: the header would be written with none of them.
  if (objectKind(encryptionContext) !== 'Object') return `have an encryption context that is ${objectKind(encryptionContext)}, not a plain object of string pairs`
  for (const value of Object.values(encryptionContext)) {
    if (typeof value !== 'string') return 'have an encryption context value that is not a string'
  }
  if (suite.signature !== undefined && (materials.signingKey === undefined || !(PUBLIC_KEY_CONTEXT_KEY in encryptionContext))) {
    return `have no signing key, or no "${PUBLIC_KEY_CONTEXT_KEY}" pair for its public key (a signing suite needs both)`
  }
  if (suite.symmetricSignature !== undefined) {
    const keys: unknown = materials.symmetricSigningKeys
    if (!Array.isArray(keys) || keys.length !== encryptedDataKeys.length) return `have no symmetric signing key per encrypted data key (${NEEDS_INTERMEDIATE_WRAPPING})`
    for (const key of keys) {
      const problem = signingKeyProblem(key, suite)
      if (problem !== undefined) return problem
    }
  }
  return undefined
}

function decryptionMaterialsProblem(materials: CompleteDecryptionMaterials, suite: AlgorithmSuite): string | undefined {
  const problem = commonProblem(materials, suite)
  if (problem !== undefined || suite.symmetricSignature === undefined) return problem
  return signingKeyProblem(materials.symmetricSigningKey, suite)
}

const NEEDS_INTERMEDIATE_WRAPPING = 'the keyrings must support the DynamoDB item suites'

/**
 * A symmetric signing key (the DynamoDB item suites' HMAC key per recipient) that anyone could guess would let anyone
 * write recipient tags, and node:crypto takes an empty key, or a string, without a word.
 */
function signingKeyProblem(key: unknown, suite: AlgorithmSuite): string | undefined {
  if (key === undefined) return `have no symmetric signing key (${NEEDS_INTERMEDIATE_WRAPPING})`
  if (!isBytes(key) || key.length !== suite.keyLength) return `have a symmetric signing key that is not ${suite.keyLength} bytes (a Uint8Array)`
  if (isAllZero(key)) return 'have a symmetric signing key of zeros: one used before (kms-envelope zeroes it once used) or not random'
  return undefined
}
