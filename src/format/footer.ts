import { MalformedMessageError } from '../errors.js'
import { ByteReader } from './bytes.js'

/** Longest DER ECDSA signature the suites produce (P-384: 2 + 2 × (2 + 49)). */
export const MAX_SIGNATURE_LENGTH = 104

/** Read the footer: a uint16 length and the DER signature. spec: data-format/message-footer.md */
export function readFooter(reader: ByteReader): Uint8Array {
  const length = reader.uint16('signature length')
  if (length > MAX_SIGNATURE_LENGTH) {
    throw new MalformedMessageError(`The footer claims a ${length}-byte signature; ECDSA signatures here are at most ${MAX_SIGNATURE_LENGTH}.`)
  }
  return reader.slice(length, 'signature')
}

/** Write the footer into `out` at `offset`; returns the offset after it. */
export function writeFooter(signature: Uint8Array, out: Uint8Array, offset: number): number {
  out[offset] = signature.length >>> 8
  out[offset + 1] = signature.length & 0xff
  out.set(signature, offset + 2)
  return offset + 2 + signature.length
}
