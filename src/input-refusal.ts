import { ConfigurationError } from './errors.js'
import { isThenable } from './ignore-rejection.js'

/**
 * What input that is not bytes is, and how to make bytes of it: a string is text to encrypt, or a message to
 * decode (said when the operation is known).
 */
export function notBytes(input: unknown, operation?: 'encrypt' | 'decrypt'): string {
  if (typeof input === 'string' && operation === 'encrypt') return 'got a string: encode it first (new TextEncoder().encode(text))'
  if (typeof input === 'string' && operation === 'decrypt') {
    return 'got a string: decode it to bytes first (a base64 message: Buffer.from(text, "base64") in Node, Uint8Array.from(atob(text), (c) => c.charCodeAt(0)) in a browser)'
  }
  if (input instanceof ArrayBuffer) return 'got an ArrayBuffer: pass new Uint8Array(buffer)'
  // A Uint8Array of any realm is bytes (is-bytes.ts): this is another kind of view.
  if (ArrayBuffer.isView(input)) return 'got another view of bytes: pass new Uint8Array(view.buffer, view.byteOffset, view.byteLength)'
  return `got ${input === null ? 'null' : Array.isArray(input) ? 'an array' : typeof input === 'string' ? 'a string' : typeof input}`
}

/**
 * The refusal of one-shot input that is none of what `operation` takes, saying what it takes and what it got. Its
 * own module, so that the browser's first load leaves it to the chunk loaded on demand.
 */
export function inputRefused(input: unknown, operation: 'encrypt' | 'decrypt'): ConfigurationError {
  const takes = operation === 'encrypt' ? 'plaintext must be a Uint8Array, a string,' : 'ciphertext must be a Uint8Array'
  return new ConfigurationError(`${takes} or an async iterable or ReadableStream of Uint8Array chunks; ${otherShape(input) ?? notBytes(input, operation)}.`)
}

/** How to pass bytes that came in another shape: chunks in an array or a synchronous iterable, a promise, a Blob, a fetch Response. */
function otherShape(input: unknown): string | undefined {
  if (Array.isArray(input)) return 'got an array: pass one Uint8Array of its bytes, or its chunks as an async iterable (Readable.from(chunks) in Node)'
  if (typeof input !== 'object' || input === null || ArrayBuffer.isView(input)) return undefined
  if (isThenable(input)) return 'got a Promise: await it first'
  if (typeof Blob === 'function' && input instanceof Blob) return 'got a Blob: pass blob.stream()'
  if (typeof Response === 'function' && input instanceof Response) return 'got a Response: pass response.body'
  if (typeof (input as Iterable<unknown>)[Symbol.iterator] === 'function') {
    return 'got a synchronous iterable: pass its chunks as an async iterable (Readable.from(iterable) in Node)'
  }
  return undefined
}
