// Streaming contenders for bench/stream.mjs and bench/stream-memory-child.mjs.
//
// 1. "The stream floor": the least work node:crypto can do to stream AES-256-GCM frames shaped like an
//    AWS Encryption SDK framed body, as plain Node Transform streams. No real header, no key derivation,
//    no keyring, no ECDSA. Per frame: one createCipheriv/createDecipheriv + setAAD (ESDK body AAD:
//    message id 32 | content string | seq u32 | length u64) + update + final + tag. For signing suites a
//    streaming SHA-384 runs over the message (the hashing part of the signature cost); its digest stands
//    in for the signature in a footer, and the decrypt side checks it.
//
//    Wire layout (only these two Transforms read or write it):
//      header       message id (32) | frame length u32                                      36 bytes
//      regular      seq u32 | IV 12 (8 zero bytes + seq) | ciphertext (frameLength) | tag 16
//      final        0xFFFFFFFF | seq u32 | IV 12 | content length u32 | ciphertext | tag 16
//      footer       (signing only) u16 digest length | SHA-384 of everything before the footer
//
//    The encrypt side writes all frames sealed from one input chunk into one buffer and pushes it once;
//    the decrypt side opens frames in place in the incoming chunk and copies only a frame that straddles
//    two chunks.
//
// 2. Stream factories for the three contenders behind one shape:
//      contender.encrypt(suiteId, frameLength) -> Node Duplex/Transform
//      contender.decrypt(suiteId)              -> Node Duplex/Transform

import { createCipheriv, createDecipheriv, createHash, createSecretKey, randomFillSync, timingSafeEqual } from 'node:crypto'
import { Transform } from 'node:stream'
import { ENCRYPTION_CONTEXT, loadOfficialSdk, loadOursBuild, oursDecryptPolicy, oursEncryptPolicy } from './contenders.mjs'

const MESSAGE_ID_LEN = 32
const HEADER_LEN = MESSAGE_ID_LEN + 4
const IV_LEN = 12
const TAG_LEN = 16
const REGULAR_OVERHEAD = 4 + IV_LEN + TAG_LEN // 32
const FINAL_PREFIX = 4 + 4 + IV_LEN + 4 // 24: marker, seq, IV, content length
const FINAL_OVERHEAD = FINAL_PREFIX + TAG_LEN // 40
const FINAL_MARKER = 0xffffffff
const DIGEST_LEN = 48
const FOOTER_LEN = 2 + DIGEST_LEN
const CONTENT_REGULAR = Buffer.from('AWSKMSEncryptionClient Frame', 'utf8')
const CONTENT_FINAL = Buffer.from('AWSKMSEncryptionClient Final Frame', 'utf8')

const isSigning = (suiteId) => suiteId === 0x0578 || suiteId === 0x0378 || suiteId === 0x0346 || suiteId === 0x0214

/** A fresh random AES-256 key as a KeyObject; one per process is enough for the floor. */
export function floorStreamKey() {
  return createSecretKey(randomFillSync(Buffer.allocUnsafe(32)))
}

/** messageId | content | seq u32 | length u64; returns the buffer and the offset of seq. */
function bodyAad(messageId, content, contentLength) {
  const aad = Buffer.alloc(messageId.length + content.length + 12)
  messageId.copy(aad, 0)
  content.copy(aad, messageId.length)
  const seqAt = messageId.length + content.length
  aad.writeUInt32BE(Math.floor(contentLength / 2 ** 32), seqAt + 4)
  aad.writeUInt32BE(contentLength >>> 0, seqAt + 8)
  return { aad, seqAt }
}

function ivFor(seq) {
  const iv = Buffer.alloc(IV_LEN)
  iv.writeUInt32BE(seq, 8)
  return iv
}

