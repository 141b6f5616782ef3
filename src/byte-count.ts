/** A count of bytes in words, for error messages: "1 byte", "0 bytes", "16 bytes". */
export function byteCount(count: number): string {
  return count === 1 ? '1 byte' : `${count} bytes`
}

/** "1 byte follows", "2 bytes remain": a count of bytes with its verb, for messages about bytes left over or left to read. */
export function bytesThat(count: number, verb: 'follow' | 'remain'): string {
  return `${byteCount(count)} ${count === 1 ? `${verb}s` : verb}`
}
