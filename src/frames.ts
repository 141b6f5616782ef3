import type { AeadKey } from './backend/types.js'
import { FrameAuthenticationError, LimitExceededError } from './errors.js'
import {
  BodyAad,
  FINAL_FRAME_MARKER,
  FINAL_FRAME_OVERHEAD,
  IV_LENGTH,
  MAX_SEQUENCE_NUMBER,
  REGULAR_FRAME_OVERHEAD,
  writeSequenceIv,
  type FrameView,
} from './format/frame.js'

/**
 * The framed body, one frame at a time, with no I/O: callers hand in plaintext and an output buffer.
 * One-shot and streaming encryption share it. spec: data-format/message-body.md#framed-data
 */
export class FrameSealer {
  private sequenceNumber = 1
  /** Made on first use: a small message has only a final frame. */
  private regularAad: BodyAad | undefined

  constructor(
    private readonly aead: AeadKey,
    private readonly messageId: Uint8Array,
    readonly frameLength: number,
  ) {}

  /** Body bytes for a plaintext: full frames, then a final frame holding the rest (possibly empty). */
  static bodyLength(plaintextLength: number, frameLength: number): number {
    const regularFrames = Math.floor(plaintextLength / frameLength)
    if (regularFrames + 1 > MAX_SEQUENCE_NUMBER) {
      throw new LimitExceededError(
        `A ${plaintextLength}-byte plaintext needs ${regularFrames + 1} frames of ${frameLength} bytes; the format allows ${MAX_SEQUENCE_NUMBER}. Use a larger frameLength.`,
      )
    }
    return regularFrames * (frameLength + REGULAR_FRAME_OVERHEAD) + (plaintextLength % frameLength) + FINAL_FRAME_OVERHEAD
  }

  /** Write one regular frame of exactly `frameLength` plaintext bytes; returns the offset after it. */
  sealRegular(plaintext: Uint8Array, out: Uint8Array, offset: number): number {
    const sequenceNumber = this.next()
    writeUint32(out, offset, sequenceNumber)
    const ivOffset = offset + 4
    writeSequenceIv(out, ivOffset, sequenceNumber)
    this.regularAad ??= new BodyAad(this.messageId, 'regular')
    const aad = this.regularAad.set(sequenceNumber, plaintext.length)
    this.aead.seal(out.subarray(ivOffset, ivOffset + IV_LENGTH), aad, plaintext, out, ivOffset + IV_LENGTH)
    return offset + REGULAR_FRAME_OVERHEAD + plaintext.length
  }

  /** Write the final frame (0 to `frameLength` bytes); returns the offset after it. */
  sealFinal(plaintext: Uint8Array, out: Uint8Array, offset: number): number {
    const sequenceNumber = this.next()
    writeUint32(out, offset, FINAL_FRAME_MARKER)
    writeUint32(out, offset + 4, sequenceNumber)
    const ivOffset = offset + 8
    writeSequenceIv(out, ivOffset, sequenceNumber)
    writeUint32(out, ivOffset + IV_LENGTH, plaintext.length)
    const aad = new BodyAad(this.messageId, 'final').set(sequenceNumber, plaintext.length)
    this.aead.seal(out.subarray(ivOffset, ivOffset + IV_LENGTH), aad, plaintext, out, ivOffset + IV_LENGTH + 4)
    return offset + FINAL_FRAME_OVERHEAD + plaintext.length
  }

  private next(): number {
    if (this.sequenceNumber > MAX_SEQUENCE_NUMBER) throw new LimitExceededError('The message has reached the maximum number of frames.')
    return this.sequenceNumber++
  }
}

/** Decrypts frames (or the non-framed body) that have already been read and sequence-checked. */
export class FrameOpener {
  /** Made on first use: a small message has only a final frame. */
  private regularAad: BodyAad | undefined

  constructor(
    private readonly aead: AeadKey,
    private readonly messageId: Uint8Array,
    private readonly contentType: 'framed' | 'non-framed',
  ) {}

  /** Decrypt into `out` at `offset`. On a bad tag the written bytes are zeroed before the error is thrown. */
  open(frame: FrameView, out: Uint8Array, offset: number): number {
    const aad = frame.final
      ? new BodyAad(this.messageId, this.contentType === 'framed' ? 'final' : 'single-block')
      : (this.regularAad ??= new BodyAad(this.messageId, 'regular'))
    aad.set(frame.sequenceNumber, frame.content.length)
    if (!this.aead.open(frame.iv, aad.bytes, frame.content, frame.tag, out, offset)) {
      out.fill(0, offset, offset + frame.content.length)
      throw new FrameAuthenticationError(
        `Frame ${frame.sequenceNumber} failed authentication: the message was altered or truncated.`,
      )
    }
    return offset + frame.content.length
  }
}

function writeUint32(out: Uint8Array, offset: number, value: number): void {
  out[offset] = value >>> 24
  out[offset + 1] = (value >>> 16) & 0xff
  out[offset + 2] = (value >>> 8) & 0xff
  out[offset + 3] = value & 0xff
}
