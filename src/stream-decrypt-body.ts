import { earliestFailure, Window } from './async-body.js'
import type { CryptoBackend } from './backend/types.js'
import { LimitExceededError, TrailingDataError } from './errors.js'
import { ByteReader, uint32At } from './format/bytes.js'
import { MAX_SIGNATURE_LENGTH, readFooter } from './format/footer.js'
import { FINAL_FRAME_MARKER, FINAL_FRAME_OVERHEAD, MAX_SEQUENCE_NUMBER, REGULAR_FRAME_OVERHEAD, frameSizeAt, readFrame, readNonFramedBody, type FrameView } from './format/frame.js'
import type { ParsedHeader } from './format/header.js'
import type { InputBuffer } from './input-buffer.js'
import { FRAMES_PER_TURN, turn } from './next-turn.js'
import { signatureError, type DecryptionSettings, type OpenedHeader } from './open-header.js'
import { DEFAULT_MAX_BUFFERED_BODY } from './stream.js'

// A decrypt stream after its header: the frames, decrypted in batches as the input comes, and a signed message's
// footer. The stream's driver (stream-decrypt.ts) reads the header and hands each later chunk here.

/** Complete frames read from the buffer, ending at `end`, to decrypt into one output chunk. */
interface FrameBatch {
  readonly frames: FrameView[]
  readonly plaintextLength: number
  readonly end: number
}

/** The content length of the frame at `start` whose size `frameSizeAt` gave (negative while its header is incomplete). */
function frameContentLength(bytes: Uint8Array, start: number, size: number): number {
  const final = bytes.length - start >= 4 && uint32At(bytes, start) === FINAL_FRAME_MARKER
  return size - (final ? FINAL_FRAME_OVERHEAD : REGULAR_FRAME_OVERHEAD)
}

/** The body of one decrypt stream's message, once its header is authenticated. */
export interface DecryptBody {
  /** 'done' once the message has ended (for a signed one, once its signature verified). */
  readonly state: 'body' | 'footer' | 'done'
  /** Read a chunk of input: in place, and until the returned promise settles when there is one. */
  chunk(chunk: Uint8Array, controller: TransformStreamDefaultController<Uint8Array>): Promise<void> | undefined
  /** Decrypt what the input holds already (the bytes that came with the header). */
  process(controller: TransformStreamDefaultController<Uint8Array>): Promise<void> | undefined
  /** The stream has ended: zero the plaintext held back and the key, and stop after any call under way. */
  release(): void
}

