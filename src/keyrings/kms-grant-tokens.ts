// Kept apart from kms-common.ts: KmsRsaKeyring needs only this on a browser page's first load, and
// importing kms-common.ts there would bring its KMS calls into that load too.
import { ConfigurationError } from '../errors.js'

/** A keyring's `grantTokens` option: an array of non-empty strings, copied and frozen. */
export function validateGrantTokens(keyring: string, grantTokens: unknown): readonly string[] {
  if (grantTokens === undefined) return []
  if (!Array.isArray(grantTokens) || !grantTokens.every((token) => typeof token === 'string' && token !== '')) {
    throw new ConfigurationError(`${keyring} grantTokens must be an array of non-empty strings.`)
  }
  return Object.freeze([...(grantTokens as string[])])
}
