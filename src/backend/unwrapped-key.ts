import { KeyringError } from '../errors.js'
import { byteCount } from '../byte-count.js'

/**
 * The RSA-unwrapped data key must have the suite's length; a wrong one is zeroed and refused.
 * Shared by every backend's OAEP decryption.
 */
export function requireUnwrappedKeyLength(plaintext: Uint8Array, expectedLength: number): Uint8Array {
  if (plaintext.length !== expectedLength) {
    plaintext.fill(0)
    throw new KeyringError(`The RSA-wrapped data key is ${byteCount(plaintext.length)}; the suite needs ${expectedLength}.`)
  }
  return plaintext
}
