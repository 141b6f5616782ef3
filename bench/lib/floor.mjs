// "The floor": the least work node:crypto can do to produce/consume the same frames an
// AWS Encryption SDK message body holds. No header parsing, no key derivation, no keyring,
// no ECDSA - just one AES-256-GCM operation per frame with a realistic body AAD, written
// into one preallocated buffer, plus a streaming SHA-384 over the message for signing suites.
//
// Layout produced (and consumed by floorDecrypt):
//   [fake header, HEADER_LEN bytes: message id | frame length u32 | plaintext length u64 | zeros]
//   regular frames: seq u32 | IV 12 | ciphertext (frameLength) | tag 16
//   final frame:    0xFFFFFFFF | seq u32 | IV 12 | content length u32 | ciphertext | tag 16
//   [footer for signing suites: u16 length | 103-byte placeholder signature]

import { createCipheriv, createDecipheriv, createHash, createSecretKey, randomFillSync } from 'node:crypto'

const HEADER_LEN = 320 // in the range of a real v2 header with one raw AES EDK and a small context
const FOOTER_LEN = 2 + 103
const REGULAR = Buffer.from('AWSKMSEncryptionClient Frame', 'utf8')
const FINAL = Buffer.from('AWSKMSEncryptionClient Final Frame', 'utf8')
const TAG = 16
const IV = 12

/** Suite facts the floor needs. */
export function floorSuite(suiteId) {
  const v2 = suiteId === 0x0478 || suiteId === 0x0578
  const signing = suiteId === 0x0578 || suiteId === 0x0378 || suiteId === 0x0346 || suiteId === 0x0214
  return { messageIdLength: v2 ? 32 : 16, signing }
}

export function floorCiphertextLength(plaintextLength, frameLength, signing) {
  const full = Math.floor(plaintextLength / frameLength)
  const finalLen = plaintextLength - full * frameLength
  return HEADER_LEN + full * (4 + IV + frameLength + TAG) + (4 + 4 + IV + 4 + finalLen + TAG) + (signing ? FOOTER_LEN : 0)
}

function makeAad(messageId, content) {
  const aad = Buffer.alloc(messageId.length + content.length + 4 + 8)
  messageId.copy(aad, 0)
  content.copy(aad, messageId.length)
  return aad
}

/** A fresh data key as a KeyObject (measured slightly faster than passing raw key bytes per frame). */
export function floorKey() {
  return createSecretKey(randomFillSync(Buffer.allocUnsafe(32)))
}

export function floorEncrypt(key, suiteId, frameLength, plaintext) {
  const { messageIdLength, signing } = floorSuite(suiteId)
  const n = plaintext.length
  const out = Buffer.allocUnsafe(floorCiphertextLength(n, frameLength, signing))
  // fake header
  out.fill(0, 0, HEADER_LEN)
  const messageId = randomFillSync(Buffer.allocUnsafe(messageIdLength))
  messageId.copy(out, 0)
  out.writeUInt32BE(frameLength, 32)
  out.writeUInt32BE(Math.floor(n / 2 ** 32), 36)
  out.writeUInt32BE(n >>> 0, 40)
  const hash = signing ? createHash('sha384') : undefined
  if (hash) hash.update(out.subarray(0, HEADER_LEN))

  const aad = makeAad(messageId, REGULAR)
  const aadSeq = messageIdLength + REGULAR.length
  aad.writeUInt32BE(0, aadSeq + 4) // high 32 bits of the 64-bit content length
  aad.writeUInt32BE(frameLength, aadSeq + 8)
  const iv = Buffer.alloc(IV)
  const full = Math.floor(n / frameLength)
  let off = HEADER_LEN
  let p = 0
  let seq = 1
  for (; seq <= full; seq++) {
    const start = off
    out.writeUInt32BE(seq, off)
    iv.writeUInt32BE(seq, 8)
    iv.copy(out, off + 4)
    off += 4 + IV
    aad.writeUInt32BE(seq, aadSeq)
    const c = createCipheriv('aes-256-gcm', key, iv)
    c.setAAD(aad)
    const ct = c.update(plaintext.subarray(p, p + frameLength))
    out.set(ct, off)
    off += ct.length
    c.final()
    out.set(c.getAuthTag(), off)
    off += TAG
    p += frameLength
    if (hash) hash.update(out.subarray(start, off))
  }
  // final frame
  const finalLen = n - p
  const faad = makeAad(messageId, FINAL)
  const fSeq = messageIdLength + FINAL.length
  faad.writeUInt32BE(seq, fSeq)
  faad.writeUInt32BE(0, fSeq + 4)
  faad.writeUInt32BE(finalLen, fSeq + 8)
  const start = off
  out.writeUInt32BE(0xffffffff, off)
  out.writeUInt32BE(seq, off + 4)
  iv.writeUInt32BE(seq, 8)
  iv.copy(out, off + 8)
  out.writeUInt32BE(finalLen, off + 8 + IV)
  off += 8 + IV + 4
  const c = createCipheriv('aes-256-gcm', key, iv)
  c.setAAD(faad)
  const ct = c.update(plaintext.subarray(p, n))
  out.set(ct, off)
  off += ct.length
  c.final()
  out.set(c.getAuthTag(), off)
  off += TAG
  if (hash) {
    hash.update(out.subarray(start, off))
    hash.digest()
    out.writeUInt16BE(103, off)
    out.fill(0, off + 2, off + FOOTER_LEN)
    off += FOOTER_LEN
  }
  if (off !== out.length) throw new Error(`floor encrypt length mismatch ${off} != ${out.length}`)
  return out
}

