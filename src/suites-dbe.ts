// The AWS Database Encryption SDK's algorithm suites, for DynamoDB items. A module of their own, so that
// applications that never encrypt items (browser bundles above all) do not carry them.
import { UnsupportedAlgorithmSuiteError } from './errors.js'
import { hex, type AlgorithmSuite } from './suites.js'

/**
 * The AWS Database Encryption SDK's suites, for DynamoDB items (spec: framework/algorithm-suites.md, "DBE"):
 * AES-256-GCM, HKDF-SHA512 with key commitment, HMAC-SHA384 recipient tags, and for 0x6701 an ECDSA P-384
 * signature. Apart from the message suites: a message never uses them, and encrypt/decrypt refuse them.
 */
const dbeSuitesById: ReadonlyMap<number, AlgorithmSuite> = new Map(
  [
    { id: 0x6700, name: 'DBE.ALG_AES_256_GCM_HKDF_SHA512_COMMIT_KEY_SYMSIG_HMAC_SHA384' },
    {
      id: 0x6701,
      name: 'DBE.ALG_AES_256_GCM_HKDF_SHA512_COMMIT_KEY_ECDSA_P384_SYMSIG_HMAC_SHA384',
      signature: { curve: 'P-384', hash: 'sha384' } as const,
    },
  ].map((row) => {
    const suite: AlgorithmSuite = Object.freeze({
      ...row,
      messageFormatVersion: 1,
      keyLength: 32,
      ivLength: 12,
      tagLength: 16,
      kdfHash: 'sha512',
      committing: true,
      suiteDataLength: 32,
      edkWrapping: 'intermediate',
      symmetricSignature: 'hmac-sha384',
    })
    return [row.id, suite] as const
  }),
)

/** The DynamoDB item suites, 0x6700 and 0x6701. */
export const DBE_ALGORITHM_SUITE_IDS: readonly number[] = [...dbeSuitesById.keys()]

/** Look up a DynamoDB item suite; anything else is an unsupported suite. */
export function dbeSuite(id: number): AlgorithmSuite {
  const suite = dbeSuitesById.get(id)
  if (suite === undefined) {
    throw new UnsupportedAlgorithmSuiteError(`${hex(id)} is not a DynamoDB item suite (0x6700 or 0x6701).`)
  }
  return suite
}
