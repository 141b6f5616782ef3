// Counts in words for error messages: "1 byte", "2 encrypted data keys", "1 byte follows". Kept out of the modules
// a browser application loads first (format/bytes.ts, format/context.ts, keyrings/raw-rsa.ts), which spell theirs inline.
/** A count of bytes in words, for error messages: "1 byte", "0 bytes", "16 bytes". */
export function byteCount(count: number): string {
  return countOf(count, 'byte')
}

/** A count with its noun, for error messages: "1 encrypted data key", "0 encrypted data keys". */
export function countOf(count: number, noun: string): string {
  return `${count} ${nounFor(count, noun)}`
}

/** A noun (with a plain plural) for a count: "key" for 1, "keys" otherwise. */
export function nounFor(count: number, noun: string): string {
  return count === 1 ? noun : `${noun}s`
}

/** "the encrypted data key" for 1, "any of the 3 encrypted data keys" otherwise. */
export function anyOfThe(count: number, noun: string): string {
  return count === 1 ? `the ${noun}` : `any of the ${countOf(count, noun)}`
}

/** "1 byte follows", "2 bytes remain": a count of bytes with its verb, for messages about bytes left over or left to read. */
export function bytesThat(count: number, verb: 'follow' | 'remain'): string {
  return `${byteCount(count)} ${count === 1 ? `${verb}s` : verb}`
}
