import { Window } from './async-body.js'
import type { CryptoBackend } from './backend/types.js'
import { beginEncryption, ENCRYPT_OPTIONS, type EncryptionSession } from './encrypt.js'
import { ConfigurationError, LimitExceededError, PolicyViolationError, UnsupportedOperationError } from './errors.js'
import { platformFailure } from './platform-failure.js'
import { byteCount } from './byte-count.js'
import { writeFooter } from './format/footer.js'
import { FINAL_FRAME_OVERHEAD, REGULAR_FRAME_OVERHEAD } from './format/frame.js'
import { optionsObject } from './option-names.js'
import { quoteValue } from './quote.js'
import { abortSignalOption, abortedError, watchAbort } from './abort.js'
import {
  asChunk,
  cancelledError,
  deferred,
  driverFor,
  settleFlush,
  settleFlushAsync,
  webStream,
  type EncryptStreamOptions,
  type EnvelopeStream,
  type StreamDriver,
} from './stream.js'
import { footerRoom, sealFinal, sealRegular } from './frames.js'
import { streamSigner, type StreamSigner } from './stream-signer.js'
import type { Bytes, MessageHeader } from './types.js'

/** The options encrypt streams take (`EncryptStreamOptions`). */
export const ENCRYPT_STREAM_OPTIONS = `${ENCRYPT_OPTIONS}, plaintextLength, maxPlaintextLength` as const

/**
 * Encrypt a stream of plaintext chunks into one message. Frames are sealed as soon as a frame's worth
 * of plaintext has arrived; the final frame (and the footer of signing suites) when the input closes.
 */
export function encryptStreamWith(backend: CryptoBackend, keyringOrCmm: unknown, options: EncryptStreamOptions = {}): EnvelopeStream {
  return webStream(encryptDriver(backend, keyringOrCmm, options))
}

/** A plaintext length option: an integer from 0 to 2^53 - 1, in the words `positiveIntegerOption` uses. */
function lengthOption(name: string, value: unknown): number | undefined {
  if (value !== undefined && (!Number.isSafeInteger(value) || (value as number) < 0)) {
    throw new ConfigurationError(`${name} must be an integer from 0 to ${Number.MAX_SAFE_INTEGER}; got ${quoteValue(value)}.`)
  }
  return value as number | undefined
}