export class FloorEncryptStream extends Transform {
  constructor(key, suiteId, frameLength, options = {}) {
    super(options)
    if (!Number.isInteger(frameLength) || frameLength <= 0) throw new Error(`bad frameLength ${frameLength}`)
    this.key = key
    this.frameLength = frameLength
    this.hash = isSigning(suiteId) ? createHash('sha384') : undefined
    this.messageId = randomFillSync(Buffer.allocUnsafe(MESSAGE_ID_LEN))
    const { aad, seqAt } = bodyAad(this.messageId, CONTENT_REGULAR, frameLength)
    this.aad = aad
    this.aadSeqAt = seqAt
    this.iv = Buffer.alloc(IV_LEN)
    this.seq = 1
    this.pending = Buffer.allocUnsafe(frameLength)
    this.pendingLength = 0
    this.headerSent = false
  }

  sendHeader() {
    if (this.headerSent) return
    this.headerSent = true
    const header = Buffer.allocUnsafe(HEADER_LEN)
    this.messageId.copy(header, 0)
    header.writeUInt32BE(this.frameLength, MESSAGE_ID_LEN)
    this.hash?.update(header)
    this.push(header)
  }

  /** Seal exactly frameLength bytes of `plaintext` as a regular frame at out[off]; returns the new offset. */
  sealRegular(plaintext, out, off) {
    const seq = this.seq++
    out.writeUInt32BE(seq, off)
    this.iv.writeUInt32BE(seq, 8)
    this.iv.copy(out, off + 4)
    this.aad.writeUInt32BE(seq, this.aadSeqAt)
    const cipher = createCipheriv('aes-256-gcm', this.key, this.iv)
    cipher.setAAD(this.aad)
    const ct = cipher.update(plaintext)
    ct.copy(out, off + 4 + IV_LEN)
    cipher.final()
    cipher.getAuthTag().copy(out, off + 4 + IV_LEN + ct.length)
    return off + REGULAR_OVERHEAD + plaintext.length
  }

  _transform(chunk, _encoding, callback) {
    try {
      this.sendHeader()
      const frameLength = this.frameLength
      const frames = Math.floor((this.pendingLength + chunk.length) / frameLength)
      let pos = 0
      if (frames > 0) {
        const out = Buffer.allocUnsafe(frames * (frameLength + REGULAR_OVERHEAD))
        let off = 0
        if (this.pendingLength > 0) {
          pos = frameLength - this.pendingLength
          this.pending.set(chunk.subarray(0, pos), this.pendingLength)
          off = this.sealRegular(this.pending, out, off)
          this.pendingLength = 0
        }
        while (chunk.length - pos >= frameLength) {
          off = this.sealRegular(chunk.subarray(pos, pos + frameLength), out, off)
          pos += frameLength
        }
        this.hash?.update(out)
        this.push(out)
      }
      if (pos < chunk.length) {
        this.pending.set(chunk.subarray(pos), this.pendingLength)
        this.pendingLength += chunk.length - pos
      }
      callback()
    } catch (error) {
      callback(error)
    }
  }

  _flush(callback) {
    try {
      this.sendHeader()
      const n = this.pendingLength
      const seq = this.seq++
      const out = Buffer.allocUnsafe(FINAL_OVERHEAD + n + (this.hash ? FOOTER_LEN : 0))
      out.writeUInt32BE(FINAL_MARKER, 0)
      out.writeUInt32BE(seq, 4)
      const iv = ivFor(seq)
      iv.copy(out, 8)
      out.writeUInt32BE(n, 8 + IV_LEN)
      const { aad, seqAt } = bodyAad(this.messageId, CONTENT_FINAL, n)
      aad.writeUInt32BE(seq, seqAt)
      const cipher = createCipheriv('aes-256-gcm', this.key, iv)
      cipher.setAAD(aad)
      const ct = cipher.update(this.pending.subarray(0, n))
      ct.copy(out, FINAL_PREFIX)
      cipher.final()
      cipher.getAuthTag().copy(out, FINAL_PREFIX + n)
      let end = FINAL_OVERHEAD + n
      if (this.hash) {
        this.hash.update(out.subarray(0, end))
        out.writeUInt16BE(DIGEST_LEN, end)
        this.hash.digest().copy(out, end + 2)
        end += FOOTER_LEN
      }
      this.pending.fill(0)
      this.push(out.subarray(0, end))
      callback()
    } catch (error) {
      callback(error)
    }
  }
}

