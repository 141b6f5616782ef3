// "The message floor": the node:crypto calls one small message needs and nothing else, for the 1 KiB
// ops/s section. Where bench/lib/floor.mjs prices a body's frames, this prices one whole message with a
// raw AES keyring, as the format requires it to be made and read:
//
//   encrypt: random data key, wrapping IV and message ID (drawn from a pooled block); AES-GCM wrap of
//            the data key under the wrapping key; HKDF (one extract and one expand per output: the
//            encryption key, and for committing suites the commitment); the header tag (AES-GCM over
//            the header with no plaintext); one final frame (AES-GCM over the plaintext)
//   decrypt: AES-GCM unwrap; the same HKDF; a constant-time commitment check; the header tag check;
//            the final frame
//
// For the signing suite 0x0578, also what ECDSA P-384 adds to one message:
//   encrypt: a fresh key pair, generated here and now (ours takes one made ahead on the thread pool, so it
//            can beat this floor), its public point compressed into the message, and a signature over
//            the message
//   decrypt: the message's compressed point imported (WebCrypto's raw import, the quickest node:crypto
//            offers) and the signature verified: cycling through distinct messages, that is every decrypt
//
// No parsing, no encryption context, no validation, no materials manager: fixed offsets in a made-up
// layout, reusable AAD buffers, suite-constant HKDF info computed once. Each HMAC and AES-GCM call is
// one node:crypto object, the least node:crypto offers. What ours or any node:crypto implementation can
// reach against the official SDK is bounded by official/floor.

import {
  createCipheriv,
  createDecipheriv,
  createHmac,
  createSecretKey,
  generateKeyPairSync,
  KeyObject,
  randomFillSync,
  sign,
  timingSafeEqual,
  verify,
  webcrypto,
} from 'node:crypto'

const TAG = 16
const IV = 12
const KEY = 32
const FINAL_FRAME = Buffer.from('AWSKMSEncryptionClient Final Frame', 'utf8')

const SUITES = {
  0x0478: { version: 2, hash: 'sha512', committing: true, headerLength: 160 },
  0x0178: { version: 1, hash: 'sha256', committing: false, headerLength: 130 },
  // 0x0478's header plus the context pair holding the public key (93 bytes: "aws-crypto-public-key", base64)
  0x0578: { version: 2, hash: 'sha512', committing: true, headerLength: 253, signing: true },
}

const P384_POINT = 49
const MAX_P384_SIGNATURE = 104 // DER: two 49-byte integers (a leading zero byte each at most) and their headers
const P384 = { name: 'ECDSA', namedCurve: 'P-384' }

/** The compressed point of a P-384 public key's SPKI encoding: 0x02/0x03 by the parity of y, then x. */
export function compressedP384Point(spki) {
  const point = spki.subarray(spki.length - 97)
  const compressed = Buffer.allocUnsafe(P384_POINT)
  compressed[0] = 0x02 | (point[96] & 1)
  point.copy(compressed, 1, 1, 49)
  return compressed
}

/** A compressed P-384 point as a verification key, the quickest way node:crypto offers (WebCrypto's raw import). */
export async function importP384Point(point) {
  return KeyObject.from(await webcrypto.subtle.importKey('raw', point, P384, true, ['verify']))
}

export const MESSAGE_FLOOR_SUITES = new Set(Object.keys(SUITES).map(Number))

