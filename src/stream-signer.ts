// The ECDSA signature of an encrypted stream (spec: data-format/message-footer.md). Its bytes are hashed on the
// backend's hashing thread when one runs (Node: backend/signing-thread.ts), so the stream's own thread only
// encrypts; otherwise here, as they pass. (Decrypted streams verify here: on two vCPUs, handing their bytes to
// the thread measured 10-20% slower at frame 4096, the decrypting thread and the hashing one competing.)
import type { CryptoBackend } from './backend/types.js'
import type { EncryptionSession } from './encrypt.js'
import { InternalError } from './errors.js'

interface StreamSignerBase {
  /** The next bytes of the message. A promise: the hashing thread has fallen behind, wait before the next chunk. */
  update(bytes: Uint8Array): Promise<void> | undefined
  /** Give the job up: the stream failed or was cancelled. */
  abandon(): void
}

/**
 * Signs the bytes of one encrypted stream; `finish` gives the DER signature over the header and every byte
 * given, at once (hashed here) or later (hashed on another thread).
 */
export type StreamSigner =
  | (StreamSignerBase & { readonly async: false; finish(): Uint8Array })
  | (StreamSignerBase & { readonly async: true; finish(): Promise<Uint8Array> })

/** The signer of an encrypted stream of a signing suite, already fed the header; undefined for other suites. */
export function streamSigner(backend: CryptoBackend, session: EncryptionSession, declaredLength: number | undefined): StreamSigner | undefined {
  const { signing } = session
  if (signing === undefined) return undefined
  const digest = backend.streamDigest?.(signing.curve)
  if (digest !== undefined) {
    void digest.update(session.headerBytes) // a header never puts the thread far enough behind to wait
    return {
      async: true,
      update: (bytes) => digest.update(bytes),
      async finish() {
        const signature = await digest.sign(signing.privateKey)
        if (signature === undefined) {
          throw new InternalError('The thread signing this stream stopped before it answered: the message is incomplete. Encrypt it again.')
        }
        return signature
      },
      abandon: () => digest.abandon(),
    }
  }
  // Streams need incremental signing: beginEncryption refused the suite otherwise.
  const inline = backend.createSigner(signing.curve, signing.privateKey)
  inline.update(session.headerBytes)
  // Hashed here: a stream that declares itself large, or turns out large, gets the thread ready for the next ones.
  if (declaredLength !== undefined) backend.signedStreamSeen?.(declaredLength)
  let length = 0
  return {
    async: false,
    update(bytes) {
      length += bytes.length
      inline.update(bytes)
      return undefined
    },
    finish() {
      backend.signedStreamSeen?.(length)
      return inline.sign()
    },
    abandon: () => undefined,
  }
}
