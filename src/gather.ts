// The browser's one-shot calls on input that arrives in pieces (gathered into one buffer) or under a signal; loaded
// on first use by browser.ts, so a page that encrypts bytes without a signal never downloads it.
import { abortable, ownSignal } from './abort.js'
import { isAsyncIterable } from './async-iterable.js'
import { inputChunk, refuseLockedStream } from './collect.js'
import { LimitExceededError } from './errors.js'
import { concatBytes } from './format/bytes.js'
import { DEFAULT_MAX_HEADER_SIZE } from './stream.js'

/** The longest footer: its length field, and a signature of up to what that field can count. */
const MAX_FOOTER_SIZE = 2 + 0xffff

/**
 * The browser's one-shot `encrypt` or `decrypt` (`run`) of input that arrives in pieces (`pieces`: gathered first,
 * under `maxBodySize` when decrypting), or under the `signal` option, which then covers the gathering too.
 */
export function oneShot<T>(
  call: 'encrypt' | 'decrypt',
  input: unknown,
  pieces: boolean,
  options: { readonly signal?: AbortSignal | undefined } | undefined,
  run: (input: unknown) => Promise<T>,
  dropLate?: (late: T) => void,
  maxBodySize?: number,
): Promise<T> {
  const signal = ownSignal(options)
  const work = async (): Promise<T> => {
    if (!pieces) return run(input)
    const gathered = await gather(input as AsyncIterable<unknown> | ReadableStream<unknown>, maxBodySize)
    try {
      return await run(gathered)
    } finally {
      gathered.fill(0)
    }
  }
  return signal == null ? work() : abortable(signal, call, work, dropLate)
}

/**
 * The chunks of an async iterable, or of a `ReadableStream` (Safari's is not async iterable), in one buffer. The
 * browser's one-shot API runs the one-shot engine on it (which returns nothing unverified), so an application that
 * encrypts in one shot does not download the stream engine; the chunks are zeroed once copied.
 *
 * A message to decrypt under a `maxBodySize` is read no further than the largest message it allows (a header of
 * up to 1 MiB, a decrypt stream's default `maxHeaderSize`, that body, a footer), so that input without end is
 * refused in bounded memory, as the Node build's stream refuses it.
 */
export async function gather(source: AsyncIterable<unknown> | ReadableStream<unknown>, maxBodySize?: number): Promise<Uint8Array> {
  refuseLockedStream(source)
  const limit = maxBodySize === undefined ? Number.POSITIVE_INFINITY : DEFAULT_MAX_HEADER_SIZE + maxBodySize + MAX_FOOTER_SIZE
  const chunks: Uint8Array[] = []
  let length = 0
  try {
    for await (const chunk of isAsyncIterable(source) ? source : readerChunks(source as ReadableStream<unknown>)) {
      const bytes = inputChunk(chunk)
      length += bytes.length
      if (length > limit) {
        throw new LimitExceededError(
          `The input is longer than any message maxBodySize (${maxBodySize} bytes) allows, with a header of up to ${DEFAULT_MAX_HEADER_SIZE} bytes and a footer: more than ${limit} bytes arrived.`,
        )
      }
      // A copy, which is zeroed below (made by the constructor: a Buffer's slice(), where this build runs on Node,
      // Bun or Deno, shares its memory; and not with copyBytes, which would then join a page's first load).
      chunks.push(new Uint8Array(bytes))
    }
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
