import { Window } from './async-body.js'
import type { CryptoBackend } from './backend/types.js'
import { asMaterialsManager } from './cmm/default.js'
import { checkHeader, DECRYPT_OPTIONS, decryptionSettings, openHeader, signatureError, type OpenedHeader } from './open-header.js'
import { positiveIntegerOption } from './encrypt.js'
import { optionsObject } from './option-names.js'
import {
  ConfigurationError,
  LimitExceededError,
  PolicyViolationError,
  TrailingDataError,
  TruncatedMessageError,
  UnsupportedOperationError,
} from './errors.js'
import { platformFailure } from './platform-failure.js'
import { FRAMES_PER_TURN, turn } from './next-turn.js'
import { ByteReader, uint32At } from './format/bytes.js'
import { MAX_SIGNATURE_LENGTH, readFooter } from './format/footer.js'
import { FINAL_FRAME_MARKER, FINAL_FRAME_OVERHEAD, MAX_SEQUENCE_NUMBER, REGULAR_FRAME_OVERHEAD, frameSizeAt, readFrame, readNonFramedBody, type FrameView } from './format/frame.js'
import { TEXT_MESSAGE_PREFIX, parseHeader, type ParsedHeader } from './format/header.js'
import { InputBuffer } from './input-buffer.js'
import { quoteValue } from './quote.js'
import { abortSignalOption, abortedError, watchAbort } from './abort.js'
import {
  DEFAULT_MAX_HEADER_SIZE,
  DEFAULT_MAX_BUFFERED_BODY,
  asChunk,
  cancelledError,
  deferred,
  driverFor,
  settleFlush,
  webStream,
  type DecryptStreamOptions,
  type EnvelopeStream,
  type StreamDriver,
} from './stream.js'
import { collectThrough } from './collect.js'
import type { DecryptOptions, DecryptResult, EncryptionContext, MessageHeader } from './types.js'

type DecryptState = 'header' | 'body' | 'footer' | 'done'

/** Complete frames read from the buffer, ending at `end`, to decrypt into one output chunk. */
interface FrameBatch {
  readonly frames: FrameView[]
  readonly plaintextLength: number
  readonly end: number
}

/** The options decrypt streams take (`DecryptStreamOptions`). */
export const DECRYPT_STREAM_OPTIONS = `${DECRYPT_OPTIONS}, unsignedOnly, maxHeaderSize` as const

/**
 * Decrypt a stream holding one message. Each frame's plaintext is emitted once its own tag verifies.
 * For signing suites the final frame's plaintext is held back until the footer signature verifies, so a
 * consumer of a tampered signed message may have seen every frame but the last, each individually
 * authentic, before the stream errors. Use `unsignedOnly` or one-shot `decrypt` to see nothing unverified.
 */
export function decryptStreamWith(backend: CryptoBackend, keyringOrCmm: unknown, options: DecryptStreamOptions = {}): EnvelopeStream {
  return webStream(decryptDriver(backend, keyringOrCmm, options))
}

/** One-shot decrypt of an async iterable of chunks, through the stream engine. */
export async function decryptIterableWith(
  backend: CryptoBackend,
  keyringOrCmm: unknown,
  source: AsyncIterable<unknown>,
  options?: DecryptOptions,
): Promise<DecryptResult> {
  // The stream takes more options than one-shot decrypt: check against decrypt's own first.
  const driver = decryptDriver(backend, keyringOrCmm, optionsObject(options, 'decrypt', DECRYPT_OPTIONS))
  const { output, header } = await collectThrough(source, () => webStream(driver))
  return { plaintext: output, header, encryptionContext: driver.authenticatedContext?.() ?? header.encryptionContext }
}

/** The content length of the frame at `start` whose size `frameSizeAt` gave (negative while its header is incomplete). */
function frameContentLength(bytes: Uint8Array, start: number, size: number): number {
  const final = bytes.length - start >= 4 && uint32At(bytes, start) === FINAL_FRAME_MARKER
  return size - (final ? FINAL_FRAME_OVERHEAD : REGULAR_FRAME_OVERHEAD)
}

