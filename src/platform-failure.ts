import { errorMessage } from './cmm/materials-check.js'
import { EnvelopeError, InternalError } from './errors.js'

/**
 * A failure from under kms-envelope's engine as a typed error: the platform's cryptography rejecting (WebCrypto's
 * `OperationError`, say) or memory running out. kms-envelope's own errors pass as they are. Its own module, so
 * that the browser's first load leaves it to the chunk loaded on demand.
 */
export function platformFailure(error: unknown): EnvelopeError {
  if (error instanceof EnvelopeError) return error
  let name = ''
  try {
    if (error instanceof Error) name = `${String(error.name)}: `
  } catch {
    // errorMessage says what cannot be read: describing a failure must not fail
  }
  return new InternalError(`The platform failed under kms-envelope (${name}${errorMessage(error)}).`, { cause: error })
}
