// Hand-made messages whose every field can be set, each authenticated with its data key, for
// test/crafted-messages.test.ts: version 1 of suite 0x0014 (the data key is the encryption key, no KDF), and
// version 2 of suites 0x0478 and 0x0578 (key derivation and commitment, and for 0x0578 a P-384 signature whose
// encoding and public key can be changed too). Written from the specification with node:crypto alone. Their one
// wrapped data key is opaque: `dataKeyKeyring` hands the data key over.
import { createCipheriv, generateKeyPairSync, hkdfSync, randomBytes, sign, type KeyObject } from 'node:crypto'
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

/** A frame's fields laid out as the specification orders them, whatever they hold: a final frame is marked and counts its content. */
export function frameFields(sequence: number, iv: Uint8Array, content: Uint8Array, tag: Uint8Array, final: boolean): Buffer {
  return Buffer.concat(final ? [uint32(0xffffffff), uint32(sequence), iv, uint32(content.length), content, tag] : [uint32(sequence), iv, content, tag])
}

/** One frame, regular or final, authenticated for `sequence` under `key`. */
export function frame(key: Buffer, messageId: Buffer, sequence: number, plaintext: Buffer, final: boolean, iv = sequenceIv(sequence)): Buffer {
  const label = final ? 'AWSKMSEncryptionClient Final Frame' : 'AWSKMSEncryptionClient Frame'
  const [ciphertext, tag] = seal(key, iv, Buffer.concat([messageId, Buffer.from(label), uint32(sequence), uint64(plaintext.length)]), plaintext)
  return frameFields(sequence, iv, ciphertext, tag, final)
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
  /** The suite ID written in the header (the message is made as one of 0x0014); default 0x0014. */
  suite?: number
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

const PROVIDER = 'crafted'

/** The header's list of wrapped data keys: one, opaque, of the provider `dataKeyKeyring` answers for. */
const wrappedKeys = () => Buffer.concat([uint16(1), field(Buffer.from(PROVIDER)), field(Buffer.from('key')), field(randomBytes(32))])

/** A message of suite 0x0014 with these fields, its header and body authenticated with its data key. */
export function craftV1(options: CraftOptions = {}): { ciphertext: Buffer; plaintext: Buffer; dataKey: Buffer } {
  const dataKey = randomBytes(16)
  const messageId = options.messageId ?? randomBytes(16)
  const context = options.context ?? contextPairsByHand([['a', '1'], ['b', '2']])
  const contentType = options.contentType ?? 2
  const frameLength = options.frameLength ?? 64
  const header = Buffer.concat([
    Buffer.from([1, 0x80]),
    uint16(options.suite ?? 0x0014),
    messageId,
    field(context),
    wrappedKeys(),
    Buffer.from([contentType]),
    uint32(options.reserved ?? 0),
    Buffer.from([options.ivLength ?? 12]),
    uint32(frameLength),
  ])
  const headerIv = options.headerIv ?? Buffer.alloc(12)
  const [, headerTag] = seal(dataKey, headerIv, header, Buffer.alloc(0))
  const plaintext = options.plaintext ?? randomBytes(100)
  const body = bodyOf(options.body, contentType)
  return { ciphertext: Buffer.concat([header, headerIv, headerTag, body(dataKey, messageId, plaintext, frameLength)]), plaintext, dataKey }
}

type Body = NonNullable<CraftOptions['body']>
const bodyOf = (body: Body | undefined, contentType: number): Body =>
  body ?? (contentType === 1 ? (key: Buffer, id: Buffer, text: Buffer) => singleBlock(key, id, text) : frames)

export interface CraftV2Options {
  /** 0x0478 (default) or 0x0578; another ID is only written, the message being made as one of 0x0478. */
  suite?: number
  /** The stored pairs (the signing suite's public key is added to them, in byte order); default a=1 and b=2. */
  pairs?: [string, string][]
  /** The stored context's bytes instead of `pairs` and the public key. */
  context?: Buffer
  contentType?: number
  frameLength?: number
  messageId?: Buffer
  plaintext?: Buffer
  body?: Body
  /** The commitment written in the header, given the right one. */
  commitment?: (commitment: Buffer) => Buffer
  /** 0x0578: the public key's context value, given the compressed and uncompressed points (undefined: no pair). */
  publicKey?: (compressed: Buffer, uncompressed: Buffer) => string | undefined
  /** 0x0578: the footer's signature, given the DER one made with SHA-384 over `signed` by `privateKey`. */
  signature?: (der: Buffer, signed: Buffer, privateKey: KeyObject) => Buffer
}

/**
 * A version 2 message with these fields: HKDF-SHA512 (salt the message ID) derives the encryption key (info the
 * suite ID and "DERIVEKEY") and the commitment ("COMMITKEY"); the header tag has an IV of zeros; 0x0578 ends with
 * a footer signing everything before it.
 */
export function craftV2(options: CraftV2Options = {}): { ciphertext: Buffer; plaintext: Buffer; dataKey: Buffer } {
  const suite = options.suite ?? 0x0478
  const dataKey = randomBytes(32)
  const messageId = options.messageId ?? randomBytes(32)
  const derive = (info: Buffer) => Buffer.from(hkdfSync('sha512', dataKey, messageId, info, 32))
  const key = derive(Buffer.concat([uint16(suite === 0x0578 ? 0x0578 : 0x0478), Buffer.from('DERIVEKEY')]))
  const commitment = derive(Buffer.from('COMMITKEY'))
  const signer = suite === 0x0578 ? generateKeyPairSync('ec', { namedCurve: 'secp384r1' }) : undefined
  let pairs: [string, string][] = options.pairs ?? [['a', '1'], ['b', '2']]
  if (signer !== undefined) {
    const { x, y } = signer.publicKey.export({ format: 'jwk' }) as { x: string; y: string }
    const [xBytes, yBytes] = [Buffer.from(x, 'base64url'), Buffer.from(y, 'base64url')]
    const compressed = Buffer.concat([Buffer.of(2 + ((yBytes.at(-1) as number) & 1)), xBytes])
    const publicKey = (options.publicKey ?? ((point) => point.toString('base64')))(compressed, Buffer.concat([Buffer.of(4), xBytes, yBytes]))
    if (publicKey !== undefined) pairs = [...pairs, ['aws-crypto-public-key', publicKey] as [string, string]].sort(([a], [b]) => Buffer.compare(Buffer.from(a), Buffer.from(b)))
  }
  const context = options.context ?? contextPairsByHand(pairs)
  const contentType = options.contentType ?? 2
  const frameLength = options.frameLength ?? 64
  const header = Buffer.concat([
    Buffer.of(2),
    uint16(suite),
    messageId,
    field(context),
    wrappedKeys(),
    Buffer.of(contentType),
    uint32(frameLength),
    (options.commitment ?? ((right) => right))(commitment),
  ])
  const [, headerTag] = seal(key, Buffer.alloc(12), header, Buffer.alloc(0))
  const plaintext = options.plaintext ?? randomBytes(100)
  const message = Buffer.concat([header, headerTag, bodyOf(options.body, contentType)(key, messageId, plaintext, frameLength)])
  if (signer === undefined) return { ciphertext: message, plaintext, dataKey }
  const der = sign('sha384', message, signer.privateKey)
  const signature = options.signature ? options.signature(der, message, signer.privateKey) : der
  return { ciphertext: Buffer.concat([message, field(signature)]), plaintext, dataKey }
}

/** Hands over `dataKey` (a fresh copy each time: decrypt zeroes it) for the crafted messages' one wrapped key. */
export function dataKeyKeyring(dataKey: Buffer): Keyring {
  return {
    onEncrypt: () => Promise.reject(new Error('decrypt only')),
    onDecrypt: async (materials, encryptedDataKeys) =>
      encryptedDataKeys.some((key) => key.providerId === PROVIDER) ? { ...materials, plaintextDataKey: new Uint8Array(dataKey) } : materials,
  }
}

/** The order of P-384's base point. */
export const P384_ORDER = BigInt('0xffffffffffffffffffffffffffffffffffffffffffffffffc7634d81f4372ddf581a0db248b0a77aecec196accc52973')

/** r and s of a DER ECDSA-Sig-Value of P-384 (always short-form lengths), as their content bytes. */
export function derIntegers(der: Buffer): [Buffer, Buffer] {
  const rLength = der[3] as number
  const r = der.subarray(4, 4 + rLength)
  return [r, der.subarray(6 + rLength, 6 + rLength + (der[5 + rLength] as number))]
}

/** A DER ECDSA-Sig-Value of these integer contents, its sequence length written in `lengthBytes` bytes (1: short form). */
export function derSignature(r: Buffer, s: Buffer, lengthBytes = 1): Buffer {
  const body = Buffer.concat([Buffer.of(2, r.length), r, Buffer.of(2, s.length), s])
  const length = lengthBytes === 1 ? Buffer.of(body.length) : Buffer.concat([Buffer.of(0x80 + lengthBytes - 1), Buffer.alloc(lengthBytes - 2), Buffer.of(body.length)])
  return Buffer.concat([Buffer.of(0x30), length, body])
}

/**
 * A signature of `signed` whose r and s both fit in 48 bytes (signed again until so: each has a high bit set, and
 * so a sign byte, half the time), so that a byte or two more keeps it within the format's 104 bytes.
 */
export function shortSignature(signed: Buffer, privateKey: KeyObject): Buffer {
  for (;;) {
    const der = sign('sha384', signed, privateKey)
    if (der.length <= 102) return der
  }
}

/** The same signature with s replaced by the curve order minus s: valid too, in its other ("high-S") form. */
export function otherSForm(der: Buffer): Buffer {
  const [r, s] = derIntegers(der)
  return derSignature(r, derIntegerContent(P384_ORDER - BigInt(`0x${s.toString('hex')}`)))
}

/** A positive integer's DER INTEGER content: big-endian, shortest, with a zero byte first when the high bit is set. */
export function derIntegerContent(value: bigint): Buffer {
  let hex = value.toString(16)
  if (hex.length % 2 === 1) hex = `0${hex}`
  const bytes = Buffer.from(hex, 'hex')
  return (bytes[0] as number) & 0x80 ? Buffer.concat([Buffer.alloc(1), bytes]) : bytes
}

/** The same signature as IEEE P1363 bytes (r ‖ s, 48 bytes each): what WebCrypto takes, but not the format's encoding. */
export function p1363Of(der: Buffer): Buffer {
  const fixed = (integer: Buffer) => Buffer.concat([Buffer.alloc(48), integer]).subarray(-48)
  const [r, s] = derIntegers(der)
  return Buffer.concat([fixed(r), fixed(s)])
}