/** The reader of the body of the message whose header is `parsed`, authenticated as `opened`; `input` holds what follows the header. */
export function decryptBody(
  backend: CryptoBackend,
  input: InputBuffer,
  parsed: ParsedHeader,
  opened: OpenedHeader,
  settings: DecryptionSettings,
): DecryptBody {
  const maxBodySize = settings.maxBodySize ?? Number.POSITIVE_INFINITY
  /** The most content the stream holds of one frame or non-framed body: `maxBodySize` when given. */
  const maxBuffered = settings.maxBodySize ?? DEFAULT_MAX_BUFFERED_BODY
  let state: DecryptBody['state'] = 'body'
  let sequenceNumber = 1
  let bodyLength = 0
  /** Final plaintext of a signed message, held until the signature verifies. */
  let held: Uint8Array | undefined
  let closed = false
  /** Whether the last batch stopped at FRAMES_PER_TURN: more complete frames may be in the buffer. */
  let batchFull = false
  /**
   * What the last batch stopped at when a frame after its first is malformed or too large: thrown once the frames
   * before it are decrypted, so that a frame's bad tag is reported before a later frame's fault, however the
   * input was cut (in small pieces, the earlier frame is decrypted before the later one arrives).
   */
  let faultAhead: { readonly error: unknown } | undefined

  /**
   * The complete frames in the buffer, read and sequence-checked (and fed to the verifier), for one output
   * chunk: one enqueue per input chunk keeps stream overhead per byte low.
   */
  function scanFrames(): FrameBatch | undefined {
    const { header: messageHeader } = parsed
    const { verifier } = opened
    const bytes = input.bytes
    const framed = messageHeader.contentType === 'framed'
    const frames: FrameView[] = []
    let plaintextLength = 0
    const reader = new ByteReader(bytes)
    let end = 0
    batchFull = false
    while (state === 'body') {
      if (frames.length === FRAMES_PER_TURN) {
        batchFull = true
        break
      }
      try {
        if (!scanFrame()) break
      } catch (error) {
        if (frames.length === 0) throw error
        faultAhead = { error }
        break
      }
      end = reader.offset
    }
    if (frames.length === 0) return undefined
    verifier?.update(bytes.subarray(0, end))
    return { frames, plaintextLength, end }

    /** Read the next frame into the batch; false when its bytes are not all in yet. */
    function scanFrame(): boolean {
      const start = reader.offset
      const size = framed
        ? frameSizeAt(bytes, start, messageHeader.frameLength, sequenceNumber)
        : reader.remaining < 20 ? 20 : nonFramedSize(bytes.subarray(start))
      // Checked before waiting for the bytes, so a huge frame claim is refused without buffering it.
      if (bodyLength + size > maxBodySize) {
        throw new LimitExceededError(`The message body is larger than maxBodySize (${settings.maxBodySize} bytes).`)
      }
      // With maxBodySize given, the check above bounds the frame; without it, the default bounds its content.
      if (framed && size > maxBuffered + REGULAR_FRAME_OVERHEAD && frameContentLength(bytes, start, size) > maxBuffered) {
        throw new LimitExceededError(
          `The message's next frame holds ${frameContentLength(bytes, start, size)} bytes (frame length ${messageHeader.frameLength}); a stream holds a ` +
            `whole frame until its tag verifies, and at most ${maxBuffered} bytes unless maxBodySize allows more. Set maxBodySize to decrypt messages with such frames.`,
        )
      }
      if (reader.remaining < size) return false
      if (sequenceNumber > MAX_SEQUENCE_NUMBER) throw new LimitExceededError('The message has more frames than the format allows.')
      const frame = framed ? readFrame(reader, messageHeader.frameLength, sequenceNumber) : readNonFramedBody(reader)
      frames.push(frame)
      plaintextLength += frame.content.length
      bodyLength += reader.offset - start
      sequenceNumber++
      if (frame.final) state = verifier === undefined ? 'done' : 'footer'
      return true
    }
  }

  /** Throw the fault the last batch stopped at (`faultAhead`), now that the frames before it are decrypted. */
  function throwFaultAhead(): void {
    if (faultAhead !== undefined) throw faultAhead.error
  }

  /** Decrypt the complete frames in the buffer. Returns the plaintext that may be released now, if any. */
  function readFrames(): Uint8Array | undefined {
    const batch = scanFrames()
    if (batch === undefined) return undefined
    const { opener } = opened
    // A chunk that completes one frame (large frames) takes the cipher's output as it is, where the backend
    // can hand it over: no copy.
    if (batch.frames.length === 1 && opener.detachedOpen) return releasable(batch, opener.openDetached(batch.frames[0] as FrameView))
    const out = backend.allocate(batch.plaintextLength)
    let position = 0
    try {
      for (const frame of batch.frames) position = opener.open(frame, out, position)
    } catch (error) {
      out.fill(0)
      throw error
    }
    return releasable(batch, out)
  }

  /** `readFrames` for an asynchronous key: the same frames, decrypted through a window of calls in flight. */
  async function readFramesAsync(): Promise<Uint8Array | undefined> {
    const batch = scanFrames()
    if (batch === undefined) return undefined
    const { opener } = opened
    const out = backend.allocate(batch.plaintextLength)
    const window = new Window()
    let position = 0
    try {
      for (const frame of batch.frames) {
        window.pending.push(opener.openAsync(frame, out, position))
        position += frame.content.length
        await window.add(frame.content.length)
      }
      await window.drain()
    } catch (error) {
      const settled = await Promise.allSettled(window.pending)
      out.fill(0)
      throw earliestFailure(settled) ?? error
    }
    if (closed) {
      out.fill(0) // aborted meanwhile: release() has dropped the input these frames were read from
      return undefined
    }
    return releasable(batch, out)
  }

  /** Drop the frames' bytes from the input; a signed message's final plaintext is held back. */
  function releasable(batch: FrameBatch, out: Uint8Array): Uint8Array | undefined {
    input.consume(batch.end)
    if (state !== 'footer') return out
    // A signed message's final frame waits for the signature, in its own buffer: the released chunk's
    // ArrayBuffer must not carry unverified plaintext.
    const finalLength = (batch.frames[batch.frames.length - 1] as FrameView).content.length
    const releasable = batch.plaintextLength - finalLength
    // A copy, since the released chunk's tail is zeroed next; in the backend's memory, as all plaintext is.
    held = backend.allocate(finalLength)
    held.set(out.subarray(releasable))
    out.fill(0, releasable)
    return releasable > 0 ? out.subarray(0, releasable) : undefined
  }

  function nonFramedSize(rest: Uint8Array): number {
    const contentLength = new ByteReader(rest, 12).uint64('body content length') // after the IV; as one-shot reads it
    if (contentLength > maxBuffered) {
      throw new LimitExceededError(
        `The non-framed body holds ${contentLength} bytes; a stream must buffer all of it and allows ${maxBuffered}` +
          (settings.maxBodySize === undefined ? ' unless maxBodySize allows more. Set maxBodySize, or use one-shot decrypt.' : ' (maxBodySize).'),
      )
    }
    return 20 + contentLength + 16
  }

  function readSignature(): Uint8Array | undefined {
    const bytes = input.bytes
    if (bytes.length < 2) return undefined
    const length = ((bytes[0] as number) << 8) | (bytes[1] as number)
    if (length <= MAX_SIGNATURE_LENGTH && bytes.length < 2 + length) return undefined
    const reader = new ByteReader(bytes)
    const signature = readFooter(reader)
    if (!opened.verifier?.verify(signature)) throw signatureError()
    input.consume(reader.offset)
    state = 'done'
    const plaintext = held as Uint8Array
    held = undefined
    return plaintext
  }

  /** Pass plaintext on, but no empty chunk (the empty final frame of a message whose length is a multiple of the frame length). */
  function emit(controller: TransformStreamDefaultController<Uint8Array>, plaintext: Uint8Array | undefined): void {
    if (plaintext !== undefined && plaintext.length > 0) controller.enqueue(plaintext)
  }

  /**
   * Everything after the header is synchronous, so most chunks need no promise at all: only one holding more than
   * FRAMES_PER_TURN frames, whose next batch waits for the event loop to turn.
   */
  function processBody(controller: TransformStreamDefaultController<Uint8Array>): Promise<void> | undefined {
    if (state === 'body') {
      const plaintext = readFrames()
      emit(controller, plaintext)
      throwFaultAhead()
      if (batchFull) return turn().then(() => (closed ? undefined : processBody(controller)))
    }
    processEnd(controller)
    return undefined
  }

  /** After the frames: a signed message's footer, then nothing more. */
  function processEnd(controller: TransformStreamDefaultController<Uint8Array>): void {
    if (state === 'footer') {
      const plaintext = readSignature()
      emit(controller, plaintext)
    }
    // Not counted: how many of them have come depends on how the input was cut.
    if (state === 'done' && input.length > 0) {
      throw new TrailingDataError('Bytes follow the end of the message; a stream must hold exactly one message.')
    }
  }

  /** `processBody` for an asynchronous key: only the frames' cipher calls are awaited. */
  async function processBodyAsync(controller: TransformStreamDefaultController<Uint8Array>): Promise<void> {
    while (state === 'body') {
      const plaintext = await readFramesAsync()
      emit(controller, plaintext)
      if (!closed) throwFaultAhead()
      if (!batchFull || closed) break
    }
    if (closed) return
    processEnd(controller)
  }

  /** `bodyChunk` for an asynchronous key; the chunk is read in place until the returned promise settles. */
  async function bodyChunkAsync(chunk: Uint8Array, controller: TransformStreamDefaultController<Uint8Array>): Promise<void> {
    while (input.length > 0 && state === 'body' && parsed.header.contentType === 'framed' && chunk.length > 0) {
      const rest = input.take(chunk, frameSizeAt(input.bytes, 0, parsed.header.frameLength, sequenceNumber))
      const taken = chunk.length - rest.length
      chunk = rest
      await processBodyAsync(controller)
      if (closed) return
      if (taken === 0) break
    }
    input.push(chunk)
    await processBodyAsync(controller)
    if (!closed) input.detach() // keep no view into the caller's chunk after returning
  }

  /** Read `chunk`: in place, and until the returned promise settles when there is one. */
  function bodyChunk(chunk: Uint8Array, controller: TransformStreamDefaultController<Uint8Array>): Promise<void> | undefined {
    // While a frame straddles chunks, copy only the bytes that complete it; the rest of the chunk is
    // then read in place.
    while (input.length > 0 && state === 'body' && parsed.header.contentType === 'framed' && chunk.length > 0) {
      const rest = input.take(chunk, frameSizeAt(input.bytes, 0, parsed.header.frameLength, sequenceNumber))
      const taken = chunk.length - rest.length
      chunk = rest
      const pending = processBody(controller)
      if (pending !== undefined) return pending.then(() => (closed ? undefined : bodyChunk(rest, controller)))
      if (taken === 0) break
    }
    input.push(chunk)
    const pending = processBody(controller)
    if (pending !== undefined) return pending.then(() => void (closed || input.detach()))
    input.detach() // keep no view into the caller's chunk after returning
    return undefined
  }

  const asynchronous = opened.opener.async
  return {
    get state() {
      return state
    },
    chunk: asynchronous ? bodyChunkAsync : bodyChunk,
    process: asynchronous ? processBodyAsync : processBody,
    release() {
      if (closed) return
      closed = true
      held?.fill(0)
      held = undefined
      opened.opener.dispose()
    },
  }
}