export class FloorDecryptStream extends Transform {
  constructor(key, suiteId, options = {}) {
    super(options)
    this.key = key
    this.hash = isSigning(suiteId) ? createHash('sha384') : undefined
    this.state = 'header' // header | body | footer | done
    this.frameLength = 0
    this.seq = 1
    this.carry = Buffer.allocUnsafe(HEADER_LEN)
    this.carryLength = 0
  }

  /** Bytes the next unit (header, frame, footer) occupies, or at least how many are needed to tell. */
  unitSize(buf, length) {
    switch (this.state) {
      case 'header':
        return HEADER_LEN
      case 'body': {
        if (length < 4) return 4
        if (buf.readUInt32BE(0) !== FINAL_MARKER) return REGULAR_OVERHEAD + this.frameLength
        if (length < FINAL_PREFIX) return FINAL_PREFIX
        const n = buf.readUInt32BE(FINAL_PREFIX - 4)
        if (n > this.frameLength) throw new Error(`floor: final frame claims ${n} bytes`)
        return FINAL_OVERHEAD + n
      }
      case 'footer':
        return length < 2 ? 2 : 2 + buf.readUInt16BE(0)
      default:
        throw new Error('floor: bytes after the end of the message')
    }
  }

  /** Process one complete unit at the start of `buf` (exactly `size` bytes are there); may push plaintext. */
  unit(buf, size, outputs) {
    if (this.state === 'header') {
      this.frameLength = buf.readUInt32BE(MESSAGE_ID_LEN)
      const messageId = Buffer.from(buf.subarray(0, MESSAGE_ID_LEN))
      this.messageId = messageId
      const { aad, seqAt } = bodyAad(messageId, CONTENT_REGULAR, this.frameLength)
      this.aad = aad
      this.aadSeqAt = seqAt
      this.hash?.update(buf.subarray(0, size))
      if (this.carry.length < FINAL_OVERHEAD + this.frameLength) this.carry = Buffer.allocUnsafe(FINAL_OVERHEAD + this.frameLength)
      this.state = 'body'
      return
    }
    if (this.state === 'body') {
      const final = buf.readUInt32BE(0) === FINAL_MARKER
      let seq, iv, ct, aad
      if (!final) {
        seq = buf.readUInt32BE(0)
        iv = buf.subarray(4, 4 + IV_LEN)
        ct = buf.subarray(4 + IV_LEN, size - TAG_LEN)
        this.aad.writeUInt32BE(seq, this.aadSeqAt)
        aad = this.aad
      } else {
        seq = buf.readUInt32BE(4)
        iv = buf.subarray(8, 8 + IV_LEN)
        ct = buf.subarray(FINAL_PREFIX, size - TAG_LEN)
        const finalAad = bodyAad(this.messageId, CONTENT_FINAL, ct.length)
        finalAad.aad.writeUInt32BE(seq, finalAad.seqAt)
        aad = finalAad.aad
      }
      if (seq !== this.seq) throw new Error(`floor: frame ${seq} out of order, expected ${this.seq}`)
      this.seq++
      const decipher = createDecipheriv('aes-256-gcm', this.key, iv)
      decipher.setAAD(aad)
      decipher.setAuthTag(buf.subarray(size - TAG_LEN, size))
      const pt = decipher.update(ct)
      decipher.final() // throws on a bad tag
      this.hash?.update(buf.subarray(0, size))
      outputs.push(pt)
      if (final) this.state = this.hash ? 'footer' : 'done'
      return
    }
    // footer: the SHA-384 digest of everything before it
    const digest = this.hash.digest()
    const claimed = buf.subarray(2, size)
    if (claimed.length !== digest.length || !timingSafeEqual(claimed, digest)) throw new Error('floor: footer digest mismatch')
    this.state = 'done'
  }

