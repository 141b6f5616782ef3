/**
 * kms-envelope: client-side envelope encryption in the AWS Encryption SDK message format.
 * This entry runs on node:crypto.
 *
 * @example
 * ```ts
 * import { encrypt, decrypt, RawAesKeyring } from 'kms-envelope'
 * const keyring = new RawAesKeyring({ keyNamespace: 'app', keyName: 'key-1', wrappingKey })
 * const { ciphertext } = await encrypt(keyring, 'hello', { encryptionContext: { purpose: 'demo' } })
 * const { plaintext, header } = await decrypt(keyring, ciphertext, { encryptionContext: { purpose: 'demo' } })
 * ```
 */
import { abortable, ownSignal } from './abort.js'
import { nodeBackend } from './backend/node.js'
import { isAsyncIterable } from './async-iterable.js'
import { collectThrough } from './collect.js'
import { decryptWith } from './decrypt.js'
import { setUpErrorClasses } from './error-copies.js'
import * as errors from './errors.js'
import { ENCRYPT_OPTIONS, encryptWith } from './encrypt.js'
import { nodeOnly, withNodeAdapter, type EnvelopeTransform, type NodeEnvelopeStream } from './node-stream.js'
import type { DecryptStreamOptions, EncryptStreamOptions } from './stream.js'
import { optionsObject } from './option-names.js'
import { decryptDriver, decryptIterableWith } from './stream-decrypt.js'
import { encryptDriver, encryptStreamWith } from './stream-encrypt.js'
import type { DecryptOptions, DecryptResult, EncryptOptions, EncryptResult, Keyring, MaterialsManager } from './types.js'

/**
 * Encrypt `plaintext` (bytes, a string encoded as UTF-8, or an async iterable of byte chunks such as a
 * Node Readable) into one message. The default suite is 0x0578 (AES-256-GCM, key commitment, ECDSA P-384).
 *
 * @example
 * ```ts
 * const { ciphertext, header } = await encrypt(keyring, 'hello', { encryptionContext: { tenant: 'acme' } })
 * ```
 */
export async function encrypt(
  keyringOrCmm: Keyring | MaterialsManager,
  plaintext: Uint8Array | string | AsyncIterable<Uint8Array>,
  options?: EncryptOptions,
): Promise<EncryptResult> {
  const signal = ownSignal(options)
  if (signal == null) return encryptNow(keyringOrCmm, plaintext, options)
  // Input in pieces goes through a stream, which has the signal too; the call ends at once all the same.
  return abortable(signal, 'encrypt', () => encryptNow(keyringOrCmm, plaintext, options))
}

function encryptNow(keyringOrCmm: unknown, plaintext: Uint8Array | string | AsyncIterable<Uint8Array>, options: EncryptOptions | undefined): Promise<EncryptResult> {
  if (!isAsyncIterable(plaintext)) return encryptWith(nodeBackend, keyringOrCmm, plaintext, options)
  // The stream takes more options than one-shot encrypt: check against encrypt's own first.
  const checked = optionsObject(options, 'encrypt', ENCRYPT_OPTIONS)
  return collectThrough(plaintext, () => encryptStreamWith(nodeBackend, keyringOrCmm, checked)).then(({ output, header }) => ({ ciphertext: output, header }))
}

/**
 * Decrypt one complete message (bytes, or an async iterable of byte chunks). Returns plaintext only after
 * the header, every frame and (for signing suites) the signature verify; bytes after the message are an error.
 *
 * @example
 * ```ts
 * const { plaintext, header } = await decrypt(keyring, ciphertext, { encryptionContext: { tenant: 'acme' } })
 * ```
 */
export async function decrypt(
  keyringOrCmm: Keyring | MaterialsManager,
  ciphertext: Uint8Array | AsyncIterable<Uint8Array>,
  options?: DecryptOptions,
): Promise<DecryptResult> {
  const signal = ownSignal(options)
  if (signal == null) return decryptNow(keyringOrCmm, ciphertext, options)
  return abortable(signal, 'decrypt', () => decryptNow(keyringOrCmm, ciphertext, options), (late) => late.plaintext.fill(0))
}

function decryptNow(keyringOrCmm: unknown, ciphertext: Uint8Array | AsyncIterable<Uint8Array>, options: DecryptOptions | undefined): Promise<DecryptResult> {
  if (isAsyncIterable(ciphertext)) return decryptIterableWith(nodeBackend, keyringOrCmm, ciphertext, options)
  return decryptWith(nodeBackend, keyringOrCmm, ciphertext, options)
}

/**
 * A `TransformStream` that encrypts the plaintext written to it into one message; `.header` resolves when
 * the header is written and `.toNode()` gives a Node `Transform` for `stream.pipeline`.
 *
 * @example
 * ```ts
 * await pipeline(createReadStream('in'), encryptStream(keyring).toNode(), createWriteStream('in.enc'))
 * ```
 */
export function encryptStream(keyringOrCmm: Keyring | MaterialsManager, options?: EncryptStreamOptions): NodeEnvelopeStream {
  return withNodeAdapter(encryptDriver(nodeBackend, keyringOrCmm, options))
}

/**
 * A `TransformStream` that decrypts one message written to it. Each frame's plaintext is emitted once its
 * tag verifies; for signing suites the final frame is held until the signature verifies (see README).
 *
 * @example
 * ```ts
 * const plaintext = response.body!.pipeThrough(decryptStream(keyring, { maxBodySize: 1 << 30 }))
 * ```
 */
export function decryptStream(keyringOrCmm: Keyring | MaterialsManager, options?: DecryptStreamOptions): NodeEnvelopeStream {
  return withNodeAdapter(decryptDriver(nodeBackend, keyringOrCmm, options))
}

/**
 * A Node `Transform` that encrypts into one message, for `stream.pipeline`: `encryptStream(...).toNode()`
 * without a Web Stream behind it (less memory and setup per stream). `.header` resolves when the header is
 * written.
 *
 * @example
 * ```ts
 * await pipeline(createReadStream('in'), encryptNodeStream(keyring), createWriteStream('in.enc'))
 * ```
 */
export function encryptNodeStream(keyringOrCmm: Keyring | MaterialsManager, options?: EncryptStreamOptions): EnvelopeTransform {
  return nodeOnly(encryptDriver(nodeBackend, keyringOrCmm, options))
}

/**
 * A Node `Transform` that decrypts one message: `decryptStream(...).toNode()` without a Web Stream behind it.
 *
 * @example
 * ```ts
 * await pipeline(createReadStream('in.enc'), decryptNodeStream(keyring, { unsignedOnly: true }), createWriteStream('in'))
 * ```
 */
export function decryptNodeStream(keyringOrCmm: Keyring | MaterialsManager, options?: DecryptStreamOptions): EnvelopeTransform {
  return nodeOnly(decryptDriver(nodeBackend, keyringOrCmm, options))
}

setUpErrorClasses(errors)

export * from './exports.js'
export type { EnvelopeTransform, NodeEnvelopeStream } from './node-stream.js'
