import type { CryptoBackend } from './backend/types.js'
import { asMaterialsManager } from './cmm/default.js'
import { checkHeader, decryptionSettings, openHeader, signatureError, type OpenedHeader } from './decrypt.js'
import { positiveIntegerOption } from './encrypt.js'
import { LimitExceededError, PolicyViolationError, TrailingDataError, TruncatedMessageError } from './errors.js'
import { ByteReader } from './format/bytes.js'
import { MAX_SIGNATURE_LENGTH, readFooter } from './format/footer.js'
import { MAX_SEQUENCE_NUMBER, frameSizeAt, readFrame, readNonFramedBody, type FrameView } from './format/frame.js'
import { parseHeader, type ParsedHeader } from './format/header.js'
import { InputBuffer } from './input-buffer.js'
import {
  DEFAULT_MAX_HEADER_SIZE,
  DEFAULT_MAX_NON_FRAMED_BODY,
  asChunk,
  cancelledError,
  deferred,
  driverFor,
  settleFlush,
  watchAbort,
  webStream,
  type DecryptStreamOptions,
  type EnvelopeStream,
  type StreamDriver,
} from './stream.js'
import type { MessageHeader } from './types.js'

type DecryptState = 'header' | 'body' | 'footer' | 'done'

/**
 * Decrypt a stream holding one message. Each frame's plaintext is emitted once its own tag verifies.
 * For signing suites the final frame's plaintext is held back until the footer signature verifies, so a
 * consumer of a tampered signed message may have seen every frame but the last, each individually
 * authentic, before the stream errors. Use `unsignedOnly` or one-shot `decrypt` to see nothing unverified.
 */
export function decryptStreamWith(backend: CryptoBackend, keyringOrCmm: unknown, options: DecryptStreamOptions = {}): EnvelopeStream {
  return webStream(decryptDriver(backend, keyringOrCmm, options))
}

