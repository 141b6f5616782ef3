// Encodings around WebCrypto's ECDSA, which speaks uncompressed points and IEEE P1363 (r || s) signatures,
// while the message format stores compressed points and DER signatures. Only public values pass through
// here, so the BigInt arithmetic (not constant-time) leaks nothing secret.
import type { CurveName } from '../suites.js'

interface Curve {
  readonly p: bigint
  readonly b: bigint
  /** Coordinate and scalar length in bytes. */
  readonly size: number
}

// SEC 2 / FIPS 186-4 domain parameters (a = p - 3 for both curves).
export const CURVES: Record<CurveName, Curve> = {
  'P-256': {
    p: 0xffffffff00000001000000000000000000000000ffffffffffffffffffffffffn,
    b: 0x5ac635d8aa3a93e7b3ebbd55769886bc651d06b0cc53b0f63bce3c3e27d2604bn,
    size: 32,
  },
  'P-384': {
    p: 0xfffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffeffffffff0000000000000000ffffffffn,
    b: 0xb3312fa7e23ee7e4988e056be3f82d19181d9c6efe8141120314088f5013875ac656398d8a2ed19d2a85c8edd3ec2aefn,
    size: 48,
  },
}

function modPow(base: bigint, exponent: bigint, modulus: bigint): bigint {
  let result = 1n
  let square = base % modulus
  for (let rest = exponent; rest > 0n; rest >>= 1n) {
    if (rest & 1n) result = (result * square) % modulus
    square = (square * square) % modulus
  }
  return result
}

export function bytesToBigInt(bytes: Uint8Array): bigint {
  let value = 0n
  for (const byte of bytes) value = (value << 8n) | BigInt(byte)
  return value
}

export function bigIntToBytes(value: bigint, length: number): Uint8Array {
  const out = new Uint8Array(length)
  let rest = value
  for (let i = length - 1; i >= 0; i--) {
    out[i] = Number(rest & 0xffn)
    rest >>= 8n
  }
  return out
}

/** SEC1 compressed point → uncompressed (0x04 || x || y). Throws TypeError when it is not a point on the curve. */
export function decompressPoint(curveName: CurveName, compressed: Uint8Array): Uint8Array {
  const { p, b, size } = CURVES[curveName]
  const prefix = compressed[0]
  if (compressed.length !== 1 + size || (prefix !== 2 && prefix !== 3)) throw new TypeError(`not a compressed ${curveName} point`)
  const x = bytesToBigInt(compressed.subarray(1))
  if (x >= p) throw new TypeError(`not a compressed ${curveName} point: x is not below the field prime`)
  const rhs = (((x * x) % p) * x - 3n * x + b) % p
  const rhsPositive = (rhs + p) % p
  // p ≡ 3 (mod 4) for both curves, so a square root is rhs^((p+1)/4).
  let y = modPow(rhsPositive, (p + 1n) / 4n, p)
  if ((y * y) % p !== rhsPositive) throw new TypeError(`not a compressed ${curveName} point: x is not on the curve`)
  if (Number(y & 1n) !== (prefix & 1)) y = p - y
  const out = new Uint8Array(1 + 2 * size)
  out[0] = 4
  out.set(compressed.subarray(1), 1)
  out.set(bigIntToBytes(y, size), 1 + size)
  return out
}

/** Uncompressed point (0x04 || x || y) → SEC1 compressed: 0x02/0x03 by the parity of y, then x. */
export function compressPoint(uncompressed: Uint8Array): Uint8Array {
  const size = (uncompressed.length - 1) / 2
  const out = new Uint8Array(1 + size)
  out[0] = 0x02 | ((uncompressed[uncompressed.length - 1] as number) & 1)
  out.set(uncompressed.subarray(1, 1 + size), 1)
  return out
}

/**
 * DER `SEQUENCE { INTEGER r, INTEGER s }` → r || s of `size` bytes each. Undefined unless the encoding is
 * strict DER with both integers positive and short enough: OpenSSL refuses the same inputs, so both
 * builds accept exactly the same signatures.
 */
export function derToP1363(der: Uint8Array, size: number): Uint8Array | undefined {
  // The content is two INTEGERs of at most 2 + 1 + size bytes each, under 128 bytes for both curves: a signature
  // in DER has a one-byte length, and a long-form length can only be a signature that is not strict DER.
  if (der[0] !== 0x30 || der[1] !== der.length - 2) return undefined
  let offset = 2
  const out = new Uint8Array(2 * size)
  for (let part = 0; part < 2; part++) {
    if (der[offset] !== 0x02) return undefined
    const integerLength = der[offset + 1]
    if (integerLength === undefined || integerLength === 0 || integerLength >= 0x80) return undefined
    const start = offset + 2
    const end = start + integerLength
    if (end > der.length) return undefined
    const first = der[start] as number
    if (first & 0x80) return undefined // negative
    // A lone zero (never a valid r or s) or a leading zero the value does not need (not DER).
    if (first === 0 && (integerLength === 1 || ((der[start + 1] as number) & 0x80) === 0)) return undefined
    const digits = first === 0 ? der.subarray(start + 1, end) : der.subarray(start, end)
    if (digits.length > size) return undefined
    out.set(digits, part * size + size - digits.length)
    offset = end
  }
  return offset === der.length ? out : undefined
}

function derInteger(bytes: Uint8Array): Uint8Array {
  let start = 0
  while (start < bytes.length - 1 && bytes[start] === 0) start++
  const digits = bytes.subarray(start)
  const pad = (digits[0] as number) & 0x80 ? 1 : 0
  const out = new Uint8Array(2 + pad + digits.length)
  out[0] = 0x02
  out[1] = pad + digits.length
  out.set(digits, 2 + pad)
  return out
}

/** r || s → DER `SEQUENCE { INTEGER r, INTEGER s }`. */
export function p1363ToDer(signature: Uint8Array): Uint8Array {
  const size = signature.length / 2
  const r = derInteger(signature.subarray(0, size))
  const s = derInteger(signature.subarray(size))
  const contentLength = r.length + s.length // at most 102 bytes (P-384): a one-byte length, as in derToP1363
  const out = new Uint8Array(2 + contentLength)
  out[0] = 0x30
  out[1] = contentLength
  out.set(r, 2)
  out.set(s, 2 + r.length)
  return out
}
