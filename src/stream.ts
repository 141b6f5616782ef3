import type { CryptoBackend } from './backend/types.js'
import { asMaterialsManager } from './cmm/default.js'
import { checkHeader, decryptionSettings, openHeader, signatureError, type OpenedHeader } from './decrypt.js'
import { beginEncryption, positiveIntegerOption, type EncryptionSession } from './encrypt.js'
import {
  AbortedError,
  ConfigurationError,
  LimitExceededError,
  PolicyViolationError,
  TrailingDataError,
  TruncatedMessageError,
} from './errors.js'
import { ByteReader } from './format/bytes.js'
import {
  FINAL_FRAME_OVERHEAD,
  MAX_SEQUENCE_NUMBER,
  REGULAR_FRAME_OVERHEAD,
  frameSizeAt,
  readFrame,
  readNonFramedBody,
  type FrameView,
} from './format/frame.js'
import { parseHeader, type ParsedHeader } from './format/header.js'
import { MAX_SIGNATURE_LENGTH, readFooter, writeFooter } from './format/footer.js'
import { InputBuffer } from './input-buffer.js'
import type { DecryptOptions, EncryptOptions, MessageHeader } from './types.js'

export interface EncryptStreamOptions extends EncryptOptions {
  /** Declared plaintext length: the stream errors if the input is longer or shorter. */
  plaintextLength?: number
  /** Aborting errors both sides of the stream and releases what it holds. */
  signal?: AbortSignal
}

export interface DecryptStreamOptions extends DecryptOptions {
  /** Reject signed suites right after the header, for callers who must never see unverified plaintext. */
  unsignedOnly?: boolean
  /** Largest header the stream buffers before giving up. Default 1 MiB. */
  maxHeaderSize?: number
  signal?: AbortSignal
}

/** A `TransformStream` whose `header` resolves once the message header is written or authenticated. */
export interface EnvelopeStream extends TransformStream<Uint8Array, Uint8Array> {
  readonly header: Promise<MessageHeader>
}

const DEFAULT_MAX_HEADER_SIZE = 1024 * 1024
/** A non-framed body can be released only after its single tag, so a stream must hold all of it. */
const DEFAULT_MAX_NON_FRAMED_BODY = 64 * 1024 * 1024

function deferred<T>(): { promise: Promise<T>; resolve: (value: T) => void; reject: (error: unknown) => void } {
  let resolve!: (value: T) => void
  let reject!: (error: unknown) => void
  const promise = new Promise<T>((ok, fail) => {
    resolve = ok
    reject = fail
  })
  promise.catch(() => undefined) // a caller who never reads .header must not see an unhandled rejection
  return { promise, resolve, reject }
}

/** The transformer `cancel` hook (readable cancelled or writable aborted) is not in TypeScript's DOM types yet. */
export type CancellableTransformer = Transformer<Uint8Array, Uint8Array> & { cancel(reason: unknown): void }

/**
 * One encrypt or decrypt engine, independent of the stream API that drives it: the WHATWG
 * `TransformStream` by default, or a Node `Transform` (see node-stream.ts). Output happens only in
 * `transform`/`flush`, through the controller the driver passes, so either driver can take over before
 * data flows.
 */
export interface StreamDriver {
  readonly transformer: CancellableTransformer
  readonly header: Promise<MessageHeader>
  /** Settles when `start` has finished (encrypt: materials fetched and header made). */
  readonly ready: Promise<void>
  /** Where an abort reports its error; the web controller until another driver takes over. */
  errorSink: (error: unknown) => void
  /** Set when a Node Transform drives the engine instead of the Web Stream. */
  nodeDriven: boolean
  /** Set once the Web Stream has emitted output; a Node driver can no longer take over. */
  webOutput: boolean
}

function driverFor(
  header: Promise<MessageHeader>,
  build: (driver: StreamDriver) => CancellableTransformer,
): StreamDriver {
  const driver = { header, errorSink: (_error: unknown) => undefined, nodeDriven: false, webOutput: false } as { -readonly [K in keyof StreamDriver]: StreamDriver[K] }
  driver.transformer = build(driver)
  const start = driver.transformer.start
  driver.ready = new Promise((resolve, reject) => {
    driver.transformer.start = (controller) => {
      driver.errorSink = (error) => controller.error(error)
      const started = Promise.resolve(start?.call(driver.transformer, controller))
      started.then(resolve, reject)
      return started
    }
  })
  driver.ready.catch(() => undefined)
  return driver
}

/** The WHATWG face of a driver. */
export function webStream(driver: StreamDriver): EnvelopeStream {
  return Object.assign(new TransformStream<Uint8Array, Uint8Array>(driver.transformer), { header: driver.header })
}

