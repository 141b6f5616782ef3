import { Duplex } from 'node:stream'
import type { ReadableStream, WritableStream } from 'node:stream/web'
import type { EnvelopeStream } from './stream.js'

/** An envelope stream that can also hand out a Node `Duplex` for `stream.pipeline`. */
export interface NodeEnvelopeStream extends EnvelopeStream {
  /**
   * A Node `Duplex` over this stream, for `pipeline(source, stream.toNode(), destination)`.
   * Use either the Duplex or the Web Stream, not both.
   */
  toNode(): Duplex
}

export function withNodeAdapter(stream: EnvelopeStream): NodeEnvelopeStream {
  return Object.assign(stream, {
    toNode: () =>
      Duplex.fromWeb(stream as unknown as { readable: ReadableStream; writable: WritableStream }, { objectMode: false }),
  })
}
