/**
 * kms-envelope for browsers (`kms-envelope/browser`, and the `browser` condition of `kms-envelope`): the same
 * API as the Node entry on WebCrypto, with no Node built-ins, no `Buffer` and no AWS SDK code unless a KMS
 * keyring calls KMS. @noble code loads only where WebCrypto cannot do the job (AES-192, pages without
 * `crypto.subtle`).
 *
 * Signing suites (0x0214, 0x0346, 0x0378, 0x0578) sign and verify with WebCrypto one-shot; streams hash
 * incrementally and sign or verify with @noble/curves, loaded on the first signed stream (WebCrypto signs
 * whole messages only). RSA PKCS1 padding is Node-only. Encrypting with `KmsRsaKeyring` needs only the KMS
 * key's public half.
 *
 * @example
 * ```ts
 * import { encrypt, KmsRsaKeyring } from 'kms-envelope/browser'
 * const { keyId, publicKey } = await (await fetch('/public-key')).json()
 * const keyring = new KmsRsaKeyring({ keyId, encryptionAlgorithm: 'RSAES_OAEP_SHA_256', publicKey })
 * const { ciphertext } = await encrypt(keyring, file, { encryptionContext: { purpose: 'upload' } }) // suite 0x0478
 * ```
 */
import { webCryptoBackend } from './backend/webcrypto.js'
import { isAsyncIterable } from './async-iterable.js'
import { loadOnDemand, onDemandLoaded } from './load-on-demand.js'
import { decryptWith } from './decrypt.js'
import { DECRYPT_OPTIONS, decryptionSettings } from './open-header.js'
import { optionsObject } from './option-names.js'
import { encryptWith } from './encrypt.js'
import type { DecryptStreamOptions, EncryptStreamOptions, EnvelopeStream } from './stream.js'
import { decryptStreamWith } from './stream-decrypt.js'
import { encryptStreamWith } from './stream-encrypt.js'
import type { DecryptOptions, DecryptResult, EncryptOptions, EncryptResult, Keyring, MaterialsManager } from './types.js'
import { isBytes } from './is-bytes.js'

/** One-shot input that arrives in pieces: an async iterable, or a `ReadableStream` (in Safari, not async iterable). */
function inPieces(input: unknown): input is AsyncIterable<unknown> | ReadableStream<unknown> {
  return isAsyncIterable(input) || (typeof ReadableStream == 'function' && input instanceof ReadableStream)
}

/**
 * One-shot plaintext as WebCrypto takes it: it refuses views of a SharedArrayBuffer (which a cross-origin-isolated
 * page may hand in) and of a resizable ArrayBuffer, so those bytes are copied, at the call: a resize after it does
 * not change what is encrypted. A view of a detached buffer is empty: it is passed on, and refused as detached; an
 * empty view of a resizable one too, which WebCrypto's refusal then reports as such (resizableRefused). Decrypt,
 * outside the first load, copies in decryptWith.
 */
function unshared<T>(input: T): T {
  const buffer = (input as Uint8Array)?.buffer as (ArrayBufferLike & { resizable?: boolean }) | undefined
  return isBytes(input) && (!(buffer instanceof ArrayBuffer) || (buffer.resizable && input.length > 0)) ? (new Uint8Array(input) as T) : input
}

/**
 * Encrypt `plaintext` (bytes, a string encoded as UTF-8, or an async iterable or `ReadableStream` of byte chunks,
 * gathered first) into one message. The default suite is 0x0578 (0x0478 with a `KmsRsaKeyring`).
 *
 * @example
 * ```ts
 * const { ciphertext } = await encrypt(keyring, new Uint8Array(await file.arrayBuffer()), { encryptionContext: { purpose: 'upload' } })
 * ```
 */
export async function encrypt(
  keyringOrCmm: Keyring | MaterialsManager,
  plaintext: Uint8Array | string | AsyncIterable<Uint8Array> | ReadableStream<Uint8Array>,
  options?: EncryptOptions,
): Promise<EncryptResult> {
  const pieces = inPieces(plaintext)
  if (!pieces && options?.signal == null) return encryptWith(webCryptoBackend, keyringOrCmm, unshared(plaintext), options)
  // Input in pieces, or a signal: through code loaded on demand (gather.ts), which a page that passes neither never downloads.
  return (await loadOnDemand()).oneShot('encrypt', plaintext, pieces, options, (input) =>
    encryptWith(webCryptoBackend, keyringOrCmm, unshared(input as Uint8Array | string), options),
  )
}

/**
 * Decrypt one complete message (bytes, or an async iterable or `ReadableStream` of byte chunks, gathered
 * first). Returns plaintext only after the header, every frame and (for signing suites) the signature verify.
 *
 * @example
 * ```ts
 * const { plaintext, header } = await decrypt(keyring, ciphertext, { encryptionContext: { purpose: 'upload' } })
 * ```
 */
export async function decrypt(
  keyringOrCmm: Keyring | MaterialsManager,
  ciphertext: Uint8Array | AsyncIterable<Uint8Array> | ReadableStream<Uint8Array>,
  options?: DecryptOptions,
): Promise<DecryptResult> {
  // decryptWith copies a ciphertext on a shared or resizable buffer, whose views WebCrypto refuses.
  const pieces = inPieces(ciphertext)
  if (!pieces && options?.signal == null) return decryptWith(webCryptoBackend, keyringOrCmm, ciphertext, options)
  // The options are checked before any input is read: maxBodySize bounds how much is gathered.
  const { maxBodySize } = decryptionSettings(optionsObject(options, 'decrypt', DECRYPT_OPTIONS))
  return (onDemandLoaded() ?? (await loadOnDemand())).oneShot(
    'decrypt',
    ciphertext,
    pieces,
    options,
    (input) => decryptWith(webCryptoBackend, keyringOrCmm, input as Uint8Array, options),
    (late) => late.plaintext.fill(0),
    maxBodySize,
  )
}

/**
 * A `TransformStream` that encrypts the plaintext written to it into one message; `.header` resolves when
 * the header is written. Signing suites hash incrementally and sign with @noble/curves (loaded on demand).
 *
 * @example
 * ```ts
 * const encrypted = file.stream().pipeThrough(encryptStream(keyring, { algorithmSuite: 0x0478 }))
 * ```
 */
export function encryptStream(keyringOrCmm: Keyring | MaterialsManager, options?: EncryptStreamOptions): EnvelopeStream {
  return encryptStreamWith(webCryptoBackend, keyringOrCmm, options)
}

/**
 * A `TransformStream` that decrypts one message written to it; each frame's plaintext is emitted once its
 * tag verifies. A signed message's signature is checked at its end (incrementally, with @noble/curves) and a bad
 * one fails the stream; `unsignedOnly: true` refuses signed messages, as in Node.
 *
 * @example
 * ```ts
 * const plaintext = (await fetch('/download')).body!.pipeThrough(decryptStream(keyring, { unsignedOnly: true }))
 * ```
 */
export function decryptStream(keyringOrCmm: Keyring | MaterialsManager, options?: DecryptStreamOptions): EnvelopeStream {
  return decryptStreamWith(webCryptoBackend, keyringOrCmm, options)
}

export * from './exports.js'