function cancelledError(reason: unknown): AbortedError {
  return new AbortedError('The stream was cancelled.', { cause: reason })
}

function asChunk(chunk: unknown): Uint8Array {
  if (chunk instanceof Uint8Array) return chunk
  throw new ConfigurationError(`Stream chunks must be Uint8Array; got ${typeof chunk}.`)
}

/** Wire an AbortSignal to a stream controller. Returns a function that detaches it. */
function watchAbort(signal: AbortSignal | undefined, onAbort: (error: AbortedError) => void): () => void {
  if (signal === undefined) return () => undefined
  const handler = () => onAbort(new AbortedError('The stream was aborted.', { cause: signal.reason }))
  if (signal.aborted) {
    handler()
    return () => undefined
  }
  signal.addEventListener('abort', handler, { once: true })
  return () => signal.removeEventListener('abort', handler)
}

/**
 * Encrypt a stream of plaintext chunks into one message. Frames are sealed as soon as a frame's worth
 * of plaintext has arrived; the final frame (and the footer of signing suites) when the input closes.
 */
export function encryptStreamWith(backend: CryptoBackend, keyringOrCmm: unknown, options: EncryptStreamOptions = {}): EnvelopeStream {
  return webStream(encryptDriver(backend, keyringOrCmm, options))
}

