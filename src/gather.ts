// The browser's one-shot input that arrives in pieces, gathered into one buffer; loaded on first use by browser.ts,
// so a page that encrypts bytes never downloads it.
import { isAsyncIterable } from './async-iterable.js'
import { inputChunk, refuseLockedStream } from './collect.js'
import { concatBytes } from './format/bytes.js'

/**
 * The chunks of an async iterable, or of a `ReadableStream` (Safari's is not async iterable), in one buffer. The
 * browser's one-shot API runs the one-shot engine on it (which returns nothing unverified), so an application that
 * encrypts in one shot does not download the stream engine; the chunks are zeroed once copied.
 */
export async function gather(source: AsyncIterable<unknown> | ReadableStream<unknown>): Promise<Uint8Array> {
  refuseLockedStream(source)
  const chunks: Uint8Array[] = []
  try {
    for await (const chunk of isAsyncIterable(source) ? source : readerChunks(source as ReadableStream<unknown>)) chunks.push(inputChunk(chunk).slice())
    return concatBytes(chunks)
  } finally {
    for (const chunk of chunks) chunk.fill(0)
  }
}

/**
 * A stream's chunks through a reader of its own. Left early (a chunk refused), the stream is cancelled, as a
 * `for await` loop over an async iterable stream cancels it.
 */
async function* readerChunks(stream: ReadableStream<unknown>): AsyncGenerator<unknown> {
  const reader = stream.getReader()
  let finished = false
  try {
    for (let next = await reader.read(); !next.done; next = await reader.read()) yield next.value
    finished = true
  } finally {
    if (!finished) await reader.cancel().catch(() => undefined)
    reader.releaseLock()
  }
}
