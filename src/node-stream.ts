import { Transform } from 'node:stream'
import { ConfigurationError } from './errors.js'
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
  readonly header: Promise<MessageHeader>
}

/**
 * A native Node Transform over a stream driver. It costs a fraction of `Duplex.fromWeb`'s per-chunk
 * overhead and memory, since no Web Stream queues sit between Node's buffers and the engine. With
 * `startEngine`, no Web Stream exists and the Transform starts the engine itself.
 */
function nodeTransform(driver: StreamDriver, startEngine = false): Transform {
  let finished = false
  const controller = {
    enqueue: (chunk: Uint8Array) => void transform.push(chunk),
    error: (error: unknown) => void transform.destroy(error as Error),
    terminate: () => void transform.push(null),
    desiredSize: 1,
  } as unknown as TransformStreamDefaultController<Uint8Array>
  const { transformer } = driver
  const transform = new Transform({
    construct(callback) {
      driver.destroyed = () => transform.destroyed
      if (startEngine) void transformer.start?.(controller) // settles driver.ready, awaited below
      driver.errorSink = (error) => transform.destroy(error as Error)
      driver.ready.then(
        // An error the engine reported before this Transform took over (an abort) fails it now.
        () => callback(driver.reported?.error as Error | undefined),
        (error: Error) => callback(error),
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
        transformer.cancel(error ?? new Error('The Node stream was destroyed before it finished.'))
      }
      callback(error)
    },
  })
  return transform
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

/** The Node face of a driver alone: no Web Stream is made (nor Node's Web Streams code loaded for it). */
export function nodeOnly(driver: StreamDriver): EnvelopeTransform {
  driver.nodeDriven = true
  return Object.assign(nodeTransform(driver, true), { header: driver.header })
}

export function withNodeAdapter(driver: StreamDriver): NodeEnvelopeStream {
  let started = false
  const stream = webStream(driver)
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