export function decryptDriver(backend: CryptoBackend, keyringOrCmm: unknown, streamOptions: DecryptStreamOptions | null | undefined): StreamDriver {
  const cmm = asMaterialsManager(keyringOrCmm)
  const options = optionsObject(streamOptions, 'A decrypt stream', DECRYPT_STREAM_OPTIONS)
  const settings = decryptionSettings(options)
  const maxHeaderSize = positiveIntegerOption('maxHeaderSize', options.maxHeaderSize, Number.MAX_SAFE_INTEGER) ?? DEFAULT_MAX_HEADER_SIZE
  const maxBodySize = settings.maxBodySize ?? Number.POSITIVE_INFINITY
  /** The most content the stream holds of one frame or non-framed body: `maxBodySize` when given. */
  const maxBuffered = settings.maxBodySize ?? DEFAULT_MAX_BUFFERED_BODY
  const signal = abortSignalOption(options.signal)
  const { unsignedOnly } = options
  // A truthy string such as 'true' (from an environment variable, say) must not pass as false.
  if (unsignedOnly !== undefined && typeof unsignedOnly !== 'boolean') {
    throw new ConfigurationError(`unsignedOnly must be true or false; got ${quoteValue(unsignedOnly)}.`)
  }
  const header = deferred<MessageHeader>()
  const input = new InputBuffer()
  let state: DecryptState = 'header'
  let needed = 1
  let parsed: ParsedHeader | undefined
  let opened: OpenedHeader | undefined
  let authenticatedContext: EncryptionContext | undefined
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
  let detach = () => undefined as void
  /** Aborted when the stream ends, however it ends: the request's signal, which cancels a KMS request under way. */
  const ending = new AbortController()

  const release = () => {
    closed = true
    ending.abort()
    held?.fill(0)
    held = undefined
    opened?.opener.dispose()
    opened = undefined
    input.clear()
    detach()
  }
  /** Ends the stream with `error`, typed (a platform failure becomes INTERNAL_ERROR), which it returns to throw. */
  const fail = (error: unknown) => {
    const typed = platformFailure(error)
    release()
    header.reject(typed)
    return typed
  }

  const headerOptions = { ...settings, maxHeaderSize }

  /** Throws what parsing `bytes` finds wrong, other than that they end too soon. */
  function headerFault(bytes: Uint8Array): void {
    try {
      parseHeader(bytes, headerOptions)
    } catch (error) {
      if (!(error instanceof TruncatedMessageError)) throw error
    }
  }

  async function readHeader(): Promise<boolean> {
    if (input.length < needed) return false
    const first = input.bytes[0]
    if (first !== 1 && first !== 2 && input.length < TEXT_MESSAGE_PREFIX) {
      // No message: whether it is one written out as text shows in its first bytes, which one-shot decrypt has whole.
      // The input's end, if it comes sooner, is judged at flush (headerFault).
      needed = TEXT_MESSAGE_PREFIX
      return false
    }
    let candidate: ParsedHeader
    try {
      candidate = parseHeader(input.bytes, headerOptions)
    } catch (error) {
      if (!(error instanceof TruncatedMessageError) || error.minimumLength === undefined) throw error
      needed = error.minimumLength // at most maxHeaderSize (headerOptions)
      return false
    }
    checkHeader(candidate, settings)
    if (unsignedOnly === true && candidate.suite.signature !== undefined) {
      throw new PolicyViolationError(
        `The message uses signing suite 0x${candidate.suite.id.toString(16).padStart(4, '0')}, which unsignedOnly refuses.`,
      )
    }
    if (candidate.suite.signature !== undefined && !backend.incrementalSignatures && (await backend.loadIncrementalSignatures?.()) !== true) {
      throw new UnsupportedOperationError(
        `decryptStream cannot check the signature of suite 0x${candidate.suite.id.toString(16).padStart(4, '0')} on the ${backend.name} ` +
          'backend, which verifies whole messages only: use one-shot decrypt for signed messages.',
      )
    }
    const authenticated = await openHeader(backend, cmm, candidate, input.bytes.subarray(0, candidate.length), { ...settings, signal: ending.signal })
    if (closed) {
      authenticated.opener.dispose() // aborted while the keyring worked: keep nothing
      return false
    }
    opened = authenticated
    authenticatedContext = authenticated.encryptionContext
    parsed = candidate
    input.consume(candidate.length)
    state = 'body'
    header.resolve(candidate.header)
    return true
  }

  /**
   * The complete frames in the buffer, read and sequence-checked (and fed to the verifier), for one output
   * chunk: one enqueue per input chunk keeps stream overhead per byte low.
   */
  function scanFrames(): FrameBatch | undefined {
    const { header: messageHeader } = parsed as ParsedHeader
    const { verifier } = opened as OpenedHeader
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
    const { opener } = opened as OpenedHeader
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
    const { opener } = opened as OpenedHeader
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
      await Promise.allSettled(window.pending)
      out.fill(0)
      throw error
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
    // A copy (Buffer's slice would be a view), since the released chunk's tail is zeroed next.
    held = new Uint8Array(out.subarray(releasable))
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
    if (!(opened as OpenedHeader).verifier?.verify(signature)) throw signatureError()
    input.consume(reader.offset)
    state = 'done'
    const plaintext = held as Uint8Array
    held = undefined
    return plaintext
  }

  /**
   * Everything after the header is synchronous, so most chunks need no promise at all: only one holding more than
   * FRAMES_PER_TURN frames, whose next batch waits for the event loop to turn.
   */
  function processBody(controller: TransformStreamDefaultController<Uint8Array>): Promise<void> | undefined {
    if (state === 'body') {
      const plaintext = readFrames()
      if (plaintext !== undefined) controller.enqueue(plaintext)
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
      if (plaintext !== undefined) controller.enqueue(plaintext)
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
      if (plaintext !== undefined) controller.enqueue(plaintext)
      if (!closed) throwFaultAhead()
      if (!batchFull || closed) break
    }
    if (closed) return
    processEnd(controller)
  }

  /** `bodyChunk` for an asynchronous key; the chunk is read in place until the returned promise settles. */
  async function bodyChunkAsync(chunk: Uint8Array, controller: TransformStreamDefaultController<Uint8Array>): Promise<void> {
    while (input.length > 0 && state === 'body' && parsed?.header.contentType === 'framed' && chunk.length > 0) {
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
    while (input.length > 0 && state === 'body' && parsed?.header.contentType === 'framed' && chunk.length > 0) {
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

  async function headerChunk(chunk: Uint8Array, controller: TransformStreamDefaultController<Uint8Array>): Promise<void> {
    input.push(chunk)
    if (await readHeader()) {
      if ((opened as OpenedHeader).opener.async) await processBodyAsync(controller)
      else await processBody(controller)
    }
    if (!closed) input.detach()
  }

  const driver = driverFor('decrypt', header.promise, (driver) => ({
    start() {
      detach = watchAbort(signal, () => {
        const error = abortedError('The stream', signal as AbortSignal)
        fail(error)
        driver.report(error)
      })
    },
    transform(rawChunk, controller) {
      const failed = (error: unknown) => {
        throw fail(error)
      }
      try {
        if (closed) return undefined
        const chunk = asChunk(rawChunk, 'decrypt')
        if (state === 'header') return headerChunk(chunk, controller).catch(failed)
        if ((opened as OpenedHeader).opener.async) return bodyChunkAsync(chunk, controller).catch(failed)
        return bodyChunk(chunk, controller)?.catch(failed)
      } catch (error) {
        return failed(error)
      }
    },
    flush() {
      settleFlush(header, release, () => {
        // The header's length fields of the bytes in so far asked for more than came: the whole of them may still
        // show a malformed field that no earlier prefix reached, which is what one-shot decrypt reports, whatever the chunks.
        if (state === 'header' && input.length > 0) headerFault(input.bytes)
        if (state !== 'done') {
          throw new TruncatedMessageError(
            state === 'header' ? 'The stream ended inside the message header.' : 'The stream ended before the end of the message.',
          )
        }
      })
    },
    cancel(reason) {
      fail(cancelledError(reason))
    },
  }))
  driver.authenticatedContext = () => authenticatedContext
  return driver
}
