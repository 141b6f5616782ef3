import { ConfigurationError } from './errors.js'

/**
 * Whether `bytes` views an ArrayBuffer that was detached (transferred away by `postMessage` or `structuredClone`,
 * say). Such a view reads as empty, so a caller's slip would pass for empty input; only empty views are checked.
 */
export function detached(bytes: ArrayBufferView): boolean {
  // Node 20 has no `ArrayBuffer.prototype.detached`; every engine refuses to make a view of a detached buffer,
  // and a DataView's byteLength throws for one.
  try {
    if (bytes.byteLength !== 0) return false
    new Uint8Array(bytes.buffer)
    return false
  } catch {
    return true
  }
}

const TRANSFERRED = 'transferred away, by postMessage or structuredClone, say'

/** A chunk of streamed input, refused when its buffer is detached rather than taken as empty. */
export function attachedChunk<T extends ArrayBufferView>(chunk: T): T {
  if (detached(chunk)) throw new ConfigurationError(`A chunk's ArrayBuffer is detached (${TRANSFERRED}): it has no bytes left to read.`)
  return chunk
}

/**
 * A one-shot call's input whose buffer was detached or resized before or while the call used it (the
 * failure that followed, a frame that did not authenticate say, would name the wrong cause), or undefined.
 */
export function inputChanged(input: Uint8Array, length: number, operation: 'encrypt' | 'decrypt'): ConfigurationError | undefined {
  if (input.length === length && !detached(input)) return undefined
  const what = operation === 'encrypt' ? 'plaintext' : 'ciphertext'
  return new ConfigurationError(
    `The ${what}'s ArrayBuffer was detached (${TRANSFERRED}) or resized, before or while ${operation} read it: keep it as it is until ${operation} settles.`,
  )
}

/**
 * `bytes`, or a copy of them on a plain ArrayBuffer when they view a SharedArrayBuffer or a resizable ArrayBuffer:
 * WebCrypto refuses both. A detached view is returned as it is, for the caller to refuse.
 */
export function onPlainBuffer(bytes: Uint8Array): Uint8Array {
  const buffer = bytes.buffer as ArrayBufferLike & { resizable?: boolean }
  // The constructor's copy, not slice(): a Buffer's slice() is a view of the same memory, and another realm's
  // Buffer (Node's, in a test environment's page realm) stays one, which @noble refuses.
  return (buffer instanceof ArrayBuffer && buffer.resizable !== true) || detached(bytes) ? bytes : new Uint8Array(bytes)
}

/**
 * The platform's refusal (WebCrypto's TypeError) of a one-shot plaintext on a resizable ArrayBuffer, as a typed error
 * that says what to do. The browser's one-shot encrypt passes such input as it is: copying it first would cost the
 * first load bytes it does not have (see browser.ts).
 */
export function resizableRefused(error: unknown, plaintext: Uint8Array): ConfigurationError | undefined {
  if (!(error instanceof TypeError) || (plaintext.buffer as ArrayBufferLike & { resizable?: boolean }).resizable !== true) return undefined
  return new ConfigurationError('The plaintext is on a resizable ArrayBuffer, which WebCrypto refuses: pass a copy on a plain one (plaintext.slice()).', {
    cause: error,
  })
}
