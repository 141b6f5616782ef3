// A module of its own: the browser entry's first load needs this check, and a module it shares with code loaded on
// demand (collect.ts, gather.ts) would bring that code's other parts into the first load too.

/** Whether `value` can be read with `for await`: one-shot input that arrives in pieces. */
export function isAsyncIterable(value: unknown): value is AsyncIterable<Uint8Array> {
  return value !== null && typeof value === 'object' && typeof (value as AsyncIterable<unknown>)[Symbol.asyncIterator] === 'function'
}
