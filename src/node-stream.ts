import { Transform } from 'node:stream'
import { attachedChunk } from './detached.js'
import { ConfigurationError } from './errors.js'
import { notBytes } from './input-refusal.js'
import { webStream, type EnvelopeStream, type StreamDriver } from './stream.js'
import type { MessageHeader } from './types.js'

/** An envelope stream that can also hand out a Node `Transform` for `stream.pipeline`. */
export interface NodeEnvelopeStream extends EnvelopeStream {
  /**
   * A Node `Transform` driving the same engine, for `pipeline(source, stream.toNode(), destination)`.
   * Use either it or the Web Stream sides, not both.
   */
  toNode(): Transform
}

/** A Node `Transform` whose `header` resolves once the message header is written or authenticated. */
export interface EnvelopeTransform extends Transform {
  /** Resolves to the header once it is written (encrypt, before any input) or authenticated (decrypt); rejects if the stream fails first. */
  readonly header: Promise<MessageHeader>
}

/** The cause of the error a stream destroyed with no error of its own fails with. */
const destroyedEarly = () => new Error('The Node stream was destroyed before it finished.')

/**
 * A native Node Transform over a stream driver. It costs a fraction of `Duplex.fromWeb`'s per-chunk
 * overhead and memory, since no Web Stream queues sit between Node's buffers and the engine. With
 * `startEngine`, no Web Stream exists and the Transform starts the engine itself.
 */
function nodeTransform(driver: StreamDriver, startEngine = false): Transform {
  let finished = false
  let headerWritten = false
  driver.header.then(() => (headerWritten = true), () => undefined)
  /**
   * A caller who awaited `.header` before piping the Transform (to store the message id first, say) is told of a
   * failure before the header there. With no 'error' listener yet, Node would also throw the error as an
   * unhandled 'error' event and end the process. The error is kept: a pipeline made later fails with it.
   */
  const failing = (error: Error | undefined): Error | undefined => {
    if (error !== undefined && driver.headerTaken === true && !headerWritten && transform.listenerCount('error') === 0) {
      transform.once('error', () => undefined)
    }
    return error
  }
  const controller = {
    enqueue: (chunk: Uint8Array) => void transform.push(chunk),
    error: (error: unknown) => void transform.destroy(failing(error as Error)),
    terminate: () => void transform.push(null),
    desiredSize: 1,
  } as unknown as TransformStreamDefaultController<Uint8Array>
  const { transformer } = driver
  const transform = new Transform({
    construct(callback) {
      if (startEngine) void transformer.start?.(controller) // settles driver.ready, awaited below
      driver.errorSink = (error) => transform.destroy(failing(error as Error))
      driver.ready.then(
        // An error the engine reported before this Transform took over (an abort) fails it now.
        () => callback(failing(driver.reported?.error as Error | undefined)),
        (error: Error) => callback(failing(error)),
      )
    },
    transform(chunk: Uint8Array, _encoding, callback) {
      settle(() => transformer.transform?.(chunk, controller), callback)
    },
    flush(callback) {
      settle(
        () => transformer.flush?.(controller),
        (error) => {
          if (error === undefined) finished = true
          callback(error)
        },
      )
    },
    destroy(error, callback) {
      if (!finished) {
        finished = true
        transformer.cancel(error ?? destroyedEarly())
      }
      callback(error)
    },
  })
  // Node's write() and end() turn a Uint8Array into a Buffer before anything else, and throw a bare TypeError
  // for one whose buffer was detached, or for a chunk that is neither a view of bytes nor a string (an
  // ArrayBuffer, null): refuse those first, with a typed error, thrown as Node throws its own. A string is
  // Node's: bytes in its encoding. Two refusals destroy the Transform instead, so that a pipeline fails with them:
  // - a decrypt stream's string in a text encoding (see `textRefused`), a stream error rather than a bad argument;
  // - any refusal while piped into: Node's pipe() calls write() in its source's data handler, where Node 20 and 22
  //   let a throw escape as an uncaught exception (pipe() listens for 'unpipe' on its destination).
  const decrypting = driver.operation === 'decrypt'
  const text = (self: Transform, chunk: unknown, encoding: unknown) => (decrypting && typeof chunk === 'string' ? textRefused(self, encoding) : undefined)
  const { write, end } = transform
  transform.write = function (this: Transform, chunk: unknown, ...rest: unknown[]): boolean {
    let refused = text(this, chunk, rest[0])
    let bytes: unknown
    try {
      bytes = nodeChunk(chunk)
    } catch (error) {
      if (this.listenerCount('unpipe') === 0) throw error
      refused = error as ConfigurationError
    }
    if (refused !== undefined) return (this.destroy(failing(refused)), false)
    return (write as (...args: unknown[]) => boolean).call(this, bytes, ...rest)
  } as Transform['write']
  transform.end = function (this: Transform, chunk?: unknown, ...rest: unknown[]): Transform {
    const refused = text(this, chunk, rest[0])
    if (refused !== undefined) return this.destroy(failing(refused))
    const data = chunk === undefined || chunk === null || typeof chunk === 'function' ? chunk : nodeChunk(chunk)
    return (end as (...args: unknown[]) => Transform).call(this, data, ...rest)
  } as Transform['end']
  // From now, not from construct: a keyring that answers before Node gets to construct (in the same turn as a
  // destroy() right after the Transform was made) must see the destroy too.
  driver.destroyed = () => transform.destroyed
  // Node runs a destroy only once construct has called back, which waits for the engine's start (an encrypt's
  // keyring): the engine is told at once, so that it stops waiting.
  const { destroy } = transform
  transform.destroy = function (this: Transform, ...args: Parameters<Transform['destroy']>): Transform {
    driver.stop(args[0] ?? destroyedEarly())
    return destroy.apply(this, args)
  }
  return transform
}