export function encryptDriver(backend: CryptoBackend, keyringOrCmm: unknown, options: EncryptStreamOptions = {}): StreamDriver {
  const declaredLength = options.plaintextLength
  if (declaredLength !== undefined && (!Number.isSafeInteger(declaredLength) || declaredLength < 0)) {
    throw new ConfigurationError(`plaintextLength must be a non-negative integer; got ${String(declaredLength)}.`)
  }
  const header = deferred<MessageHeader>()
  let session: EncryptionSession | undefined
  /** Plaintext short of a whole frame; grows as needed up to one frame, so a huge frameLength costs nothing upfront. */
  let pending = new Uint8Array(0)
  let pendingLength = 0
  let seen = 0
  let closed = false
  let detach = () => undefined as void

  const release = () => {
    closed = true
    pending.fill(0, 0, pendingLength)
    pending = new Uint8Array(0)
    pendingLength = 0
    session = undefined
    detach()
  }
  const fail = (error: unknown) => {
    release()
    header.reject(error)
  }
  const keepRemainder = (rest: Uint8Array, frameLength: number) => {
    const needed = pendingLength + rest.length
    if (needed > pending.length) {
      const grown = new Uint8Array(Math.min(frameLength, Math.max(needed, pending.length * 2, 1024)))
      grown.set(pending.subarray(0, pendingLength))
      pending.fill(0, 0, pendingLength)
      pending = grown
    }
    pending.set(rest, pendingLength)
    pendingLength = needed
  }

  let headerWritten = false
  /** The header goes out with the first output, so no output exists before a driver is chosen. */
  const writeHeader = (controller: TransformStreamDefaultController<Uint8Array>, current: EncryptionSession) => {
    if (headerWritten) return
    headerWritten = true
    controller.enqueue(current.headerBytes)
  }

  return driverFor(header.promise, (driver) => ({
    async start(controller) {
      detach = watchAbort(options.signal, (error) => {
        fail(error)
        driver.errorSink(error)
      })
      if (closed) return // already aborted: do not even ask the keyring
      try {
        const started = await beginEncryption(backend, keyringOrCmm, options, declaredLength)
        if (closed) return
        session = started
      } catch (error) {
        fail(error)
        throw error
      }
      // A Web Stream consumer may read the header before writing anything; a Node driver writes it with
      // its first output instead (toNode() is called before the materials manager answers).
      if (!driver.nodeDriven) {
        writeHeader(controller, session)
        driver.webOutput = true
      }
      header.resolve(session.header)
    },

    transform(rawChunk, controller) {
      try {
        const chunk = asChunk(rawChunk)
        const current = session
        if (current === undefined) return
        writeHeader(controller, current)
        seen += chunk.length
        if (declaredLength !== undefined && seen > declaredLength) {
          throw new PolicyViolationError(`The input is longer than the declared plaintextLength (${declaredLength} bytes).`)
        }
        const { sealer, signer } = current
        const frameLength = sealer.frameLength
        const frames = Math.floor((pendingLength + chunk.length) / frameLength)
        let position = 0
        if (frames > 0) {
          const out = backend.allocate(frames * (frameLength + REGULAR_FRAME_OVERHEAD)) // every byte is written
          let offset = 0
          if (pendingLength > 0) {
            position = frameLength - pendingLength
            keepRemainder(chunk.subarray(0, position), frameLength)
            offset = sealer.sealRegular(pending, out, offset)
            pending.fill(0, 0, pendingLength)
            pendingLength = 0
          }
          while (chunk.length - position >= frameLength) {
            offset = sealer.sealRegular(chunk.subarray(position, position + frameLength), out, offset)
            position += frameLength
          }
          signer?.update(out)
          controller.enqueue(out)
        }
        if (position < chunk.length) keepRemainder(chunk.subarray(position), frameLength)
      } catch (error) {
        fail(error)
        throw error
      }
    },

    flush(controller) {
      const current = session
      if (current === undefined) return
      try {
        writeHeader(controller, current)
        if (declaredLength !== undefined && seen !== declaredLength) {
          throw new PolicyViolationError(`The input ended after ${seen} bytes; plaintextLength declared ${declaredLength}.`)
        }
        const { sealer, signer } = current
        const footerRoom = signer === undefined ? 0 : 2 + MAX_SIGNATURE_LENGTH
        const out = new Uint8Array(FINAL_FRAME_OVERHEAD + pendingLength + footerRoom)
        let offset = sealer.sealFinal(pending.subarray(0, pendingLength), out, 0)
        if (signer !== undefined) {
          signer.update(out.subarray(0, offset))
          offset = writeFooter(signer.sign(), out, offset)
        }
        controller.enqueue(out.subarray(0, offset))
      } catch (error) {
        header.reject(error)
        throw error
      } finally {
        release()
      }
    },

    cancel(reason) {
      fail(cancelledError(reason))
    },
  }))
}

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
    const frames: FrameView[] = []
    let plaintextLength = 0
    let offset = 0
    while (state === 'body') {
      const rest = bytes.subarray(offset)
      const size =
        messageHeader.contentType === 'framed' ? frameSizeAt(rest, messageHeader.frameLength) : rest.length < 20 ? 20 : nonFramedSize(rest)
      // Checked before waiting for the bytes, so a huge frame claim is refused without buffering it.
      if (bodyLength + size > maxBodySize) {
        throw new LimitExceededError(`The message body is larger than maxBodySize (${settings.maxBodySize} bytes).`)
      }
      if (rest.length < size) break
      if (sequenceNumber > MAX_SEQUENCE_NUMBER) throw new LimitExceededError('The message has more frames than the format allows.')
      const reader = new ByteReader(rest)
      const frame =
        messageHeader.contentType === 'framed' ? readFrame(reader, messageHeader.frameLength, sequenceNumber) : readNonFramedBody(reader)
      frames.push(frame)
      plaintextLength += frame.content.length
      bodyLength += reader.offset
      offset += reader.offset
      sequenceNumber++
      if (frame.final) state = verifier === undefined ? 'done' : 'footer'
    }
    if (frames.length === 0) return undefined
    verifier?.update(bytes.subarray(0, offset))
    const out = backend.allocate(plaintextLength)
    let position = 0
    for (const frame of frames) {
      try {
        position = opener.open(frame, out, position)
      } catch (error) {
        out.fill(0)
        throw error
      }
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

  async function process(controller: TransformStreamDefaultController<Uint8Array>): Promise<void> {
    if (state === 'header' && !(await readHeader())) return
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

  return driverFor(header.promise, (driver) => ({
    start() {
      detach = watchAbort(options.signal, (error) => {
        fail(error)
        driver.errorSink(error)
      })
    },
    async transform(rawChunk, controller) {
      try {
        if (closed) return
        let chunk = asChunk(rawChunk)
        // While a frame straddles chunks, copy only the bytes that complete it; the rest of the chunk is
        // then read in place.
        while (input.length > 0 && state === 'body' && parsed?.header.contentType === 'framed' && chunk.length > 0) {
          const rest = input.take(chunk, frameSizeAt(input.bytes, parsed.header.frameLength))
          const taken = chunk.length - rest.length
          chunk = rest
          await process(controller)
          if (taken === 0) break
        }
        input.push(chunk)
        await process(controller)
        input.detach() // keep no view into the caller's chunk after returning
      } catch (error) {
        fail(error)
        throw error
      }
    },
    flush() {
      try {
        if (state !== 'done') {
          throw new TruncatedMessageError(
            state === 'header' ? 'The stream ended inside the message header.' : 'The stream ended before the end of the message.',
          )
        }
      } catch (error) {
        header.reject(error)
        throw error
      } finally {
        release()
      }
    },
    cancel(reason) {
      fail(cancelledError(reason))
    },
  }))
}