/** Encrypt and decrypt functions for one suite; the wrapping key is prepared once, as a keyring does. */
export function messageFloor(suiteId) {
  const suite = SUITES[suiteId]
  if (suite === undefined) throw new Error(`no message floor for suite ${suiteId}`)
  const { hash, committing, headerLength, signing = false } = suite
  const idLength = suite.version === 2 ? 32 : 16
  const wrappingKey = createSecretKey(Buffer.alloc(KEY, 0x5a))
  const suiteBytes = Buffer.from([suiteId >> 8, suiteId & 0xff])
  // HKDF info: constant for committing suites; for v1 it ends with the message ID, rewritten per message.
  const keyInfo = committing
    ? Buffer.concat([suiteBytes, Buffer.from('DERIVEKEY'), Buffer.from([1])])
    : Buffer.concat([suiteBytes, Buffer.alloc(idLength), Buffer.from([1])])
  const commitInfo = Buffer.concat([Buffer.from('COMMITKEY'), Buffer.from([1])])
  const zeroSalt = Buffer.alloc(hash === 'sha512' ? 64 : 32)
  const emptyContext = Buffer.alloc(0)
  const header = Buffer.alloc(headerLength)
  const zeroIv = Buffer.alloc(IV)
  const bodyAad = Buffer.alloc(idLength + FINAL_FRAME.length + 12)
  FINAL_FRAME.copy(bodyAad, idLength)
  bodyAad.writeUInt32BE(1, idLength + FINAL_FRAME.length)
  const bodyIv = Buffer.alloc(IV)
  bodyIv.writeUInt32BE(1, 8)

  // layout: message ID | [public key] | wrapping IV | wrapped key + tag | commitment | header tag | body + tag
  //         | [signature length u16 | signature, in room for the longest]
  const pointAt = idLength
  const wrapIvAt = pointAt + (signing ? P384_POINT : 0)
  const wrappedAt = wrapIvAt + IV
  const commitmentAt = wrappedAt + KEY + TAG
  const headerTagAt = commitmentAt + (committing ? KEY : 0)
  const bodyAt = headerTagAt + TAG
  const footerLength = signing ? 2 + MAX_P384_SIGNATURE : 0

  let random = Buffer.alloc(0)
  let randomAt = 0
  const randomBytes = (length) => {
    if (randomAt + length > random.length) {
      random = randomFillSync(Buffer.allocUnsafe(4096))
      randomAt = 0
    }
    randomAt += length
    return random.subarray(randomAt - length, randomAt)
  }

  const deriveKeys = (dataKey, messageId) => {
    const prk = createHmac(hash, committing ? messageId : zeroSalt)
      .update(dataKey)
      .digest()
    if (!committing) messageId.copy(keyInfo, 2)
    const key = createHmac(hash, prk).update(keyInfo).digest().subarray(0, KEY)
    const commitment = committing ? createHmac(hash, prk).update(commitInfo).digest().subarray(0, KEY) : undefined
    return { key, commitment }
  }

  const setBodyAad = (messageId, length) => {
    messageId.copy(bodyAad, 0)
    bodyAad.writeUInt32BE(length, bodyAad.length - 4)
    return bodyAad
  }

  return {
    encrypt(plaintext) {
      const out = Buffer.allocUnsafe(bodyAt + plaintext.length + TAG + footerLength)
      let privateKey
      if (signing) {
        const pair = generateKeyPairSync('ec', { namedCurve: 'P-384', publicKeyEncoding: { type: 'spki', format: 'der' } })
        compressedP384Point(pair.publicKey).copy(out, pointAt)
        privateKey = pair.privateKey
      }
      const dataKey = randomBytes(KEY)
      const messageId = randomBytes(idLength)
      messageId.copy(out, 0)
      randomBytes(IV).copy(out, wrapIvAt)
      const wrap = createCipheriv('aes-256-gcm', wrappingKey, out.subarray(wrapIvAt, wrappedAt))
      wrap.setAAD(emptyContext)
      out.set(wrap.update(dataKey), wrappedAt)
      wrap.final()
      out.set(wrap.getAuthTag(), wrappedAt + KEY)

      const { key, commitment } = deriveKeys(dataKey, messageId)
      if (commitment) out.set(commitment, commitmentAt)
      const headerTag = createCipheriv('aes-256-gcm', key, zeroIv)
      headerTag.setAAD(header)
      headerTag.final()
      out.set(headerTag.getAuthTag(), headerTagAt)

      const body = createCipheriv('aes-256-gcm', key, bodyIv)
      body.setAAD(setBodyAad(messageId, plaintext.length))
      out.set(body.update(plaintext), bodyAt)
      body.final()
      out.set(body.getAuthTag(), bodyAt + plaintext.length)
      if (signing) {
        const bodyEnd = bodyAt + plaintext.length + TAG
        const signature = sign('sha384', out.subarray(0, bodyEnd), privateKey)
        out.writeUInt16BE(signature.length, bodyEnd)
        signature.copy(out, bodyEnd + 2)
      }
      return out
    },

    decrypt: !signing
      ? (message) => open(message, message.length)
      : async (message) => {
          const bodyEnd = message.length - footerLength
          const key = await importP384Point(message.subarray(pointAt, pointAt + P384_POINT))
          const signature = message.subarray(bodyEnd + 2, bodyEnd + 2 + message.readUInt16BE(bodyEnd))
          if (!verify('sha384', message.subarray(0, bodyEnd), key, signature)) throw new Error('signature')
          return open(message, bodyEnd)
        },
  }

  /** Everything but the signature, for a message whose body ends (tag included) at `bodyEnd`. */
  function open(message, bodyEnd) {
    const messageId = message.subarray(0, idLength)
    const unwrap = createDecipheriv('aes-256-gcm', wrappingKey, message.subarray(wrapIvAt, wrappedAt))
    unwrap.setAAD(emptyContext)
    unwrap.setAuthTag(message.subarray(wrappedAt + KEY, commitmentAt))
    const dataKey = unwrap.update(message.subarray(wrappedAt, wrappedAt + KEY))
    unwrap.final()

    const { key, commitment } = deriveKeys(dataKey, messageId)
    if (commitment && !timingSafeEqual(commitment, message.subarray(commitmentAt, headerTagAt))) throw new Error('commitment')
    const headerTag = createDecipheriv('aes-256-gcm', key, zeroIv)
    headerTag.setAAD(header)
    headerTag.setAuthTag(message.subarray(headerTagAt, bodyAt))
    headerTag.final()

    const length = bodyEnd - bodyAt - TAG
    const body = createDecipheriv('aes-256-gcm', key, bodyIv)
    body.setAAD(setBodyAad(messageId, length))
    body.setAuthTag(message.subarray(bodyAt + length, bodyEnd))
    const plaintext = body.update(message.subarray(bodyAt, bodyAt + length))
    body.final()
    return plaintext
  }
}
