import type { CryptoBackend } from './backend/types.js'
import { asMaterialsManager } from './cmm/default.js'
import { checkHeader, DECRYPT_OPTIONS, decryptionSettings, openHeader } from './open-header.js'
import { positiveIntegerOption } from './encrypt.js'
import { optionsObject } from './option-names.js'
import { ConfigurationError, PolicyViolationError, TruncatedMessageError, UnsupportedOperationError } from './errors.js'
import { platformFailure } from './platform-failure.js'
import { TEXT_MESSAGE_PREFIX, parseHeader, type ParsedHeader } from './format/header.js'
import { InputBuffer } from './input-buffer.js'
import { quoteValue } from './quote.js'
import { abortSignalOption, abortedError, watchAbort } from './abort.js'
import {
  DEFAULT_MAX_HEADER_SIZE,
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
import { decryptBody, type DecryptBody } from './stream-decrypt-body.js'
import type { DecryptOptions, DecryptResult, EncryptionContext, MessageHeader } from './types.js'

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

export function decryptDriver(backend: CryptoBackend, keyringOrCmm: unknown, streamOptions: DecryptStreamOptions | null | undefined): StreamDriver {
  const cmm = asMaterialsManager(keyringOrCmm)
  const options = optionsObject(streamOptions, 'A decrypt stream', DECRYPT_STREAM_OPTIONS)
  const settings = decryptionSettings(options)
  const maxHeaderSize = positiveIntegerOption('maxHeaderSize', options.maxHeaderSize, Number.MAX_SAFE_INTEGER) ?? DEFAULT_MAX_HEADER_SIZE
  const signal = abortSignalOption(options.signal)
  const { unsignedOnly } = options
  // A truthy string such as 'true' (from an environment variable, say) must not pass as false.
  if (unsignedOnly !== undefined && typeof unsignedOnly !== 'boolean') {
    throw new ConfigurationError(`unsignedOnly must be true or false; got ${quoteValue(unsignedOnly)}.`)
  }
  const header = deferred<MessageHeader>()
  const input = new InputBuffer()
  let needed = 1
  /** What reads the message after its header, once the header is authenticated. */
  let body: DecryptBody | undefined
  let authenticatedContext: EncryptionContext | undefined
  let closed = false
  let detach = () => undefined as void
  /** Aborted when the stream ends, however it ends: the request's signal, which cancels a KMS request under way. */
  const ending = new AbortController()

  const release = () => {
    closed = true
    ending.abort()
    body?.release()
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
    authenticatedContext = authenticated.encryptionContext
    input.consume(candidate.length)
    body = decryptBody(backend, input, candidate, authenticated, settings)
    header.resolve(candidate.header)
    return true
  }

  async function headerChunk(chunk: Uint8Array, controller: TransformStreamDefaultController<Uint8Array>): Promise<void> {
    input.push(chunk)
    if (await readHeader()) await (body as DecryptBody).process(controller)
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
        if (body === undefined) return headerChunk(chunk, controller).catch(failed)
        return body.chunk(chunk, controller)?.catch(failed)
      } catch (error) {
        return failed(error)
      }
    },
    flush() {
      settleFlush(header, release, () => {
        // The header's length fields of the bytes in so far asked for more than came: the whole of them may still
        // show a malformed field that no earlier prefix reached, which is what one-shot decrypt reports, whatever the chunks.
        if (body === undefined && input.length > 0) headerFault(input.bytes)
        if (body?.state !== 'done') {
          throw new TruncatedMessageError(
            body === undefined ? 'The stream ended inside the message header.' : 'The stream ended before the end of the message.',
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
