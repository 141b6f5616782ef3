// AES-GCM decryption on WebCrypto (the browser build's AES keys open through it), loaded on demand: a page that
// only encrypts never downloads it.
import { source } from './webcrypto-rsa.js'

/**
 * Writes the plaintext of `sealed` (ciphertext and tag) into `out` at `offset`; false, with nothing written, when
 * the tag does not verify. Any other refusal of WebCrypto's is the platform failing, and rejects: it is not
 * reported as a message that was altered.
 */
export async function webCryptoOpen(
  subtle: SubtleCrypto,
  key: CryptoKey,
  iv: Uint8Array,
  aad: Uint8Array,
  sealed: Uint8Array,
  out: Uint8Array,
  offset: number,
): Promise<boolean> {
  let opened: ArrayBuffer
  try {
    opened = await subtle.decrypt({ name: 'AES-GCM', iv: source(iv), additionalData: source(aad), tagLength: 128 }, key, source(sealed))
  } catch (error) {
    if ((error as Error)?.name !== 'OperationError') throw error // a tag that does not verify is an OperationError
    return false
  }
  const plaintext = new Uint8Array(opened)
  out.set(plaintext, offset)
  plaintext.fill(0) // WebCrypto's own copy: a data key (raw AES keyring) must not linger in it
  return true
}
