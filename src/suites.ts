import { CommitmentPolicyError, ConfigurationError, UnsupportedAlgorithmSuiteError } from './errors.js'
import type { CommitmentPolicy } from './types.js'
import { quoteValue } from './quote.js'

export type HashName = 'sha256' | 'sha384' | 'sha512'
export type CurveName = 'P-256' | 'P-384'

/** One row of the suite table (spec: framework/algorithm-suites.md). */
export interface AlgorithmSuite {
  /** The suite's ID, as messages store it (e.g. `0x0578`). */
  readonly id: number
  /** The specification's name, e.g. `ALG_AES256_GCM_HKDF_SHA512_COMMIT_KEY_ECDSA_P384`. */
  readonly name: string
  /** The message format version a message of the suite is written in: 2 for 0x0478 and 0x0578, else 1. */
  readonly messageFormatVersion: 1 | 2
  /** AES key length in bytes, also the data key length. */
  readonly keyLength: 16 | 24 | 32
  /** AES-GCM IV length in bytes. */
  readonly ivLength: 12
  /** AES-GCM tag length in bytes. */
  readonly tagLength: 16
  /** HKDF hash, or undefined for the identity KDF. */
  readonly kdfHash?: HashName
  /** Whether the header commits to the data key (key commitment; 0x0478, 0x0578 and the DynamoDB item suites). */
  readonly committing: boolean
  /** Length of the header's algorithm suite data (the commitment key) in bytes; 0 without commitment. */
  readonly suiteDataLength: 0 | 32
  /** The ECDSA curve and hash of the footer signature, for signing suites (0x0214, 0x0346, 0x0378, 0x0578, 0x6701). */
  readonly signature?: { readonly curve: CurveName; readonly hash: HashName }
  /**
   * How keyrings wrap the data key: `direct` (every ESDK suite), or `intermediate` for suites with a symmetric
   * signature, where each encrypted data key also yields its own signing key
   * (spec: framework/algorithm-suites.md#intermediate-key-wrapping).
   */
  readonly edkWrapping: 'direct' | 'intermediate'
  /** HMAC recipient tags, one per encrypted data key (the DynamoDB item suites only). */
  readonly symmetricSignature?: 'hmac-sha384'
}

type SuiteRow = Omit<AlgorithmSuite, 'ivLength' | 'tagLength' | 'messageFormatVersion' | 'suiteDataLength' | 'committing' | 'edkWrapping'>

const rows: readonly SuiteRow[] = [
  { id: 0x0014, name: 'ALG_AES128_GCM_IV12_TAG16', keyLength: 16 },
  { id: 0x0046, name: 'ALG_AES192_GCM_IV12_TAG16', keyLength: 24 },
  { id: 0x0078, name: 'ALG_AES256_GCM_IV12_TAG16', keyLength: 32 },
  { id: 0x0114, name: 'ALG_AES128_GCM_IV12_TAG16_HKDF_SHA256', keyLength: 16, kdfHash: 'sha256' },
  { id: 0x0146, name: 'ALG_AES192_GCM_IV12_TAG16_HKDF_SHA256', keyLength: 24, kdfHash: 'sha256' },
  { id: 0x0178, name: 'ALG_AES256_GCM_IV12_TAG16_HKDF_SHA256', keyLength: 32, kdfHash: 'sha256' },
  {
    id: 0x0214,
    name: 'ALG_AES128_GCM_IV12_TAG16_HKDF_SHA256_ECDSA_P256',
    keyLength: 16,
    kdfHash: 'sha256',
    signature: { curve: 'P-256', hash: 'sha256' },
  },
  {
    id: 0x0346,
    name: 'ALG_AES192_GCM_IV12_TAG16_HKDF_SHA384_ECDSA_P384',
    keyLength: 24,
    kdfHash: 'sha384',
    signature: { curve: 'P-384', hash: 'sha384' },
  },
  {
    id: 0x0378,
    name: 'ALG_AES256_GCM_IV12_TAG16_HKDF_SHA384_ECDSA_P384',
    keyLength: 32,
    kdfHash: 'sha384',
    signature: { curve: 'P-384', hash: 'sha384' },
  },
  { id: 0x0478, name: 'ALG_AES256_GCM_HKDF_SHA512_COMMIT_KEY', keyLength: 32, kdfHash: 'sha512' },
  {
    id: 0x0578,
    name: 'ALG_AES256_GCM_HKDF_SHA512_COMMIT_KEY_ECDSA_P384',
    keyLength: 32,
    kdfHash: 'sha512',
    signature: { curve: 'P-384', hash: 'sha384' },
  },
]

const COMMITTING_IDS = new Set([0x0478, 0x0578])

