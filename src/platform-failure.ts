import { inputChanged, resizableRefused } from './detached.js'
import { namedErrorMessage } from './error-text.js'
import { EnvelopeError, InternalError } from './errors.js'

/**
 * A failure from under kms-envelope's engine as a typed error: the platform's cryptography rejecting (WebCrypto's
 * `OperationError`, say) or memory running out. kms-envelope's own errors pass as they are. Its own module, so
 * that the browser's first load leaves it to the chunk loaded on demand.
 */
export function platformFailure(error: unknown): EnvelopeError {
  if (error instanceof EnvelopeError) return error
  return new InternalError(`The platform failed under kms-envelope (${namedErrorMessage(error)}).`, { cause: error })
}

/**
 * A one-shot call's failure as platformFailure types it, unless the input's buffer was detached or resized under
 * the call: then that is the cause to report, whatever failed after it.
 */
export function inputFailure(error: unknown, input: Uint8Array, length: number, operation: 'encrypt' | 'decrypt'): EnvelopeError {
  return inputChanged(input, length, operation) ?? platformFailure(error)
}

/**
 * `inputFailure` for one-shot encrypt, which takes it from the chunk loaded on demand; also WebCrypto's refusal of a
 * plaintext on a resizable ArrayBuffer (decrypt copies such a ciphertext first: see decryptWith).
 */
export function encryptFailure(error: unknown, input: Uint8Array, length: number): EnvelopeError {
  return inputChanged(input, length, 'encrypt') ?? resizableRefused(error, input) ?? platformFailure(error)
}
