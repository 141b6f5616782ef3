import { isAsyncAead, type AeadKey, type AsyncAeadKey, type CryptoBackend } from './backend/types.js'
import type { EncryptionSession } from './encrypt.js'
import type { Bytes } from './types.js'
import { LimitExceededError } from './errors.js'
import { setUint32At } from './format/bytes.js'
import { MAX_SIGNATURE_LENGTH } from './format/footer.js'
import {
  BodyAad,
  FINAL_FRAME_MARKER,
  FINAL_FRAME_OVERHEAD,
  IV_LENGTH,
  MAX_SEQUENCE_NUMBER,
  REGULAR_FRAME_OVERHEAD,
  writeSequenceIv,
} from './format/frame.js'

/**
 * The framed body, one frame at a time, with no I/O: callers hand in plaintext and an output buffer.
 * One-shot and streaming encryption share it. spec: data-format/message-body.md#framed-data
 *
 * One layout engine for both kinds of cipher: the sequence number, IV, lengths and AAD are computed here
 * for both; only the cipher call differs. A synchronous key (node:crypto) is driven through `sealRegular`
 * and `sealFinal` (functions beside the class, so that the browser's first load, whose keys are all
 * asynchronous, leaves them out), with no promise per frame; an asynchronous one (WebCrypto, `async` is true)
 * through the `…Async` methods, which lay a frame out at once and hand back the pending cipher call.
 */
export class FrameSealer {
  private sequenceNumber = 1
  /** For `sealRegular`, made on first use: a small message has only a final frame. */
  regularAad: BodyAad | undefined
  /** Whether the key answers asynchronously: the caller must use the `…Async` methods. */
  readonly async: boolean

  constructor(
    readonly aead: AeadKey | AsyncAeadKey,
    readonly messageId: Uint8Array,
    readonly frameLength: number,
  ) {
    this.async = isAsyncAead(aead)
  }

  /** Zero the message key (the message is done, or abandoned); the sealer must not be used afterwards. */
  dispose(): void {
    this.aead.dispose?.()
  }

  /** Body bytes for a plaintext: full frames, then a final frame holding the rest (possibly empty). */
  static bodyLength(plaintextLength: number, frameLength: number): number {
    const regularFrames = Math.floor(plaintextLength / frameLength)
    if (regularFrames + 1 > MAX_SEQUENCE_NUMBER) {
      throw new LimitExceededError(
        `A ${plaintextLength}-byte plaintext needs ${regularFrames + 1} frames at frameLength ${frameLength}; a message holds at most ${MAX_SEQUENCE_NUMBER}. Use a larger frameLength.`,
      )
    }
    return regularFrames * (frameLength + REGULAR_FRAME_OVERHEAD) + (plaintextLength % frameLength) + FINAL_FRAME_OVERHEAD
  }

  /**
   * `sealRegular` for an asynchronous key: the frame is laid out now and its cipher call is pushed onto
   * `pending` (the caller awaits them, and keeps `plaintext` unchanged until then). Returns the offset after it.
   */
  sealRegularAsync(plaintext: Uint8Array, out: Uint8Array, offset: number, pending: Promise<unknown>[]): number {
    const sequenceNumber = this.next()
    const ivOffset = writeRegularLayout(out, offset, sequenceNumber)
    // Several frames may be in flight at once, so each has its own AAD.
    const aad = new BodyAad(this.messageId, 'regular').set(sequenceNumber, plaintext.length)
    pending.push((this.aead as AsyncAeadKey).seal(out.subarray(ivOffset, ivOffset + IV_LENGTH), aad, plaintext, out, ivOffset + IV_LENGTH))
    return offset + REGULAR_FRAME_OVERHEAD + plaintext.length
  }

  /** `sealFinal` for an asynchronous key. */
  async sealFinalAsync(plaintext: Uint8Array, out: Uint8Array, offset: number): Promise<number> {
    const { ivOffset, aad } = this.finalLayout(plaintext.length, out, offset)
    await (this.aead as AsyncAeadKey).seal(out.subarray(ivOffset, ivOffset + IV_LENGTH), aad, plaintext, out, ivOffset + IV_LENGTH + 4)
    return offset + FINAL_FRAME_OVERHEAD + plaintext.length
  }

  /** The final frame's header fields and IV, written; its IV's offset and its AAD. */
  finalLayout(length: number, out: Uint8Array, offset: number): { ivOffset: number; aad: Uint8Array } {
    const sequenceNumber = this.next()
    setUint32At(out, offset, FINAL_FRAME_MARKER)
    setUint32At(out, offset + 4, sequenceNumber)
    const ivOffset = offset + 8
    writeSequenceIv(out, ivOffset, sequenceNumber)
    setUint32At(out, ivOffset + IV_LENGTH, length)
    return { ivOffset, aad: new BodyAad(this.messageId, 'final').set(sequenceNumber, length) }
  }

  /** The next frame's sequence number. */
  next(): number {
    if (this.sequenceNumber > MAX_SEQUENCE_NUMBER) throw new LimitExceededError('The message has reached the maximum number of frames.')
    return this.sequenceNumber++
  }
}

/** Write one regular frame of exactly `frameLength` plaintext bytes with a synchronous key; returns the offset after it. */
export function sealRegular(sealer: FrameSealer, plaintext: Uint8Array, out: Uint8Array, offset: number): number {
  const sequenceNumber = sealer.next()
  const ivOffset = writeRegularLayout(out, offset, sequenceNumber)
  sealer.regularAad ??= new BodyAad(sealer.messageId, 'regular')
  const aad = sealer.regularAad.set(sequenceNumber, plaintext.length)
  ;(sealer.aead as AeadKey).seal(out.subarray(ivOffset, ivOffset + IV_LENGTH), aad, plaintext, out, ivOffset + IV_LENGTH)
  return offset + REGULAR_FRAME_OVERHEAD + plaintext.length
}

/** Write the final frame (0 to `frameLength` bytes) with a synchronous key; returns the offset after it. */
export function sealFinal(sealer: FrameSealer, plaintext: Uint8Array, out: Uint8Array, offset: number): number {
  const { ivOffset, aad } = sealer.finalLayout(plaintext.length, out, offset)
  ;(sealer.aead as AeadKey).seal(out.subarray(ivOffset, ivOffset + IV_LENGTH), aad, plaintext, out, ivOffset + IV_LENGTH + 4)
  return offset + FINAL_FRAME_OVERHEAD + plaintext.length
}

/** Sequence number and IV of a regular frame; returns the IV's offset. */
function writeRegularLayout(out: Uint8Array, offset: number, sequenceNumber: number): number {
  setUint32At(out, offset, sequenceNumber)
  writeSequenceIv(out, offset + 4, sequenceNumber)
  return offset + 4
}

/** Bytes to reserve after the body for the footer (its signature length varies by a few bytes). */
export function footerRoom(session: EncryptionSession): number {
  return session.signing === undefined ? 0 : 2 + MAX_SIGNATURE_LENGTH
}

/** The buffer a one-shot encrypt writes its message into, the header already copied in. */
export function messageBuffer(backend: CryptoBackend, session: EncryptionSession, plaintextLength: number): Bytes {
  const { headerBytes, sealer } = session
  const out = backend.allocate(headerBytes.length + FrameSealer.bodyLength(plaintextLength, sealer.frameLength) + footerRoom(session))
  out.set(headerBytes, 0)
  return out
}