export function floorDecrypt(key, suiteId, ciphertext) {
  const { messageIdLength, signing } = floorSuite(suiteId)
  const input = Buffer.isBuffer(ciphertext)
    ? ciphertext
    : Buffer.from(ciphertext.buffer, ciphertext.byteOffset, ciphertext.byteLength)
  const messageId = input.subarray(0, messageIdLength)
  const frameLength = input.readUInt32BE(32)
  const n = input.readUInt32BE(36) * 2 ** 32 + input.readUInt32BE(40)
  const out = Buffer.allocUnsafe(n)
  const hash = signing ? createHash('sha384') : undefined
  if (hash) hash.update(input.subarray(0, HEADER_LEN))

  const aad = makeAad(Buffer.from(messageId), REGULAR)
  const aadSeq = messageIdLength + REGULAR.length
  aad.writeUInt32BE(0, aadSeq + 4)
  aad.writeUInt32BE(frameLength, aadSeq + 8)
  let off = HEADER_LEN
  let p = 0
  for (;;) {
    const start = off
    const seq = input.readUInt32BE(off)
    if (seq === 0xffffffff) break
    const iv = input.subarray(off + 4, off + 4 + IV)
    off += 4 + IV
    aad.writeUInt32BE(seq, aadSeq)
    const d = createDecipheriv('aes-256-gcm', key, iv)
    d.setAAD(aad)
    d.setAuthTag(input.subarray(off + frameLength, off + frameLength + TAG))
    if (hash) hash.update(input.subarray(start, off + frameLength + TAG))
    out.set(d.update(input.subarray(off, off + frameLength)), p)
    d.final()
    off += frameLength + TAG
    p += frameLength
  }
  // final frame
  const start = off
  const seq = input.readUInt32BE(off + 4)
  const iv = input.subarray(off + 8, off + 8 + IV)
  const finalLen = input.readUInt32BE(off + 8 + IV)
  off += 8 + IV + 4
  const faad = makeAad(Buffer.from(messageId), FINAL)
  const fSeq = messageIdLength + FINAL.length
  faad.writeUInt32BE(seq, fSeq)
  faad.writeUInt32BE(0, fSeq + 4)
  faad.writeUInt32BE(finalLen, fSeq + 8)
  const d = createDecipheriv('aes-256-gcm', key, iv)
  d.setAAD(faad)
  d.setAuthTag(input.subarray(off + finalLen, off + finalLen + TAG))
  if (hash) hash.update(input.subarray(start, off + finalLen + TAG))
  out.set(d.update(input.subarray(off, off + finalLen)), p)
  d.final()
  p += finalLen
  if (hash) hash.digest()
  if (p !== n) throw new Error(`floor decrypt length mismatch ${p} != ${n}`)
  return out
}