  _transform(chunk, _encoding, callback) {
    try {
      const outputs = []
      let pos = 0
      if (this.carryLength > 0) {
        // finish the unit that straddles the previous chunk and this one
        for (;;) {
          const need = this.unitSize(this.carry, this.carryLength)
          if (this.carryLength >= need) break
          const take = Math.min(need - this.carryLength, chunk.length - pos)
          if (this.carry.length < need) {
            const grown = Buffer.allocUnsafe(need)
            this.carry.copy(grown, 0, 0, this.carryLength)
            this.carry = grown
          }
          this.carry.set(chunk.subarray(pos, pos + take), this.carryLength)
          this.carryLength += take
          pos += take
          if (this.carryLength < need) {
            callback()
            return
          }
        }
        this.unit(this.carry, this.carryLength, outputs)
        this.carryLength = 0
      }
      while (pos < chunk.length) {
        const view = chunk.subarray(pos)
        const need = this.unitSize(view, view.length)
        if (view.length < need) break
        this.unit(view, need, outputs)
        pos += need
      }
      if (pos < chunk.length) {
        const rest = chunk.length - pos
        if (this.carry.length < rest) this.carry = Buffer.allocUnsafe(rest)
        this.carry.set(chunk.subarray(pos), 0)
        this.carryLength = rest
      }
      if (outputs.length === 1) this.push(outputs[0])
      else if (outputs.length > 1) this.push(Buffer.concat(outputs))
      callback()
    } catch (error) {
      callback(error)
    }
  }

  _flush(callback) {
    callback(this.state === 'done' && this.carryLength === 0 ? undefined : new Error(`floor: stream ended in state ${this.state}`))
  }
}

// ---------------------------------------------------------------------------------------------
// the three streaming contenders

export const STREAM_CONTENDERS = ['ours', 'official', 'floor']

/**
 * Ours as Node streams: encryptNodeStream/decryptNodeStream (Node Transforms with no Web Stream behind them,
 * what a Node pipeline should use), or encryptStream(...).toNode() with STREAM_API=web.
 */
export async function loadOursStreams() {
  const web = process.env.STREAM_API === 'web'
  const { lib, keyring } = await loadOursBuild(web ? ['encryptStream', 'decryptStream'] : ['encryptNodeStream', 'decryptNodeStream'])
  const encryptOptions = (suiteId, frameLength) => ({
    algorithmSuite: suiteId,
    frameLength,
    commitmentPolicy: oursEncryptPolicy(suiteId),
    encryptionContext: ENCRYPTION_CONTEXT,
  })
  const decryptOptions = (suiteId) => ({ commitmentPolicy: oursDecryptPolicy(suiteId) })
  return {
    name: 'ours',
    encrypt: (suiteId, frameLength) =>
      web
        ? lib.encryptStream(keyring, encryptOptions(suiteId, frameLength)).toNode()
        : lib.encryptNodeStream(keyring, encryptOptions(suiteId, frameLength)),
    decrypt: (suiteId) =>
      web ? lib.decryptStream(keyring, decryptOptions(suiteId)).toNode() : lib.decryptNodeStream(keyring, decryptOptions(suiteId)),
  }
}

export async function loadOfficialStreams() {
  const { sdk, keyring } = await loadOfficialSdk()
  const { buildClient, CommitmentPolicy } = sdk
  const clients = new Map()
  const client = (policy) => {
    if (!clients.has(policy)) clients.set(policy, buildClient(CommitmentPolicy[policy]))
    return clients.get(policy)
  }
  return {
    name: 'official',
    encrypt: (suiteId, frameLength) =>
      client(oursEncryptPolicy(suiteId)).encryptStream(keyring, { suiteId, frameLength, encryptionContext: { ...ENCRYPTION_CONTEXT } }),
    decrypt: (suiteId) => {
      const c = client(oursDecryptPolicy(suiteId))
      return isSigning(suiteId) ? c.decryptStream(keyring) : c.decryptUnsignedMessageStream(keyring)
    },
  }
}

export function loadFloorStreams() {
  const key = floorStreamKey()
  return {
    name: 'floor',
    encrypt: (suiteId, frameLength) => new FloorEncryptStream(key, suiteId, frameLength),
    decrypt: (suiteId) => new FloorDecryptStream(key, suiteId),
  }
}

export async function loadStreamContender(name) {
  if (name === 'ours') return loadOursStreams()
  if (name === 'official') return loadOfficialStreams()
  if (name === 'floor') return loadFloorStreams()
  throw new Error(`unknown contender ${name}`)
}
