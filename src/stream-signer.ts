// The ECDSA signature of an encrypted stream (spec: data-format/message-footer.md). Its bytes are hashed on the
// backend's hashing thread when one runs (Node: backend/signing-thread.ts), so the stream's own thread only
// encrypts; otherwise here, as they pass. (Decrypted streams verify here: on two vCPUs, handing their bytes to
// the thread measured 10-20% slower at frame 4096, the decrypting thread and the hashing one competing.)
import type { CryptoBackend, MaybePromise } from './backend/types.js'
import type { EncryptionSession } from './encrypt.js'
import { InternalError } from './errors.js'

/** Signs the bytes of one encrypted stream. */
export interface StreamSigner {
  /** True when `finish` answers with a promise: the bytes are hashed on another thread. */
  readonly async: boolean
  /** The next bytes of the message. A promise: the hashing thread has fallen behind, wait before the next chunk. */
  update(bytes: Uint8Array): Promise<void> | undefined
  /** The DER signature over the header and every byte given. */
  finish(): MaybePromise<Uint8Array>
  /** Give the job up: the stream failed or was cancelled. */
  abandon(): void
}

/** The signer of an encrypted stream of a signing suite (the header already signed), or undefined for other suites. */
export function streamSigner(backend: CryptoBackend, session: EncryptionSession, declaredLength: number | undefined): StreamSigner | undefined {
  const { signing, signer } = session
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
  // Streams need incremental signing; beginEncryption refused the suite otherwise. This signer has the header.
  const inline = signer as NonNullable<typeof signer>
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
