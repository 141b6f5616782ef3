import { attachedChunk, onPlainBuffer } from './detached.js'
import { AbortedError, ConfigurationError } from './errors.js'
import { notBytes } from './input-refusal.js'
import { platformFailure } from './platform-failure.js'
import type { Bytes, DecryptOptions, EncryptionContext, EncryptOptions, MessageHeader } from './types.js'
import { isBytes } from './is-bytes.js'

/** Options of the encrypt streams: those of `encrypt`, and the plaintext's length (or a bound on it) and an abort `signal`. */
export interface EncryptStreamOptions extends EncryptOptions {
  /** Declared plaintext length: the stream errors if the input is longer or shorter. */
  plaintextLength?: number | undefined
  /**
   * Upper bound on the input when its exact length is unknown: the stream errors (`LIMIT_EXCEEDED`) if the
   * input is longer. A `CachingMaterialsManager` needs a length to count bytes against `maxBytesEncrypted`,
   * so a stream declaring neither this nor `plaintextLength` bypasses the cache; with it, the cache charges
   * this many bytes to the cached data key.
   */
  maxPlaintextLength?: number | undefined
  /** Aborting errors both sides of the stream (\`ABORTED\`), releases what it holds and cancels KMS requests under way. */
  signal?: AbortSignal | undefined
}

/** Options of the decrypt streams: those of `decrypt`, and `unsignedOnly`, `maxHeaderSize` and an abort `signal`. */
export interface DecryptStreamOptions extends DecryptOptions {
  /** Reject signed suites right after the header, for callers who must never see unverified plaintext. */
  unsignedOnly?: boolean | undefined
  /** Largest header the stream buffers before giving up. Default 1 MiB. */
  maxHeaderSize?: number | undefined
  /** Aborting errors both sides of the stream (\`ABORTED\`), releases what it holds and cancels KMS requests under way. */
  signal?: AbortSignal | undefined
}

/** A `TransformStream` whose `header` resolves once the message header is written or authenticated. */
export interface EnvelopeStream extends TransformStream<Uint8Array, Bytes> {
  /** Resolves to the header once it is written (encrypt, before any input) or authenticated (decrypt); rejects if the stream fails first. */
  readonly header: Promise<MessageHeader>
}

export const DEFAULT_MAX_HEADER_SIZE = 1024 * 1024
/**
 * A frame, or a non-framed body, can be released only after its tag verifies, so a stream holds all of it first: the
 * most a decrypt stream holds of one, unless `maxBodySize` says otherwise. The message says how long its frames are,
 * up to 4 GiB, and anyone who can write a message (whoever holds an RSA public key) chooses that.
 */
export const DEFAULT_MAX_BUFFERED_BODY = 64 * 1024 * 1024

export function deferred<T>(): { promise: Promise<T>; resolve: (value: T) => void; reject: (error: unknown) => void } {
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
export type CancellableTransformer = Transformer<Uint8Array, Bytes> & { cancel(reason: unknown): void }

/**
 * One encrypt or decrypt engine, independent of the stream API that drives it: the WHATWG
 * `TransformStream` by default, or a Node `Transform` (see node-stream.ts). Output happens only in
 * `transform`/`flush`, through the controller the driver passes, so either driver can take over before
 * data flows.
 */
export interface StreamDriver {
  readonly operation: 'encrypt' | 'decrypt'
  readonly transformer: CancellableTransformer
  readonly header: Promise<MessageHeader>
  /** Settles when `start` has finished (encrypt: materials fetched and header made). */
  readonly ready: Promise<void>
  /** Where `report` sends an error: the web controller until another driver takes over. */
  errorSink: (error: unknown) => void
  /** How the engine reports an abort: the error is kept (see `reported`) and passed to `errorSink`. */
  readonly report: (error: unknown) => void
  /** The first error reported, for a driver that takes over after it (an AbortSignal aborted at creation). */
  readonly reported?: { readonly error: unknown }
  /**
   * Resolves (to undefined) once the engine is to stop: an abort reported, or the Node Transform destroyed.
   * `start` stops waiting on the materials manager then, and lets its answer go when it comes.
   */
  readonly stopping: Promise<undefined>
  /** `reason`: why the Node Transform was destroyed, the cause of the error the stream then fails with. */
  readonly stop: (reason?: unknown) => void
  /** The first reason `stop` was given. */
  readonly stopReason?: unknown
  /** Set when a Node Transform drives the engine instead of the Web Stream. */
  nodeDriven: boolean
  /** Set once the Web Stream has emitted output; a Node driver can no longer take over. */
  webOutput: boolean
  /**
   * True once the Node Transform driving the engine was destroyed. Node runs a destroy only after the Transform's
   * construct, which waits for `start`, so `start` asks this before it resolves the header. The Transform sets it
   * when it is made: a destroy() called before construct has run counts too.
   */
  destroyed: () => boolean
  /** Node only: set once the caller has taken `.header`, the promise that also carries a failure before the header. */
  headerTaken?: boolean
  /** Decrypt only: the stored context plus the authenticated pairs the message does not store, once the header is open. */
  authenticatedContext?: () => EncryptionContext | undefined
}

export function driverFor(
  operation: 'encrypt' | 'decrypt',
  header: Promise<MessageHeader>,
  build: (driver: StreamDriver) => CancellableTransformer,
): StreamDriver {
  const driver = { operation, header, errorSink: (_error: unknown) => undefined, nodeDriven: false, webOutput: false, destroyed: () => false } as {
    -readonly [K in keyof StreamDriver]: StreamDriver[K]
  }
  driver.stopping = new Promise<undefined>(
    (resolve) =>
      (driver.stop = (reason) => {
        driver.stopReason ??= reason
        resolve(undefined)
      }),
  )
  driver.report = (error) => {
    driver.reported ??= { error }
    driver.stop()
    driver.errorSink(error)
  }
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
  return Object.assign(new TransformStream<Uint8Array, Bytes>(driver.transformer), { header: driver.header })
}

export function cancelledError(reason: unknown): AbortedError {
  return new AbortedError('The stream was cancelled.', { cause: reason })
}

/**
 * A chunk written to a stream, as bytes. A view of a SharedArrayBuffer or of a resizable ArrayBuffer is copied:
 * WebCrypto refuses those. A view of a detached buffer is refused, not taken as an empty chunk.
 */
export function asChunk(chunk: unknown, operation: 'encrypt' | 'decrypt'): Uint8Array {
  if (isBytes(chunk)) return onPlainBuffer(attachedChunk(chunk))
  throw new ConfigurationError(`Stream chunks must be Uint8Array; ${notBytes(chunk, operation)}.`)
}

/** The end of a flush: a failure rejects `.header` and is rethrown; either way the engine lets go of what it holds. */
export function settleFlush(header: { reject: (error: unknown) => void }, release: () => void, step: () => void): void {
  try {
    step()
  } catch (error) {
    const typed = platformFailure(error)
    header.reject(typed)
    throw typed
  } finally {
    release()
  }
}

/** `settleFlush` for a flush that awaits an asynchronous cipher. */
export async function settleFlushAsync(header: { reject: (error: unknown) => void }, release: () => void, step: () => Promise<void>): Promise<void> {
  try {
    await step()
  } catch (error) {
    const typed = platformFailure(error)
    header.reject(typed)
    throw typed
  } finally {
    release()
  }
}
