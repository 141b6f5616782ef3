import { MalformedMessageError } from '../errors.js'
import type { ByteReader } from './bytes.js'
import { setUint32At, uint32At, utf8 } from './bytes.js'

// spec: data-format/message-body-aad.md#body-aad-content
const CONTENT_REGULAR = utf8('AWSKMSEncryptionClient Frame')
const CONTENT_FINAL = utf8('AWSKMSEncryptionClient Final Frame')
const CONTENT_SINGLE_BLOCK = utf8('AWSKMSEncryptionClient Single Block')

export type BodyAadKind = 'regular' | 'final' | 'single-block'

/** Marks the final frame in place of a sequence number. spec: data-format/message-body.md#final-frame */
export const FINAL_FRAME_MARKER = 0xffff_ffff
export const SEQUENCE_NUMBER_LENGTH = 4
export const IV_LENGTH = 12
export const TAG_LENGTH = 16
/** Bytes a regular frame adds to its content: sequence number, IV, tag. */
export const REGULAR_FRAME_OVERHEAD = SEQUENCE_NUMBER_LENGTH + IV_LENGTH + TAG_LENGTH
/** Bytes a final frame adds to its content: marker, sequence number, IV, content length, tag. */
export const FINAL_FRAME_OVERHEAD = 4 + SEQUENCE_NUMBER_LENGTH + IV_LENGTH + 4 + TAG_LENGTH
/** Sequence numbers run from 1; the marker value is not a valid one. */
export const MAX_SEQUENCE_NUMBER = FINAL_FRAME_MARKER - 1

/**
 * A reusable body AAD buffer: message ID || content string || sequence number (4) || content length (8).
 * The frame engine patches the last 12 bytes per frame instead of allocating.
 * spec: data-format/message-body-aad.md
 */
export class BodyAad {
  readonly bytes: Uint8Array
  private readonly tail: number

  constructor(messageId: Uint8Array, kind: BodyAadKind) {
    const content = kind === 'regular' ? CONTENT_REGULAR : kind === 'final' ? CONTENT_FINAL : CONTENT_SINGLE_BLOCK
    this.bytes = new Uint8Array(messageId.length + content.length + 12)
    this.bytes.set(messageId, 0)
    this.bytes.set(content, messageId.length)
    this.tail = messageId.length + content.length
  }

  /** Point the buffer at another message with an ID of the same length. */
  forMessage(messageId: Uint8Array): this {
    this.bytes.set(messageId, 0)
    return this
  }

  set(sequenceNumber: number, contentLength: number): Uint8Array {
    setUint32At(this.bytes, this.tail, sequenceNumber)
    setUint32At(this.bytes, this.tail + 4, Math.floor(contentLength / 0x1_0000_0000))
    setUint32At(this.bytes, this.tail + 8, contentLength >>> 0)
    return this.bytes
  }
}

/** One frame as it sits in the message: views into the input, nothing copied. */
export interface FrameView {
  readonly final: boolean
  readonly sequenceNumber: number
  readonly iv: Uint8Array
  readonly content: Uint8Array
  readonly tag: Uint8Array
}

/**
 * Read the next frame of a framed body and check its sequence number.
 * spec: data-format/message-body.md#framed-data
 */
export function readFrame(reader: ByteReader, frameLength: number, expectedSequenceNumber: number): FrameView {
  const start = reader.offset
  const finalLength = skipFrame(reader, frameLength, expectedSequenceNumber)
  const final = finalLength !== undefined
  const { bytes, offset: end } = reader
  const ivAt = start + (final ? 4 + SEQUENCE_NUMBER_LENGTH : SEQUENCE_NUMBER_LENGTH)
  const tagAt = end - TAG_LENGTH
  return {
    final,
    sequenceNumber: expectedSequenceNumber,
    iv: bytes.subarray(ivAt, ivAt + IV_LENGTH),
    content: bytes.subarray(tagAt - (finalLength ?? frameLength), tagAt),
    tag: bytes.subarray(tagAt, end),
  }
}

/**
 * Step over the next frame with `readFrame`'s checks, making no views of its fields: decrypt walks a message's
 * frames before any key is at hand, and views made there would be made again when the frames are opened.
 * Returns the final frame's content length, or undefined for a regular frame (its content is frameLength bytes).
 */
export function skipFrame(reader: ByteReader, frameLength: number, expectedSequenceNumber: number): number | undefined {
  const first = reader.uint32('frame sequence number')
  const final = first === FINAL_FRAME_MARKER
  const sequenceNumber = final ? reader.uint32('final frame sequence number') : first
  if (sequenceNumber !== expectedSequenceNumber) {
    throw new MalformedMessageError(
      `Frame sequence number ${sequenceNumber} is out of order; expected ${expectedSequenceNumber}.`,
    )
  }
  reader.skip(IV_LENGTH, 'frame IV')
  let contentLength = frameLength
  if (final) {
    contentLength = reader.uint32('final frame content length')
    if (contentLength > frameLength) {
      throw new MalformedMessageError(
        `The final frame claims ${contentLength} content bytes, more than the frame length ${frameLength}.`,
      )
    }
  }
  reader.skip(contentLength, final ? 'final frame content' : 'frame content')
  reader.skip(TAG_LENGTH, 'frame authentication tag')
  return final ? contentLength : undefined
}

/** Read the legacy non-framed body. spec: data-format/message-body.md#non-framed-data */
export function readNonFramedBody(reader: ByteReader): FrameView {
  const iv = reader.slice(IV_LENGTH, 'body IV')
  const contentLength = reader.uint64('body content length')
  const content = reader.slice(contentLength, 'body content')
  const tag = reader.slice(TAG_LENGTH, 'body authentication tag')
  return { final: true, sequenceNumber: 1, iv, content, tag }
}

/** Write the frame IV the way the official SDKs do: 8 zero bytes then the sequence number. */
export function writeSequenceIv(out: Uint8Array, offset: number, sequenceNumber: number): void {
  out.fill(0, offset, offset + 8)
  setUint32At(out, offset + 8, sequenceNumber)
}

/**
 * How many bytes the frame at `offset` occupies, or, while too few bytes are there to tell, how many
 * are needed to find out. Lets a stream wait for whole frames without parsing twice. A frame that is not
 * `expectedSequenceNumber`, or a final frame claiming more than `frameLength`, is sized to the bytes that
 * show it, so that `readFrame` runs at once and refuses it, as it would the whole message, rather than wait.
 */
export function frameSizeAt(bytes: Uint8Array, offset: number, frameLength: number, expectedSequenceNumber: number): number {
  const available = bytes.length - offset
  if (available < 4) return 4
  const first = uint32At(bytes, offset)
  if (first !== FINAL_FRAME_MARKER) return first === expectedSequenceNumber ? REGULAR_FRAME_OVERHEAD + frameLength : 4
  if (available < 8 || uint32At(bytes, offset + 4) !== expectedSequenceNumber) return 8
  const lengthAt = 4 + SEQUENCE_NUMBER_LENGTH + IV_LENGTH
  if (available < lengthAt + 4) return lengthAt + 4
  const contentLength = uint32At(bytes, offset + lengthAt)
  if (contentLength > frameLength) return lengthAt + 4
  return FINAL_FRAME_OVERHEAD + contentLength
}
