import { attachedChunk } from './detached.js'
import { ConfigurationError } from './errors.js'
import { concatBytes } from './format/bytes.js'
import { notBytes } from './input-refusal.js'
import type { EnvelopeStream } from './stream.js'
import type { Bytes, MessageHeader } from './types.js'
import { isBytes } from './is-bytes.js'

/**
 * One-shot input that is a `ReadableStream` someone already reads (a reader or a pipe holds it): a
 * ConfigurationError that says so, rather than the platform's TypeError at the first read.
 */
export function refuseLockedStream(source: unknown): void {
  if (typeof ReadableStream == 'function' && source instanceof ReadableStream && source.locked) {
    throw new ConfigurationError('The input ReadableStream is locked: a reader or a pipe already holds it. Pass a stream that nothing reads yet.')
  }
}

const STRING_CHUNK =
  'got a string: yield its bytes (new TextEncoder().encode(text)); a Node Readable yields strings when it has an encoding (setEncoding) or was made from strings'

/** A chunk of one-shot input that arrives in pieces, which must be bytes. */
export function inputChunk(chunk: unknown): Uint8Array {
  if (!isBytes(chunk)) throw new ConfigurationError(`Iterable input must yield Uint8Array chunks; ${typeof chunk === 'string' ? STRING_CHUNK : notBytes(chunk)}.`)
  return attachedChunk(chunk)
}

/**
 * Drive an envelope stream from an async iterable and gather its output. Used by the one-shot API for
 * iterable input: the result is returned only when the whole message has been processed. The stream is made
 * once the source is known to be readable: an encrypt stream asks for its materials as soon as it exists.
 */
export async function collectThrough(
  source: AsyncIterable<unknown>,
  makeStream: () => EnvelopeStream,
): Promise<{ output: Bytes; header: MessageHeader }> {
  refuseLockedStream(source)
  const stream = makeStream()
  const chunks: Uint8Array[] = []
  const reading = (async () => {
    const reader = stream.readable.getReader()
    for (let next = await reader.read(); !next.done; next = await reader.read()) chunks.push(next.value)
  })()
  // Observed below; until then a failure while we wait on the source must not count as unhandled.
  reading.catch(() => undefined)
  const writer = stream.writable.getWriter()
  try {
    for await (const chunk of source) await writer.write(inputChunk(chunk))
    await writer.close()
  } catch (error) {
    await writer.abort(error).catch(() => undefined)
    await reading.catch(() => undefined)
    for (const chunk of chunks) chunk.fill(0)
    throw error
  }
  try {
    await reading
  } catch (error) {
    for (const chunk of chunks) chunk.fill(0)
    throw error
  }
  return { output: concatBytes(chunks), header: await stream.header }
}
