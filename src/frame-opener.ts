// Decrypting frames: its own module, so a browser application that only encrypts does not load it.
import { isAsyncAead, type AeadKey, type AsyncAeadKey } from './backend/types.js'
import type { Bytes } from './types.js'
import { FrameAuthenticationError } from './errors.js'
import { BodyAad, type FrameView } from './format/frame.js'

/**
 * The last frame's AAD for synchronous keys, which read it before they return: one buffer per kind and message
 * ID length, shared by every message, so a one-frame message allocates none (78 bytes is too large for the
 * JavaScript heap, and an array buffer outside it costs about a microsecond).
 */
const lastFrameAads: (BodyAad | undefined)[] = []

function lastFrameAad(messageId: Uint8Array, kind: 'final' | 'single-block'): BodyAad {
  const slot = (kind === 'final' ? 0 : 2) + (messageId.length === 16 ? 0 : 1)
  return lastFrameAads[slot]?.forMessage(messageId) ?? (lastFrameAads[slot] = new BodyAad(messageId, kind))
}

/**
 * Decrypts frames (or the non-framed body) that have already been read and sequence-checked. As with
 * `FrameSealer`, a synchronous key uses `open` and an asynchronous one `openAsync`.
 */
export class FrameOpener {
  /** Made on first use: a small message has only a final frame. */
  private regularAad: BodyAad | undefined
  readonly async: boolean

  constructor(
    private readonly aead: AeadKey | AsyncAeadKey,
    private readonly messageId: Uint8Array,
    private readonly contentType: 'framed' | 'non-framed',
  ) {
    this.async = isAsyncAead(aead)
  }

  /** Zero the message key (the message is done, or abandoned); the opener must not be used afterwards. */
  dispose(): void {
    this.aead.dispose?.()
  }

  /** Decrypt into `out` at `offset`. On a bad tag the written bytes are zeroed before the error is thrown. */
  open(frame: FrameView, out: Uint8Array, offset: number): number {
    if (!(this.aead as AeadKey).open(frame.iv, this.aadOf(frame), frame.content, frame.tag, out, offset)) this.reject(frame, out, offset)
    return offset + frame.content.length
  }

  /** Whether `openDetached` works: a synchronous key whose cipher hands over its own output (node:crypto). */
  get detachedOpen(): boolean {
    return (this.aead as AeadKey).openDetached !== undefined
  }

  /** Decrypt one frame into the cipher's own output buffer (no copy). */
  openDetached(frame: FrameView): Bytes {
    return (this.aead as Required<AeadKey>).openDetached(frame.iv, this.aadOf(frame), frame.content, frame.tag) ?? this.fail(frame)
  }

  /** The AAD of a frame for a synchronous key. */
  private aadOf(frame: FrameView): Uint8Array {
    const aad = frame.final
      ? lastFrameAad(this.messageId, this.contentType === 'framed' ? 'final' : 'single-block')
      : (this.regularAad ??= new BodyAad(this.messageId, 'regular'))
    aad.set(frame.sequenceNumber, frame.content.length)
    return aad.bytes
  }

  /** `open` for an asynchronous key; several frames may be in flight at once (each caller knows where the next goes). */
  async openAsync(frame: FrameView, out: Uint8Array, offset: number): Promise<void> {
    const kind = !frame.final ? 'regular' : this.contentType === 'framed' ? 'final' : 'single-block'
    const aad = new BodyAad(this.messageId, kind).set(frame.sequenceNumber, frame.content.length)
    if (!(await (this.aead as AsyncAeadKey).open(frame.iv, aad, frame.content, frame.tag, out, offset))) this.reject(frame, out, offset)
  }

  private reject(frame: FrameView, out: Uint8Array, offset: number): never {
    out.fill(0, offset, offset + frame.content.length)
    return this.fail(frame)
  }

  private fail(frame: FrameView): never {
    throw new FrameAuthenticationError(`Frame ${frame.sequenceNumber} failed authentication: the message was altered or truncated.`)
  }
}
