// The one-shot body loop for synchronous keys (node:crypto), with no promise per frame. The Node backend
// brings it (CryptoBackend.sealBody), so a browser bundle, whose WebCrypto keys are asynchronous, does not
// carry it; async-body.ts holds the loop for asynchronous keys.
import type { OffThreadSignature } from './backend/signing-thread.js'
import type { CryptoBackend, Signer } from './backend/types.js'
import type { EncryptionSession } from './encrypt.js'
import { writeFooter } from './format/footer.js'
import { FrameSealer, messageBuffer } from './frames.js'
import type { CurveName } from './suites.js'
import type { EncryptResult } from './types.js'

/** Feed the signer in slices of this size: large enough to amortize calls, small enough to stay in cache. */
const SIGN_CHUNK = 256 * 1024
/**
 * Hand another thread the message in slices of this size: it hashes each while the next is written, so a
 * smaller slice leaves less to hash after the last frame, at more hand-offs.
 */
const PUBLISH_CHUNK = 64 * 1024

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
  const offThread =
    signing === undefined || startSignature === undefined
      ? undefined
      : startSignature(signing.curve, signing.privateKey, headerBytes.length + FrameSealer.bodyLength(input.length, sealer.frameLength))
  if (offThread === undefined) {
    const end = sealFrames(session, input, out, signer)
    return result(session, out, signer === undefined ? end : writeFooter(signer.sign(), out, end))
  }
  let offset: number
  try {
    offset = sealFrames(session, input, out, offThread)
  } catch (error) {
    offThread.abandon()
    throw error
  }
  return signOffThread(backend, session, out, offset, offThread)
}

/**
 * Seal every frame: the regular ones, then the final one. Feeds `reader`
 * (an inline signer or another thread) the written bytes in slices, from the header on. Returns the offset
 * after the final frame.
 */
function sealFrames(session: EncryptionSession, input: Uint8Array, out: Uint8Array, reader: Signer | OffThreadSignature | undefined): number {
  const { headerBytes, sealer, signer } = session
  const frameLength = sealer.frameLength
  let offset = headerBytes.length
  // The inline signer was fed the header when it was made; another thread reads it from here.
  let readUpTo = reader === signer ? offset : 0
  let position = 0
  const chunk = reader !== undefined && 'publish' in reader ? PUBLISH_CHUNK : SIGN_CHUNK
  const feed = (): void => {
    if (reader === undefined) return
    if ('publish' in reader) {
      if (!reader.publish(out, readUpTo, offset)) reader = undefined
    } else reader.update(out.subarray(readUpTo, offset))
    readUpTo = offset
  }
  while (input.length - position >= frameLength) {
    offset = sealer.sealRegular(input.subarray(position, position + frameLength), out, offset)
    position += frameLength
    if (offset - readUpTo >= chunk) feed()
  }
  offset = sealer.sealFinal(input.subarray(position), out, offset)
  feed()
  return offset
}

/** Wait for the other thread's signature (or, when it could not give one, sign inline) and write the footer. */
async function signOffThread(
  backend: CryptoBackend,
  session: EncryptionSession,
  out: Uint8Array,
  end: number,
  offThread: OffThreadSignature,
): Promise<EncryptResult> {
  let signature = await offThread.finish()
  if (signature === undefined) {
    const { signer, signing } = session
    // The inline signer has the header already; without one (a backend that signs whole messages), sign all.
    if (signer !== undefined) {
      signer.update(out.subarray(session.headerBytes.length, end))
      signature = signer.sign()
    } else if (signing !== undefined) signature = await backend.signMessage(signing.curve, signing.privateKey, out.subarray(0, end))
  }
  return result(session, out, signature === undefined ? end : writeFooter(signature, out, end))
}

function result(session: EncryptionSession, out: Uint8Array, offset: number): EncryptResult {
  out.fill(0, offset) // unused footer room: uninitialized memory must not ride along in ciphertext.buffer
  return { ciphertext: offset === out.length ? out : out.subarray(0, offset), header: session.header }
}
