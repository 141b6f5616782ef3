import type { CryptoBackend, RsaPadding } from '../backend/types.js'
import { ConfigurationError, UnsupportedOperationError } from '../errors.js'

/**
 * A RawRsaKeyring's publicKey and privateKey, given together, must be one pair: else the keyring writes messages
 * that its own private key cannot decrypt. Compared where the backend can (Node), else told by wrapping a random
 * value and unwrapping it. (It imports nothing the browser's first load would then have to hold: `keyring` is
 * the keyring's description, and the probe is compared here.)
 */
export async function checkRsaPair(backend: CryptoBackend, keyring: string, padding: RsaPadding, publicKey: unknown, privateKey: unknown): Promise<void> {
  let paired = backend.rsaKeysArePair?.(publicKey, privateKey)
  if (paired === undefined) {
    const probe = backend.randomBytes(32)
    const wrapped = await backend.rsaEncrypt(publicKey, padding, probe)
    try {
      const unwrapped = await backend.rsaDecrypt(privateKey, padding, wrapped, probe.length)
      paired = unwrapped.length === probe.length && unwrapped.every((byte, index) => byte === probe[index])
    } catch (error) {
      // An unreadable private key says so; a failed unwrap (an error of any other kind) is the answer.
      if (error instanceof ConfigurationError || error instanceof UnsupportedOperationError) throw error
      paired = false
    }
  }
  if (!paired) {
    throw new ConfigurationError(
      `RawRsaKeyring ${keyring}: its publicKey and privateKey are not one key pair, so the data keys it wraps would not decrypt with its privateKey.`,
    )
  }
}
