// Web Stream helpers shared by tests: a source that hands out a buffer in fixed-size chunks, a reader that
// collects a stream into one buffer, and one that reads a stream to its end keeping nothing.

/** All of a stream's chunks, concatenated. */
export async function readAll(stream: ReadableStream<Uint8Array>): Promise<Uint8Array> {
  const chunks: Uint8Array[] = []
  for await (const chunk of stream as unknown as AsyncIterable<Uint8Array>) chunks.push(chunk)
  return new Uint8Array(Buffer.concat(chunks))
}

/** A stream of copies of `data`, `size` bytes at a time (the last chunk may be shorter). */
export function chunked(data: Uint8Array, size: number): ReadableStream<Uint8Array> {
  let offset = 0
  return new ReadableStream({
    pull(controller) {
      if (offset >= data.length) return controller.close()
      controller.enqueue(data.slice(offset, (offset += size)))
    },
  })
}

/**
 * Reads `reader` to the end, keeping nothing, so that the writes to its stream never wait for a reader. The promise
 * settles when the stream closes or fails; its rejection is observed already.
 */
export function drain(reader: ReadableStreamDefaultReader<Uint8Array>): Promise<void> {
  const reading = (async () => {
    while (!(await reader.read()).done);
  })()
  reading.catch(() => undefined)
  return reading
}
