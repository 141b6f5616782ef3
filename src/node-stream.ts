import { Transform } from 'node:stream'
import { ConfigurationError } from './errors.js'
import { webStream, type EnvelopeStream, type StreamDriver } from './stream.js'

/** An envelope stream that can also hand out a Node `Transform` for `stream.pipeline`. */
export interface NodeEnvelopeStream extends EnvelopeStream {
  /**
   * A Node `Transform` driving the same engine, for `pipeline(source, stream.toNode(), destination)`.
   * Use either it or the Web Stream sides, not both.
   */
  toNode(): Transform
}

/**
 * A native Node Transform over a stream driver. It costs a fraction of `Duplex.fromWeb`'s per-chunk
 * overhead and memory, since no Web Stream queues sit between Node's buffers and the engine.
 */
function nodeTransform(driver: StreamDriver): Transform {
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
      driver.errorSink = (error) => transform.destroy(error as Error)
      driver.ready.then(() => callback(), (error: Error) => callback(error))
    },
    transform(chunk: Uint8Array, _encoding, callback) {
      Promise.resolve()
        .then(() => transformer.transform?.(chunk, controller))
        .then(() => callback(), (error: Error) => callback(error))
    },
    flush(callback) {
      Promise.resolve()
        .then(() => transformer.flush?.(controller))
        .then(() => {
          finished = true
          callback()
        }, (error: Error) => callback(error))
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

export function withNodeAdapter(driver: StreamDriver): NodeEnvelopeStream {
  let started = false
  return Object.assign(webStream(driver), {
    toNode: () => {
      if (started) throw new ConfigurationError('toNode() can be called once per stream.')
      if (driver.webOutput) {
        throw new ConfigurationError('Call toNode() right after creating the stream, before its Web Stream sides are used.')
      }
      started = true
      driver.nodeDriven = true
      return nodeTransform(driver)
    },
  })
}
