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