export function decryptDriver(backend: CryptoBackend, keyringOrCmm: unknown, options: DecryptStreamOptions = {}): StreamDriver {
  const cmm = asMaterialsManager(keyringOrCmm)
  const settings = decryptionSettings(options)
  const maxHeaderSize = positiveIntegerOption('maxHeaderSize', options.maxHeaderSize, Number.MAX_SAFE_INTEGER) ?? DEFAULT_MAX_HEADER_SIZE
  const maxBodySize = settings.maxBodySize ?? Number.POSITIVE_INFINITY
  const header = deferred<MessageHeader>()
  const input = new InputBuffer()
  let state: DecryptState = 'header'
  let needed = 1
  let parsed: ParsedHeader | undefined
  let opened: OpenedHeader | undefined
  let sequenceNumber = 1
  let bodyLength = 0
  /** Final plaintext of a signed message, held until the signature verifies. */
  let held: Uint8Array | undefined
  let closed = false
  let detach = () => undefined as void

  const release = () => {
    closed = true
    held?.fill(0)
    held = undefined
    opened = undefined
    input.clear()
    detach()
  }
  const fail = (error: unknown) => {
    release()
    header.reject(error)
  }

  async function readHeader(): Promise<boolean> {
    if (input.length < needed) return false
    let candidate: ParsedHeader
    try {
      candidate = parseHeader(input.bytes, settings)
    } catch (error) {
      if (!(error instanceof TruncatedMessageError) || error.minimumLength === undefined) throw error
      needed = error.minimumLength
      if (needed > maxHeaderSize) {
        throw new LimitExceededError(`The message header is larger than maxHeaderSize (${maxHeaderSize} bytes).`)
      }
      return false
    }
    if (candidate.length > maxHeaderSize) {
      throw new LimitExceededError(`The message header is larger than maxHeaderSize (${maxHeaderSize} bytes).`)
    }
    checkHeader(candidate, settings)
    if (options.unsignedOnly === true && candidate.suite.signature !== undefined) {
      throw new PolicyViolationError(
        `The message uses signing suite 0x${candidate.suite.id.toString(16).padStart(4, '0')}, which unsignedOnly refuses.`,
      )
    }
    const authenticated = await openHeader(backend, cmm, candidate, input.bytes.subarray(0, candidate.length), settings)
    if (closed) return false // aborted while the keyring worked: keep nothing
    opened = authenticated
    parsed = candidate
    input.consume(candidate.length)
    state = 'body'
    header.resolve(candidate.header)
    return true
  }

  /**
   * Decrypt every complete frame in the buffer into one output chunk (one enqueue per input chunk keeps
   * stream overhead per byte low). Returns the plaintext that may be released now, if any.
   */
  function readFrames(): Uint8Array | undefined {
    const { header: messageHeader } = parsed as ParsedHeader
    const { opener, verifier } = opened as OpenedHeader
    const bytes = input.bytes
    const framed = messageHeader.contentType === 'framed'
    const frames: FrameView[] = []
    let plaintextLength = 0
    const reader = new ByteReader(bytes)
    while (state === 'body') {
      const start = reader.offset
      const size = framed
        ? frameSizeAt(bytes, start, messageHeader.frameLength)
        : reader.remaining < 20 ? 20 : nonFramedSize(bytes.subarray(start))
      // Checked before waiting for the bytes, so a huge frame claim is refused without buffering it.
      if (bodyLength + size > maxBodySize) {
        throw new LimitExceededError(`The message body is larger than maxBodySize (${settings.maxBodySize} bytes).`)
      }
      if (reader.remaining < size) break
      if (sequenceNumber > MAX_SEQUENCE_NUMBER) throw new LimitExceededError('The message has more frames than the format allows.')
      const frame = framed ? readFrame(reader, messageHeader.frameLength, sequenceNumber) : readNonFramedBody(reader)
      frames.push(frame)
      plaintextLength += frame.content.length
      bodyLength += reader.offset - start
      sequenceNumber++
      if (frame.final) state = verifier === undefined ? 'done' : 'footer'
    }
    if (frames.length === 0) return undefined
    const offset = reader.offset
    verifier?.update(bytes.subarray(0, offset))
    const out = backend.allocate(plaintextLength)
    let position = 0
    try {
      for (const frame of frames) position = opener.open(frame, out, position)
    } catch (error) {
      out.fill(0)
      throw error
    }
    input.consume(offset)
    if (state !== 'footer') return out
    // A signed message's final frame waits for the signature, in its own buffer: the released chunk's
    // ArrayBuffer must not carry unverified plaintext.
    const finalLength = (frames[frames.length - 1] as FrameView).content.length
    const releasable = plaintextLength - finalLength
    held = out.slice(releasable)
    out.fill(0, releasable)
    return releasable > 0 ? out.subarray(0, releasable) : undefined
  }

  function nonFramedSize(rest: Uint8Array): number {
    const view = new DataView(rest.buffer, rest.byteOffset, rest.length)
    const contentLength = view.getUint32(12) * 0x1_0000_0000 + view.getUint32(16)
    const limit = Math.min(maxBodySize, DEFAULT_MAX_NON_FRAMED_BODY)
    if (contentLength > limit) {
      throw new LimitExceededError(
        `The non-framed body holds ${contentLength} bytes; a stream must buffer all of it and allows ${limit}. Use one-shot decrypt or raise maxBodySize.`,
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

  /** Everything after the header is synchronous, so most chunks need no promise at all. */
  function processBody(controller: TransformStreamDefaultController<Uint8Array>): void {
    if (state === 'body') {
      const plaintext = readFrames()
      if (plaintext !== undefined) controller.enqueue(plaintext)
    }
    if (state === 'footer') {
      const plaintext = readSignature()
      if (plaintext !== undefined) controller.enqueue(plaintext)
    }
    if (state === 'done' && input.length > 0) {
      throw new TrailingDataError(`${input.length} bytes follow the end of the message; a stream must hold exactly one message.`)
    }
  }

  function bodyChunk(chunk: Uint8Array, controller: TransformStreamDefaultController<Uint8Array>): void {
    // While a frame straddles chunks, copy only the bytes that complete it; the rest of the chunk is
    // then read in place.
    while (input.length > 0 && state === 'body' && parsed?.header.contentType === 'framed' && chunk.length > 0) {
      const rest = input.take(chunk, frameSizeAt(input.bytes, 0, parsed.header.frameLength))
      const taken = chunk.length - rest.length
      chunk = rest
      processBody(controller)
      if (taken === 0) break
    }
    input.push(chunk)
    processBody(controller)
    input.detach() // keep no view into the caller's chunk after returning
  }

  async function headerChunk(chunk: Uint8Array, controller: TransformStreamDefaultController<Uint8Array>): Promise<void> {
    input.push(chunk)
    if (await readHeader()) processBody(controller)
    input.detach()
  }

  return driverFor(header.promise, (driver) => ({
    start() {
      detach = watchAbort(options.signal, (error) => {
        fail(error)
        driver.errorSink(error)
      })
    },
    transform(rawChunk, controller) {
      const failed = (error: unknown) => {
        fail(error)
        throw error
      }
      try {
        if (closed) return undefined
        const chunk = asChunk(rawChunk)
        if (state === 'header') return headerChunk(chunk, controller).catch(failed)
        bodyChunk(chunk, controller)
        return undefined
      } catch (error) {
        return failed(error)
      }
    },
    flush() {
      settleFlush(header, release, () => {
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
}