export function encryptDriver(backend: CryptoBackend, keyringOrCmm: unknown, streamOptions: EncryptStreamOptions | null | undefined): StreamDriver {
  const options = optionsObject(streamOptions, 'An encrypt stream', ENCRYPT_STREAM_OPTIONS)
  const declaredLength = lengthOption('plaintextLength', options.plaintextLength)
  const maxLength = lengthOption('maxPlaintextLength', options.maxPlaintextLength)
  if (declaredLength !== undefined && maxLength !== undefined && declaredLength > maxLength) {
    throw new ConfigurationError(`plaintextLength (${declaredLength}) is larger than maxPlaintextLength (${maxLength}).`)
  }
  const signal = abortSignalOption(options.signal)
  const header = deferred<MessageHeader>()
  let session: EncryptionSession | undefined
  /** For signing suites: signs the message as it goes out. */
  let signer: StreamSigner | undefined
  /** Plaintext short of a whole frame; grows as needed up to one frame, so a huge frameLength costs nothing upfront. */
  let pending = new Uint8Array(0)
  let pendingLength = 0
  let seen = 0
  let closed = false
  let detach = () => undefined as void
  /**
   * Aborted when the stream ends, however it ends (the caller's signal, a cancel, a destroyed Node stream, an
   * error): the materials manager gets it as the request's signal, so a KMS request under way is cancelled.
   */
  const ending = new AbortController()

  const release = () => {
    closed = true
    ending.abort()
    pending.fill(0, 0, pendingLength)
    pending = new Uint8Array(0)
    pendingLength = 0
    session?.sealer.dispose()
    session = undefined
    signer?.abandon()
    signer = undefined
    detach()
  }
  /** Ends the stream with `error`, typed (a platform failure becomes INTERNAL_ERROR), which it returns to throw. */
  const fail = (error: unknown) => {
    const typed = platformFailure(error)
    release()
    header.reject(typed)
    return typed
  }
  const keepRemainder = (rest: Uint8Array, frameLength: number) => {
    const needed = pendingLength + rest.length
    if (needed > pending.length) {
      // From the backend, as all plaintext it holds (a test can see it zeroed); bytes past pendingLength are never read.
      const grown = backend.allocate(Math.min(frameLength, Math.max(needed, pending.length * 2, 1024)))
      grown.set(pending.subarray(0, pendingLength))
      pending.fill(0, 0, pendingLength)
      pending = grown
    }
    pending.set(rest, pendingLength)
    pendingLength = needed
  }

  const checkDeclaredLength = () => {
    if (declaredLength !== undefined && seen !== declaredLength) {
      throw new PolicyViolationError(`The input ended after ${byteCount(seen)}; plaintextLength declared ${declaredLength}.`)
    }
  }

  /**
   * The transform for an asynchronous key (WebCrypto): the same frames as the synchronous loop, sealed
   * through a window of calls in flight. `pending` and the chunk stay untouched until every call is done.
   */
  async function sealChunkAsync(current: EncryptionSession, chunk: Uint8Array, controller: TransformStreamDefaultController<Uint8Array>): Promise<void> {
    const { sealer } = current
    const frameLength = sealer.frameLength
    const frames = Math.floor((pendingLength + chunk.length) / frameLength)
    let position = 0
    let catchingUp: Promise<void> | undefined
    if (frames > 0) {
      const out = backend.allocate(frames * (frameLength + REGULAR_FRAME_OVERHEAD)) // every byte is written
      const window = new Window()
      let offset = 0
      const completesPending = pendingLength > 0
      try {
        if (completesPending) {
          position = frameLength - pendingLength
          keepRemainder(chunk.subarray(0, position), frameLength)
          offset = sealer.sealRegularAsync(pending.subarray(0, frameLength), out, offset, window.pending)
        }
        while (chunk.length - position >= frameLength) {
          offset = sealer.sealRegularAsync(chunk.subarray(position, position + frameLength), out, offset, window.pending)
          position += frameLength
          await window.add(frameLength)
        }
        await window.drain()
      } catch (error) {
        await Promise.allSettled(window.pending)
        throw error
      }
      if (closed) return // aborted meanwhile: release() has dropped what the stream held
      if (completesPending) {
        pending.fill(0, 0, pendingLength)
        pendingLength = 0
      }
      catchingUp = signer?.update(out)
      controller.enqueue(out)
    }
    if (position < chunk.length) keepRemainder(chunk.subarray(position), frameLength)
    await catchingUp
  }

  let headerWritten = false
  /** The header goes out with the first output, so no output exists before a driver is chosen. */
  const writeHeader = (controller: TransformStreamDefaultController<Uint8Array>, current: EncryptionSession) => {
    if (headerWritten) return
    headerWritten = true
    controller.enqueue(current.headerBytes)
  }

  return driverFor('encrypt', header.promise, (driver) => ({
    async start(controller) {
      detach = watchAbort(signal, () => {
        const error = abortedError('The stream', signal as AbortSignal)
        fail(error)
        driver.report(error)
      })
      if (closed) return // already aborted: do not even ask the keyring
      try {
        const beginning = beginEncryption(
          backend,
          keyringOrCmm,
          // Without a prototype, as optionsObject made `options`: an option set on Object.prototype is not read.
          { __proto__: null, ...options, signal: ending.signal } as typeof options,
          { plaintextLength: declaredLength, maxPlaintextLength: maxLength },
          async (suite) => {
            // Signing a stream needs an incremental signer, which a backend may load on demand (the browser's).
            if (suite.signature !== undefined && !backend.incrementalSignatures && (await backend.loadIncrementalSignatures?.()) !== true) {
              throw new UnsupportedOperationError(`The ${backend.name} backend cannot sign streams: use one-shot encrypt or suite 0x0478.`)
            }
          },
        )
        // An abort, or the Node stream destroyed, ends the wait for the keyring (KMS may take seconds to answer):
        // a Node Transform cannot fail before this returns.
        const started = await Promise.race([beginning, driver.stopping])
        if (started === undefined || closed || driver.destroyed()) {
          void beginning.then((late) => late.sealer.dispose(), () => undefined) // keep nothing of what comes
          if (!closed) fail(cancelledError(driver.stopReason))
          return
        }
        session = started
        signer = streamSigner(backend, started, declaredLength)
      } catch (error) {
        throw fail(error)
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
        const chunk = asChunk(rawChunk, 'encrypt')
        const current = session
        if (current === undefined) return
        writeHeader(controller, current)
        seen += chunk.length
        if (declaredLength !== undefined && seen > declaredLength) {
          throw new PolicyViolationError(`The input is longer than the declared plaintextLength (${declaredLength} bytes).`)
        }
        if (maxLength !== undefined && seen > maxLength) {
          throw new LimitExceededError(`The input is longer than maxPlaintextLength (${maxLength} bytes).`)
        }
        const { sealer } = current
        if (sealer.async) {
          return sealChunkAsync(current, chunk, controller).catch((error: unknown) => {
            throw fail(error)
          })
        }
        const frameLength = sealer.frameLength
        const frames = Math.floor((pendingLength + chunk.length) / frameLength)
        let position = 0
        let catchingUp: Promise<void> | undefined
        if (frames > 0) {
          const out = backend.allocate(frames * (frameLength + REGULAR_FRAME_OVERHEAD)) // every byte is written
          let offset = 0
          if (pendingLength > 0) {
            position = frameLength - pendingLength
            keepRemainder(chunk.subarray(0, position), frameLength)
            offset = sealRegular(sealer, pending, out, offset)
            pending.fill(0, 0, pendingLength)
            pendingLength = 0
          }
          while (chunk.length - position >= frameLength) {
            offset = sealRegular(sealer, chunk.subarray(position, position + frameLength), out, offset)
            position += frameLength
          }
          catchingUp = signer?.update(out)
          controller.enqueue(out)
        }
        if (position < chunk.length) keepRemainder(chunk.subarray(position), frameLength)
        // The thread hashing the message has fallen behind: the next chunk waits for it.
        return catchingUp
      } catch (error) {
        throw fail(error)
      }
    },

    flush(controller) {
      const current = session
      if (current === undefined) return undefined
      const finalFrame = (): Bytes => {
        writeHeader(controller, current)
        checkDeclaredLength()
        return new Uint8Array(FINAL_FRAME_OVERHEAD + pendingLength + footerRoom(current))
      }
      const finalPlaintext = () => pending.subarray(0, pendingLength)
      const messageSigner = signer
      if (current.sealer.async || messageSigner?.async === true) {
        return settleFlushAsync(header, release, async () => {
          const out = finalFrame()
          const end = current.sealer.async
            ? await current.sealer.sealFinalAsync(finalPlaintext(), out, 0)
            : sealFinal(current.sealer, finalPlaintext(), out, 0)
          if (messageSigner === undefined) return void controller.enqueue(out.subarray(0, end))
          void messageSigner.update(out.subarray(0, end)) // the last bytes: finish waits for every one
          signer = undefined // finish ends the job: nothing left to abandon
          controller.enqueue(out.subarray(0, writeFooter(await messageSigner.finish(), out, end)))
        })
      }
      return settleFlush(header, release, () => {
        const out = finalFrame()
        const end = sealFinal(current.sealer, finalPlaintext(), out, 0)
        if (messageSigner === undefined) return void controller.enqueue(out.subarray(0, end))
        messageSigner.update(out.subarray(0, end))
        controller.enqueue(out.subarray(0, writeFooter(messageSigner.finish(), out, end)))
      })
    },

    cancel(reason) {
      fail(cancelledError(reason))
    },
  }))
}
