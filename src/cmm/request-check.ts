// The request a built-in materials manager receives, checked where it arrives. encrypt and decrypt always
// build well-formed requests; this is for a manager of the caller's own that calls a built-in one with a
// request it made itself, which would otherwise fail deep inside with a TypeError.
import { ConfigurationError } from '../errors.js'
import { objectKind } from '../format/context.js'
import { quoteIdentifier, quoteValue } from '../quote.js'

const isObject = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value)
/** Contexts must be plain objects: a Map's pairs are not its own properties, so it would read as no pairs. */
const isPlain = (value: unknown): value is Record<string, unknown> => objectKind(value) === 'Object'

/** What encrypt and decrypt check of their `signal` option (abortSignalOption). */
const isAbortSignal = (value: unknown): boolean =>
  isObject(value) && typeof value.aborted === 'boolean' && typeof value.addEventListener === 'function'

/** `null`, `undefined`, `an array`, `a number`, `an object`, `a Map`… */
function kindOf(value: unknown): string {
  if (value === null || value === undefined) return String(value)
  const kind = Array.isArray(value) ? 'array' : isObject(value) && !isPlain(value) ? objectKind(value) : typeof value
  return `${/^[aeiouAEIOU]/.test(kind) ? 'an' : 'a'} ${kind}`
}

/** What is wrong with a request or backend, or undefined. */
function requestProblem(request: unknown, backend: unknown, decrypting: boolean): string | undefined {
  if (!isObject(request)) return `the request is ${kindOf(request)}, not an object`
  const { suite, encryptionContext, encryptedDataKeys, reproducedEncryptionContext, signal } = request
  if (typeof suite === 'number') {
    return `request.suite is the number ${quoteValue(suite)}, where the algorithm suite object encrypt or decrypt put in the request belongs`
  }
  if (!isObject(suite) || typeof suite.id !== 'number' || typeof suite.keyLength !== 'number' || typeof suite.committing !== 'boolean') {
    return `request.suite is ${kindOf(suite)}, not an algorithm suite from a request encrypt or decrypt made`
  }
  if (!isPlain(encryptionContext)) return `request.encryptionContext is ${kindOf(encryptionContext)}, not a plain object of string pairs`
  for (const [key, value] of Object.entries(encryptionContext)) {
    if (typeof value !== 'string') return `request.encryptionContext value for key ${quoteIdentifier(key)} is ${kindOf(value)}, not a string`
  }
  if (decrypting && !Array.isArray(encryptedDataKeys)) return `request.encryptedDataKeys is ${kindOf(encryptedDataKeys)}, not an array`
  if (reproducedEncryptionContext !== undefined && !isPlain(reproducedEncryptionContext)) {
    return `request.reproducedEncryptionContext is ${kindOf(reproducedEncryptionContext)}, not a plain object of string pairs`
  }
  if (signal !== undefined && !isAbortSignal(signal)) {
    return `request.signal is ${kindOf(signal)}, not an AbortSignal`
  }
  if (!isObject(backend) || typeof backend.randomBytes !== 'function') return `the backend (second argument) is ${kindOf(backend)}, not the one your manager was given`
  return undefined
}

/**
 * The quick test a request encrypt or decrypt built passes (an AbortSignal or none, a suite, a frozen context,
 * data keys and a frozen or absent reproduced context when decrypting, the backend), so that the full check runs only on requests made elsewhere. (The default
 * manager's encrypt half makes the same test inline: it is loaded before this module.)
 */
function madeByLibrary(request: unknown, backend: unknown, decrypting: boolean): boolean {
  const { suite, encryptionContext, encryptedDataKeys, reproducedEncryptionContext: reproduced, signal } = (request ?? {}) as Partial<Record<string, unknown>>
  return (
    (signal === undefined || isAbortSignal(signal)) &&
    typeof (suite as { keyLength?: unknown } | undefined)?.keyLength === 'number' &&
    Object.isFrozen(Object(encryptionContext)) &&
    (!decrypting || (Array.isArray(encryptedDataKeys) && (reproduced === undefined || Object.isFrozen(reproduced)))) &&
    typeof (backend as { randomBytes?: unknown } | undefined)?.randomBytes === 'function'
  )
}

/**
 * Refuse a malformed request with a ConfigurationError that says what is wrong; `who` names the manager
 * and method.
 */
export function checkMaterialsRequest(who: string, request: unknown, backend: unknown, decrypting: boolean): void {
  if (madeByLibrary(request, backend, decrypting)) return
  const problem = requestProblem(request, backend, decrypting)
  if (problem !== undefined) {
    throw new ConfigurationError(`${who} got a malformed request: ${problem}. A manager of your own passes on the request and backend it was given (or a copy with fields changed).`)
  }
}
