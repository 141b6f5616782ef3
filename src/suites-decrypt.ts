// The commitment policy's rule for decrypting. A module of its own so that a browser page that only encrypts
// does not load it with suites.ts: only the decrypt code, fetched on demand, imports it.
import { CommitmentPolicyError } from './errors.js'
import { hex, type AlgorithmSuite } from './suites.js'
import type { CommitmentPolicy } from './types.js'

// spec: framework/commitment-policy.md
export function assertDecryptAllowed(suite: AlgorithmSuite, policy: CommitmentPolicy): void {
  if (policy === 'REQUIRE_ENCRYPT_REQUIRE_DECRYPT' && !suite.committing) {
    throw new CommitmentPolicyError(
      `The message uses non-committing suite ${hex(suite.id)}, which commitment policy ${policy} refuses to decrypt. ` +
        `Use 'REQUIRE_ENCRYPT_ALLOW_DECRYPT' to read messages written without key commitment.`,
    )
  }
}