/**
 * A decrypt Transform given a string in a text encoding (UTF-8, Node's default, or ASCII): its source read the
 * message as text (a Readable with `setEncoding`, whose strings `pipe` writes with no encoding), and that lost
 * bytes the message needs. It used to fail later as a misleading TRUNCATED_MESSAGE. A string written with an
 * encoding that gives bytes back (base64, hex, latin1) is bytes, as Node takes it.
 */
function textRefused(transform: Transform, given: unknown): ConfigurationError | undefined {
  const state = (transform as { _writableState?: { defaultEncoding?: unknown } })._writableState
  const encoding = String(typeof given === 'string' ? given : (state?.defaultEncoding ?? 'utf8')).toLowerCase()
  if (encoding !== 'utf8' && encoding !== 'utf-8' && encoding !== 'ascii') return undefined
  return new ConfigurationError(
    `A decrypt stream got a string in ${encoding === 'ascii' ? 'ASCII' : 'UTF-8'}: its source gave text (a Readable with setEncoding, or a text body), ` +
      `which cannot hold a message's bytes. Pass the bytes, or write a base64 or hex string with its encoding (write(text, "base64")).`,
  )
}

/** A chunk given to a Node Transform's write() or end(), refused with a typed error where Node would throw a bare one. */
function nodeChunk(chunk: unknown): unknown {
  // Node takes any view of bytes (a DataView too).
  if (ArrayBuffer.isView(chunk)) return attachedChunk(chunk)
  if (typeof chunk === 'string') return chunk
  throw new ConfigurationError(`Stream chunks must be bytes (a Uint8Array) or a string, in a Node stream's write(); ${notBytes(chunk)}.`)
}

/**
 * Run a transformer step and report to a Node callback: at once when the step is synchronous (most chunks),
 * so Node keeps feeding the stream without a microtask round per chunk; after it settles otherwise.
 */
function settle(step: () => void | PromiseLike<void>, callback: (error?: Error) => void): void {
  let result: void | PromiseLike<void>
  try {
    result = step()
  } catch (error) {
    callback(error as Error)
    return
  }
  if (result === undefined || typeof (result as PromiseLike<void>).then !== 'function') callback()
  else (result as PromiseLike<void>).then(() => callback(), (error: Error) => callback(error))
}

/** `.header` on `target`, noting on the driver that the caller has taken it. */
function withHeader<T extends object>(target: T, driver: StreamDriver): T & { readonly header: Promise<MessageHeader> } {
  return Object.defineProperty(target, 'header', {
    get: () => {
      driver.headerTaken = true
      return driver.header
    },
    enumerable: true,
    configurable: true,
  }) as T & { readonly header: Promise<MessageHeader> }
}

/** The Node face of a driver alone: no Web Stream is made (nor Node's Web Streams code loaded for it). */
export function nodeOnly(driver: StreamDriver): EnvelopeTransform {
  driver.nodeDriven = true
  return withHeader(nodeTransform(driver, true), driver)
}

export function withNodeAdapter(driver: StreamDriver): NodeEnvelopeStream {
  let started = false
  const stream = withHeader(webStream(driver), driver)
  return Object.assign(stream, {
    toNode: () => {
      if (started) throw new ConfigurationError('toNode() can be called once per stream.')
      // A locked side is in use (a writer or reader holds it): both faces would feed the same engine.
      if (driver.webOutput || stream.writable.locked || stream.readable.locked) {
        throw new ConfigurationError('Call toNode() right after creating the stream, before its Web Stream sides are used.')
      }
      started = true
      driver.nodeDriven = true
      return nodeTransform(driver)
    },
  })
}
