// What kms-envelope's errors repeat of errors from outside it: a keyring or materials manager of the caller's, the
// AWS SDK's KMS client, the platform's cryptography. The whole foreign error is always the cause.

/** How much of a foreign error's message ours repeats. */
const MAX_MESSAGE = 500

/**
 * An error's message, a thrown string, or else only the type of what was thrown: a thrown object (key bytes,
 * say) is never written out. A long message is cut short, and one that cannot be read (a throwing getter, a
 * Proxy) is described instead: describing a failure must not fail.
 */
export function errorMessage(error: unknown): string {
  let isError: boolean
  let text: unknown
  try {
    isError = error instanceof Error
    text = isError ? (error as Error).message : error
  } catch {
    return 'a thrown value that could not be read'
  }
  if (typeof text !== 'string') return isError ? 'an Error without a text message' : `a thrown ${error === null ? 'null' : typeof error}, not an Error`
  return text.length > MAX_MESSAGE ? `${text.slice(0, MAX_MESSAGE)}… (${text.length} characters)` : text
}

/** The error's type and message (`AccessDeniedException: ...`), as {@link errorMessage} gives it; the type alone when the message is empty. */
export function namedErrorMessage(error: unknown): string {
  let name: unknown
  try {
    name = error instanceof Error ? error.name : undefined
  } catch {
    // errorMessage says what cannot be read
  }
  const message = errorMessage(error)
  if (typeof name !== 'string' || name === '') return message
  return message === '' ? name : `${name}: ${message}`
}

/** `text` closed as a sentence: a full stop added unless it already ends with one (as some KMS messages do), or with `?` or `!`. */
export function sentence(text: string): string {
  return /[.?!]$/.test(text) ? text : `${text}.`
}
