/** A count of bytes in words, for error messages: "1 byte", "0 bytes", "16 bytes". */
export function byteCount(count: number): string {
  return count === 1 ? '1 byte' : `${count} bytes`
}
