// AES-GCM decryption on WebCrypto (the browser build's AES keys open through it), loaded on demand: a page that
// only encrypts never downloads it.
import { source } from './webcrypto-rsa.js'

/**
 * Writes the plaintext of `ciphertext` into `out` at `offset`; false, with nothing written, when `tag` does not
 * verify. Any other refusal of WebCrypto's is the platform failing, and rejects: it is not reported as a message
 * that was altered.
 */
export async function webCryptoOpen(
  subtle: SubtleCrypto,
  key: CryptoKey,
  iv: Uint8Array,
  aad: Uint8Array,
  ciphertext: Uint8Array,
  tag: Uint8Array,
  out: Uint8Array,
  offset: number,
): Promise<boolean> {
  const sealed = sealedInput(ciphertext, tag)
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

/** WebCrypto takes ciphertext || tag. The tag follows the ciphertext in every message and wrapped key, so usually no copy is needed. */
function sealedInput(ciphertext: Uint8Array, tag: Uint8Array): Uint8Array {
  if (ciphertext.buffer === tag.buffer && ciphertext.byteOffset + ciphertext.length === tag.byteOffset) {
    return new Uint8Array(ciphertext.buffer, ciphertext.byteOffset, ciphertext.length + tag.length)
  }
  const joined = new Uint8Array(ciphertext.length + tag.length)
  joined.set(ciphertext, 0)
  joined.set(tag, ciphertext.length)
  return joined
}