const suitesById: ReadonlyMap<number, AlgorithmSuite> = new Map(
  rows.map((row) => {
    const committing = COMMITTING_IDS.has(row.id)
    const suite: AlgorithmSuite = Object.freeze({
      ...row,
      messageFormatVersion: committing ? 2 : 1,
      ivLength: 12,
      tagLength: 16,
      committing,
      suiteDataLength: committing ? 32 : 0,
      edkWrapping: 'direct',
    })
    return [row.id, suite] as const
  }),
)

/**
 * Every supported suite ID, in the order of the table.
 *
 * @example
 * ```ts
 * for (const algorithmSuite of ALGORITHM_SUITE_IDS) console.log(`0x${algorithmSuite.toString(16).padStart(4, '0')}`)
 * ```
 */
export const ALGORITHM_SUITE_IDS: readonly number[] = rows.map((row) => row.id)

/** Default suite for each commitment policy when the caller names none. */
const DEFAULT_SUITE: Record<CommitmentPolicy, number> = {
  REQUIRE_ENCRYPT_REQUIRE_DECRYPT: 0x0578,
  REQUIRE_ENCRYPT_ALLOW_DECRYPT: 0x0578,
  FORBID_ENCRYPT_ALLOW_DECRYPT: 0x0378,
}

/** The default for keyrings that refuse signing suites (KmsRsaKeyring): the policy's default without ECDSA. */
const UNSIGNED_DEFAULT_SUITE: Record<CommitmentPolicy, number> = {
  REQUIRE_ENCRYPT_REQUIRE_DECRYPT: 0x0478,
  REQUIRE_ENCRYPT_ALLOW_DECRYPT: 0x0478,
  FORBID_ENCRYPT_ALLOW_DECRYPT: 0x0178,
}

export const DEFAULT_COMMITMENT_POLICY: CommitmentPolicy = 'REQUIRE_ENCRYPT_REQUIRE_DECRYPT'

/** Look up a suite named by a message. Unknown IDs are a malformed message, not a configuration error. */
export function suiteFromMessage(id: number): AlgorithmSuite {
  const suite = suitesById.get(id)
  if (suite === undefined) {
    throw new UnsupportedAlgorithmSuiteError(`The message uses unknown algorithm suite ${hex(id)}.`)
  }
  return suite
}

/** Look up a suite named by a caller. */
export function suiteFromOption(id: unknown): AlgorithmSuite {
  const suite = typeof id === 'number' ? suitesById.get(id) : undefined
  if (suite === undefined) {
    throw new ConfigurationError(
      `algorithmSuite must be one of ${ALGORITHM_SUITE_IDS.map(hex).join(', ')}; got ${typeof id === 'number' ? hex(id) : quoteValue(id)}.`,
    )
  }
  return suite
}

const POLICIES: readonly CommitmentPolicy[] = Object.keys(DEFAULT_SUITE) as CommitmentPolicy[]

export function commitmentPolicyFromOption(policy: unknown): CommitmentPolicy {
  if (policy === undefined) return DEFAULT_COMMITMENT_POLICY
  if (typeof policy === 'string' && (POLICIES as readonly string[]).includes(policy)) return policy as CommitmentPolicy
  throw new ConfigurationError(`commitmentPolicy must be one of ${POLICIES.join(', ')}; got ${quoteValue(policy)}.`)
}

/**
 * The suite to encrypt with: the caller's, checked against the policy, or the policy's default (its
 * unsigned counterpart when the keyring refuses signing suites).
 */
export function suiteForEncrypt(requested: number | undefined, policy: CommitmentPolicy, unsignedDefault = false): AlgorithmSuite {
  const defaults = unsignedDefault ? UNSIGNED_DEFAULT_SUITE : DEFAULT_SUITE
  const suite = requested === undefined ? suiteFromOption(defaults[policy]) : suiteFromOption(requested)
  assertEncryptAllowed(suite, policy)
  return suite
}

// spec: framework/commitment-policy.md (the decrypt side is in suites-decrypt.ts)
export function assertEncryptAllowed(suite: AlgorithmSuite, policy: CommitmentPolicy): void {
  const mustCommit = policy !== 'FORBID_ENCRYPT_ALLOW_DECRYPT'
  if (suite.committing !== mustCommit) {
    throw new CommitmentPolicyError(
      mustCommit
        ? `Commitment policy ${policy} requires a committing suite (0x0478 or 0x0578) to encrypt; ${hex(suite.id)} does not commit to its key.`
        : `Commitment policy ${policy} forbids committing suites; ${hex(suite.id)} commits. Choose a non-committing suite.`,
    )
  }
}

export function hex(id: number): string {
  return `0x${id.toString(16).padStart(4, '0')}`
}
