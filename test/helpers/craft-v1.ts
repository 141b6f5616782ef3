// Hand-made version 1 messages (suite 0x0014: the data key is the encryption key, no KDF) whose every field can be
// set, each authenticated with its data key, for test/crafted-messages.test.ts. Their one wrapped data key is
// opaque: `dataKeyKeyring` hands the data key over.
import { createCipheriv, randomBytes } from 'node:crypto'
import type { Keyring } from '../../src/index.js'

export const u16 = (n: number) => Buffer.from([n >> 8, n & 0xff])
export const u32 = (n: number) => {
  const bytes = Buffer.alloc(4)
  bytes.writeUInt32BE(n >>> 0)
  return bytes
}
const u64 = (n: number) => {
  const bytes = Buffer.alloc(8)
  bytes.writeBigUInt64BE(BigInt(n))
  return bytes
}
const field = (bytes: Buffer) => Buffer.concat([u16(bytes.length), bytes])

/** AES-GCM under `key`: ciphertext and tag. */
function seal(key: Buffer, iv: Buffer, aad: Buffer, plaintext: Buffer): [Buffer, Buffer] {
  const cipher = createCipheriv(`aes-${key.length * 8}-gcm` as 'aes-128-gcm', key, iv)
  cipher.setAAD(aad)
  return [Buffer.concat([cipher.update(plaintext), cipher.final()]), cipher.getAuthTag()]
}

/** The stored context's bytes, pairs in the order given. */
export const contextBytes = (pairs: readonly (readonly [string, string])[]) =>
  pairs.length === 0 ? Buffer.alloc(0) : Buffer.concat([u16(pairs.length), ...pairs.flatMap(([key, value]) => [field(Buffer.from(key)), field(Buffer.from(value))])])

/** The IV the specification gives a frame: its sequence number, padded to 12 bytes. */
export const sequenceIv = (sequence: number) => Buffer.concat([Buffer.alloc(8), u32(sequence)])

/** One frame, regular or final, authenticated for `sequence` under `key`. */
export function frame(key: Buffer, messageId: Buffer, sequence: number, plaintext: Buffer, final: boolean, iv = sequenceIv(sequence)): Buffer {
  const label = final ? 'AWSKMSEncryptionClient Final Frame' : 'AWSKMSEncryptionClient Frame'
  const [ciphertext, tag] = seal(key, iv, Buffer.concat([messageId, Buffer.from(label), u32(sequence), u64(plaintext.length)]), plaintext)
  return Buffer.concat(final ? [u32(0xffffffff), u32(sequence), iv, u32(plaintext.length), ciphertext, tag] : [u32(sequence), iv, ciphertext, tag])
}

/** The body as the specification writes it: full frames, then a final frame holding the rest (maybe nothing). */
export function frames(key: Buffer, messageId: Buffer, plaintext: Buffer, frameLength: number): Buffer {
  const out: Buffer[] = []
  let at = 0
  for (; plaintext.length - at > frameLength; at += frameLength) out.push(frame(key, messageId, out.length + 1, plaintext.subarray(at, at + frameLength), false))
  out.push(frame(key, messageId, out.length + 1, plaintext.subarray(at), true))
  return Buffer.concat(out)
}

/** A non-framed body (one block) under `key`. */
export function singleBlock(key: Buffer, messageId: Buffer, plaintext: Buffer, iv = randomBytes(12)): Buffer {
  const [ciphertext, tag] = seal(key, iv, Buffer.concat([messageId, Buffer.from('AWSKMSEncryptionClient Single Block'), u32(1), u64(plaintext.length)]), plaintext)
  return Buffer.concat([iv, u64(plaintext.length), ciphertext, tag])
}

export interface CraftOptions {
  /** The stored context's bytes; default: `contextBytes` of two pairs, a=1 and b=2. */
  context?: Buffer
  contentType?: number
  reserved?: number
  ivLength?: number
  frameLength?: number
  headerIv?: Buffer
  messageId?: Buffer
  plaintext?: Buffer
  /** The body; default `frames` (or `singleBlock` for content type 1). */
  body?: (key: Buffer, messageId: Buffer, plaintext: Buffer, frameLength: number) => Buffer
}

/** A message of suite 0x0014 with these fields, its header and body authenticated with its data key. */
export function craftV1(options: CraftOptions = {}): { ciphertext: Buffer; plaintext: Buffer; dataKey: Buffer } {
  const dataKey = randomBytes(16)
  const messageId = options.messageId ?? randomBytes(16)
  const context = options.context ?? contextBytes([['a', '1'], ['b', '2']])
  const contentType = options.contentType ?? 2
  const frameLength = options.frameLength ?? 64
  const header = Buffer.concat([
    Buffer.from([1, 0x80]),
    u16(0x0014),
    messageId,
    field(context),
    u16(1),
    field(Buffer.from('crafted')),
    field(Buffer.from('key')),
    field(randomBytes(32)),
    Buffer.from([contentType]),
    u32(options.reserved ?? 0),
    Buffer.from([options.ivLength ?? 12]),
    u32(frameLength),
  ])
  const headerIv = options.headerIv ?? Buffer.alloc(12)
  const [, headerTag] = seal(dataKey, headerIv, header, Buffer.alloc(0))
  const plaintext = options.plaintext ?? randomBytes(100)
  const body = options.body ?? (contentType === 1 ? (key: Buffer, id: Buffer, text: Buffer) => singleBlock(key, id, text) : frames)
  return { ciphertext: Buffer.concat([header, headerIv, headerTag, body(dataKey, messageId, plaintext, frameLength)]), plaintext, dataKey }
}

/** Hands over `dataKey` (a fresh copy each time: decrypt zeroes it) for the crafted messages' one wrapped key. */
export function dataKeyKeyring(dataKey: Buffer): Keyring {
  return {
    onEncrypt: () => Promise.reject(new Error('decrypt only')),
    onDecrypt: async (materials, encryptedDataKeys) =>
      encryptedDataKeys.some((key) => key.providerId === 'crafted') ? { ...materials, plaintextDataKey: new Uint8Array(dataKey) } : materials,
  }
}
