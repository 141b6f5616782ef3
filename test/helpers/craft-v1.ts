// Hand-made version 1 messages (suite 0x0014: the data key is the encryption key, no KDF) whose every field can be
// set, each authenticated with its data key, for test/crafted-messages.test.ts. Their one wrapped data key is
// opaque: `dataKeyKeyring` hands the data key over.
import { createCipheriv, randomBytes } from 'node:crypto'
import type { Keyring } from '../../src/index.js'
import { contextPairsByHand, uint16, uint32, uint64 } from './wire.js'

const field = (bytes: Buffer) => Buffer.concat([uint16(bytes.length), bytes])

/** AES-GCM under `key`: ciphertext and tag. */
function seal(key: Buffer, iv: Buffer, aad: Buffer, plaintext: Buffer): [Buffer, Buffer] {
  const cipher = createCipheriv(`aes-${key.length * 8}-gcm` as 'aes-128-gcm', key, iv)
  cipher.setAAD(aad)
  return [Buffer.concat([cipher.update(plaintext), cipher.final()]), cipher.getAuthTag()]
}

/** The IV the specification gives a frame: its sequence number, padded to 12 bytes. */
export const sequenceIv = (sequence: number) => Buffer.concat([Buffer.alloc(8), uint32(sequence)])

/** One frame, regular or final, authenticated for `sequence` under `key`. */
export function frame(key: Buffer, messageId: Buffer, sequence: number, plaintext: Buffer, final: boolean, iv = sequenceIv(sequence)): Buffer {
  const label = final ? 'AWSKMSEncryptionClient Final Frame' : 'AWSKMSEncryptionClient Frame'
  const [ciphertext, tag] = seal(key, iv, Buffer.concat([messageId, Buffer.from(label), uint32(sequence), uint64(plaintext.length)]), plaintext)
  return Buffer.concat(final ? [uint32(0xffffffff), uint32(sequence), iv, uint32(plaintext.length), ciphertext, tag] : [uint32(sequence), iv, ciphertext, tag])
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
  const [ciphertext, tag] = seal(key, iv, Buffer.concat([messageId, Buffer.from('AWSKMSEncryptionClient Single Block'), uint32(1), uint64(plaintext.length)]), plaintext)
  return Buffer.concat([iv, uint64(plaintext.length), ciphertext, tag])
}

export interface CraftOptions {
  /** The stored context's bytes; default: `contextPairsByHand` of two pairs, a=1 and b=2. */
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
  const context = options.context ?? contextPairsByHand([['a', '1'], ['b', '2']])
  const contentType = options.contentType ?? 2
  const frameLength = options.frameLength ?? 64
  const header = Buffer.concat([
    Buffer.from([1, 0x80]),
    uint16(0x0014),
    messageId,
    field(context),
    uint16(1),
    field(Buffer.from('crafted')),
    field(Buffer.from('key')),
    field(randomBytes(32)),
    Buffer.from([contentType]),
    uint32(options.reserved ?? 0),
    Buffer.from([options.ivLength ?? 12]),
    uint32(frameLength),
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
