// The one-shot body loop for synchronous keys (node:crypto), with no promise per frame. The Node backend
// brings it (CryptoBackend.sealBody), so a browser bundle, whose WebCrypto keys are asynchronous, does not
// carry it; async-body.ts holds the loop for asynchronous keys.
import type { CryptoBackend, OffThreadSignature } from './backend/types.js'
import type { EncryptionSession } from './encrypt.js'
import { writeFooter } from './format/footer.js'
import { FrameSealer, messageBuffer, sealFinal, sealRegular } from './frames.js'
import type { CurveName } from './suites.js'
import type { Bytes, EncryptResult } from './types.js'

/** Feed the signer in slices of this size: large enough to amortize calls, small enough to stay in cache. */
const SIGN_CHUNK = 256 * 1024
/**
 * Hand another thread the message in slices of this size: it hashes each while the next is written, so a
 * smaller slice leaves less to hash after the last frame, at more hand-offs.
 */
const PUBLISH_CHUNK = 64 * 1024

/**
 * Hands a message's signed part to another thread as it is written (backend/signing-thread.ts on Node), or
 * returns undefined to sign inline.
 */
export type StartSignature = (curve: CurveName, privateKey: unknown, signedLength: number) => OffThreadSignature | undefined

/**
 * Seal the body (frames, then the final frame and footer) after `beginEncryption` wrote the header. With
 * `startSignature`, a signing suite's message may be hashed and signed on another thread while it is written.
 */
export function sealBody(
  backend: CryptoBackend,
  session: EncryptionSession,
  input: Uint8Array,
  startSignature?: StartSignature,
): EncryptResult | Promise<EncryptResult> {
  const { headerBytes, sealer, signing, signer } = session
  const out = messageBuffer(backend, session, input.length)
  if (signing !== undefined && startSignature !== undefined) {
    const signedLength = headerBytes.length + FrameSealer.bodyLength(input.length, sealer.frameLength)
    const offThread = startSignature(signing.curve, signing.privateKey, signedLength)
    if (offThread !== undefined) return sealSignedOffThread(backend, session, signing, input, out, offThread)
  }
  // The inline signer was fed the header when it was made.
  const read = signer === undefined ? undefined : (from: number, to: number): void => signer.update(out.subarray(from, to))
  const end = sealFrames(session, input, out, read, headerBytes.length, SIGN_CHUNK)
  return result(session, out, signer === undefined ? end : writeFooter(signer.sign(), out, end))
}

/**
 * Seal the frames while another thread hashes them (header included), then wait for its signature; when it
 * could not give one, sign inline. The frames are sealed before the first await, within the caller's turn.
 */
async function sealSignedOffThread(
  backend: CryptoBackend,
  session: EncryptionSession,
  signing: NonNullable<EncryptionSession['signing']>,
  input: Uint8Array,
  out: Bytes,
  offThread: OffThreadSignature,
): Promise<EncryptResult> {
  let end: number
  try {
    // After a stall every publish returns false at once, and finish() resolves undefined.
    end = sealFrames(session, input, out, (from, to) => void offThread.publish(out, from, to), 0, PUBLISH_CHUNK)
  } catch (error) {
    offThread.abandon()
    throw error
  }
  let signature = await offThread.finish()
  if (signature === undefined) {
    const { signer } = session
    // The inline signer has the header already; without one (a backend that signs whole messages), sign all.
    if (signer === undefined) signature = await backend.signMessage(signing.curve, signing.privateKey, out.subarray(0, end))
    else {
      signer.update(out.subarray(session.headerBytes.length, end))
      signature = signer.sign()
    }
  }
  return result(session, out, writeFooter(signature, out, end))
}

/**
 * Seal every frame: the regular ones, then the final one. Hands `read` the written bytes from `readFrom` on,
 * in slices of at least `chunk` bytes (the last may be shorter). Returns the offset after the final frame.
 */
function sealFrames(
  session: EncryptionSession,
  input: Uint8Array,
  out: Uint8Array,
  read: ((from: number, to: number) => void) | undefined,
  readFrom: number,
  chunk: number,
): number {
  const { headerBytes, sealer } = session
  const frameLength = sealer.frameLength
  let offset = headerBytes.length
  let readUpTo = readFrom
  let position = 0
  while (input.length - position >= frameLength) {
    offset = sealRegular(sealer, input.subarray(position, position + frameLength), out, offset)
    position += frameLength
    if (read !== undefined && offset - readUpTo >= chunk) {
      read(readUpTo, offset)
      readUpTo = offset
    }
  }
  offset = sealFinal(sealer, input.subarray(position), out, offset)
  read?.(readUpTo, offset)
  return offset
}

function result(session: EncryptionSession, out: Bytes, offset: number): EncryptResult {
  out.fill(0, offset) // unused footer room: uninitialized memory must not ride along in ciphertext.buffer
  return { ciphertext: offset === out.length ? out : out.subarray(0, offset), header: session.header }
}
