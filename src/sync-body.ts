// The one-shot body loop for synchronous keys (node:crypto), with no promise per frame. The Node backend
// brings it (CryptoBackend.sealBody), so a browser bundle, whose WebCrypto keys are asynchronous, does not
// carry it; async-body.ts holds the loop for asynchronous keys.
import type { CryptoBackend } from './backend/types.js'
import type { EncryptionSession } from './encrypt.js'
import { writeFooter } from './format/footer.js'
import { messageBuffer } from './frames.js'
import type { EncryptResult } from './types.js'

/** Feed the signer in slices of this size: large enough to amortize calls, small enough to stay in cache. */
const SIGN_CHUNK = 256 * 1024

/**
 * Seal the final frame and, for signing suites, sign everything from `unsignedFrom` on and write the
 * footer. Returns the offset after the message. Shared by one-shot and streaming encrypt.
 */
export function finishMessage(session: EncryptionSession, finalPlaintext: Uint8Array, out: Uint8Array, offset: number, unsignedFrom: number): number {
  const end = session.sealer.sealFinal(finalPlaintext, out, offset)
  const { signer } = session
  if (signer === undefined) return end
  signer.update(out.subarray(unsignedFrom, end))
  return writeFooter(signer.sign(), out, end)
}

/** Seal the body (frames, then the final frame and footer) after `beginEncryption` wrote the header. */
export function sealBody(backend: CryptoBackend, session: EncryptionSession, input: Uint8Array): EncryptResult {
  const { headerBytes, sealer, signer } = session
  const frameLength = sealer.frameLength
  const out = messageBuffer(backend, session, input.length)
  let offset = headerBytes.length
  let signedUpTo = offset
  let position = 0
  while (input.length - position >= frameLength) {
    offset = sealer.sealRegular(input.subarray(position, position + frameLength), out, offset)
    position += frameLength
    if (signer !== undefined && offset - signedUpTo >= SIGN_CHUNK) {
      signer.update(out.subarray(signedUpTo, offset))
      signedUpTo = offset
    }
  }
  offset = finishMessage(session, input.subarray(position), out, offset, signedUpTo)
  out.fill(0, offset) // unused footer room: uninitialized memory must not ride along in ciphertext.buffer
  return { ciphertext: offset === out.length ? out : out.subarray(0, offset), header: session.header }
}
