/**
 * Byte helpers for tests that write message parts by hand, independently of src/format (so that a
 * known-answer test does not check the library against itself).
 */

export function uint16(value: number): Buffer {
  const out = Buffer.alloc(2)
  out.writeUInt16BE(value)
  return out
}

/**
 * The length of a signed message's footer signature. Its uint16 prefix alone is not enough to find it:
 * two bytes of the signature itself read as a shorter prefix about once in 1,500 messages. So the
 * prefix, the DER SEQUENCE header and both INTEGER headers must all agree with a signature that ends
 * where the message ends.
 */
export function signatureLength(ciphertext: Uint8Array): number {
  const found: number[] = []
  for (let length = 8; length <= 110 && length + 2 <= ciphertext.length; length++) {
    const at = ciphertext.length - length - 2
    const byte = (offset: number) => ciphertext[at + offset] as number
    if (((byte(0) << 8) | byte(1)) !== length || byte(2) !== 0x30 || byte(3) !== length - 2 || byte(4) !== 0x02) continue
    const sAt = 6 + byte(5)
    if (byte(sAt) === 0x02 && sAt + 2 + byte(sAt + 1) === length + 2) found.push(length)
  }
  if (found.length !== 1) throw new Error(`footer not found (${found.length} candidates)`)
  return found[0] as number
}

export function uint32(value: number): Buffer {
  const out = Buffer.alloc(4)
  out.writeUInt32BE(value)
  return out
}

export function uint64(value: number): Buffer {
  const out = Buffer.alloc(8)
  out.writeBigUInt64BE(BigInt(value))
  return out
}

/** framework/structures.md#serialization: pair count, then length-prefixed UTF-8 keys and values, keys in byte order. */
export function serializeContextByHand(context: Record<string, string>): Buffer {
  const keys = Object.keys(context).sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)))
  return contextPairsByHand(keys.map((key) => [key, context[key] as string]))
}

/** The same serialization of pairs in the order given, repeated keys and all: for contexts the format must refuse or reorder. */
export function contextPairsByHand(pairs: readonly (readonly [string, string])[]): Buffer {
  if (pairs.length === 0) return Buffer.alloc(0)
  const parts = [uint16(pairs.length)]
  for (const [key, value] of pairs) {
    const keyBytes = Buffer.from(key)
    const valueBytes = Buffer.from(value)
    parts.push(uint16(keyBytes.length), keyBytes, uint16(valueBytes.length), valueBytes)
  }
  return Buffer.concat(parts)
}
