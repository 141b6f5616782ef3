// Known answer for the AWS KMS RSA keyring (framework/aws-kms/aws-kms-rsa-keyring.md), built from the
// specification with node:crypto and fixed inputs only (none of the library's code), so the library is
// checked against an independent writer.
//
// Derivation (inputs in test/fixtures/kms-rsa/kat.json, whose `derivation` lists the openssl commands):
//   C = encryption context; ser(C) = uint16 pair count, then per pair sorted by the UTF-8 bytes of its key:
//       uint16 len ‖ key ‖ uint16 len ‖ value (framework/structures.md#serialization; empty context = no bytes)
//   digest = SHA-384(ser(C))                      (#encryption-context-digest; 48 bytes, hence no 1024-bit keys)
//   RSA plaintext = digest ‖ data key             (#onencrypt: "The Encryption Context Digest concatenated with
//                                                  the plaintext data key is the plaintext input to RSA encryption")
//   EDK = provider ID "aws-kms-rsa", provider info = UTF-8 key ARN, ciphertext = RSAES-OAEP(public key, RSA plaintext)
//       with SHA-256+MGF1-SHA-256 (RSAES_OAEP_SHA_256) or SHA-1+MGF1-SHA-1 (RSAES_OAEP_SHA_1). OAEP is randomized:
//       the fixture holds one encryption made by openssl, and fresh ones are checked by decrypting them.
//   On decrypt, KMS Decrypt(KeyId = configured ARN, EncryptionAlgorithm = configured) returns the RSA plaintext;
//       its first 48 bytes must equal SHA-384(ser(context of the message being decrypted)), the rest is the data key.
//   The message around it (suite 0x0478, format v2, one final frame):
//   HKDF-SHA512(salt = message ID, IKM = data key): info 0x0478 ‖ "DERIVEKEY" → encryption key, info "COMMITKEY" → commitment
//   header body = 0x02 ‖ 0x0478 ‖ message ID ‖ uint16 len ‖ ser(C) ‖ uint16 1 ‖ EDK (three uint16-length-prefixed
//       fields) ‖ 0x02 (framed) ‖ uint32 frame length ‖ commitment; header tag = AES-256-GCM(key, 12 zero bytes,
//       AAD = header body, no plaintext)        (data-format/message-header.md)
//   final frame = 0xFFFFFFFF ‖ uint32 1 ‖ IV (8 zero bytes ‖ uint32 1) ‖ uint32 length ‖ AES-256-GCM(key, IV,
//       AAD = message ID ‖ "AWSKMSEncryptionClient Final Frame" ‖ uint32 1 ‖ uint64 length, plaintext) ‖ tag
import { constants, createCipheriv, createHash, hkdfSync, privateDecrypt } from 'node:crypto'
import { readFileSync } from 'node:fs'
import type { KmsClientLike, KmsRsaEncryptionAlgorithm } from '../../src/index.js'
import { serializeContextByHand, uint16, uint32, uint64 } from './wire.js'

export { serializeContextByHand as serializeByHand }

interface KatFile {
  keyArn: string
  encryptionContext: Record<string, string>
  serializedContextHex: string
  contextDigestHex: string
  dataKeyHex: string
  edkPlaintextHex: string
  edkCiphertextOaepSha256Hex: string
  edkCiphertextOaepSha1Hex: string
  messageIdHex: string
  frameLength: number
  plaintextUtf8: string
  publicKeyPem: string
  privateKeyPem: string
}

const file = JSON.parse(readFileSync(new URL('../fixtures/kms-rsa/kat.json', import.meta.url), 'utf8')) as KatFile
const hex = (text: string): Buffer => Buffer.from(text, 'hex')

export const KMS_RSA_KAT = {
  keyArn: file.keyArn,
  encryptionContext: file.encryptionContext,
  serializedContext: hex(file.serializedContextHex),
  contextDigest: hex(file.contextDigestHex),
  dataKey: hex(file.dataKeyHex),
  edkPlaintext: hex(file.edkPlaintextHex),
  edkCiphertext: { RSAES_OAEP_SHA_256: hex(file.edkCiphertextOaepSha256Hex), RSAES_OAEP_SHA_1: hex(file.edkCiphertextOaepSha1Hex) },
  messageId: hex(file.messageIdHex),
  frameLength: file.frameLength,
  plaintext: Buffer.from(file.plaintextUtf8, 'utf8'),
  publicKeyPem: file.publicKeyPem,
  privateKeyPem: file.privateKeyPem,
}

/** node:crypto's name of each KMS RSA algorithm's OAEP hash. */
export const OAEP_HASH = { RSAES_OAEP_SHA_256: 'sha256', RSAES_OAEP_SHA_1: 'sha1' } as const

export interface RecordedDecrypt {
  readonly operation: string
  readonly input: Record<string, unknown>
}

/**
 * KMS Decrypt for the KAT key pair, as KMS does it for an RSA key: raw RSAES-OAEP with the requested
 * algorithm, no encryption context. `answer` may rewrite the response to simulate a misbehaving KMS.
 */
export function katKms(answer: (response: { KeyId: unknown; Plaintext: unknown }) => unknown = (response) => response) {
  const calls: RecordedDecrypt[] = []
  const client: KmsClientLike = {
    async send(command) {
      const input = command.input as Record<string, unknown>
      calls.push({ operation: command.constructor.name, input })
      const algorithm = input.EncryptionAlgorithm as KmsRsaEncryptionAlgorithm
      let plaintext: Buffer
      try {
        plaintext = privateDecrypt(
          { key: KMS_RSA_KAT.privateKeyPem, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: OAEP_HASH[algorithm] },
          input.CiphertextBlob as Uint8Array,
        )
      } catch {
        const error = new Error('The ciphertext is invalid.')
        error.name = 'InvalidCiphertextException'
        throw error
      }
      return answer({ KeyId: input.KeyId, Plaintext: new Uint8Array(plaintext) })
    },
  }
  return { client, calls }
}

export const sha384 = (bytes: Uint8Array): Buffer => createHash('sha384').update(bytes).digest()

function gcm(key: Buffer, iv: Buffer, aad: Buffer, plaintext: Buffer): Buffer {
  const cipher = createCipheriv('aes-256-gcm', key, iv)
  cipher.setAAD(aad)
  return Buffer.concat([cipher.update(plaintext), cipher.final(), cipher.getAuthTag()])
}

function lengthPrefixed(bytes: Buffer): Buffer {
  return Buffer.concat([uint16(bytes.length), bytes])
}

/** The whole known-answer message, with the openssl-made EDK of the given algorithm. */
export function buildKmsRsaKatMessage(algorithm: 'RSAES_OAEP_SHA_256' | 'RSAES_OAEP_SHA_1' = 'RSAES_OAEP_SHA_256'): Uint8Array {
  const kat = KMS_RSA_KAT
  const suiteId = uint16(0x0478)
  const derive = (info: Buffer) => Buffer.from(hkdfSync('sha512', kat.dataKey, kat.messageId, info, 32))
  const encryptionKey = derive(Buffer.concat([suiteId, Buffer.from('DERIVEKEY')]))
  const commitment = derive(Buffer.from('COMMITKEY'))
  const headerBody = Buffer.concat([
    Buffer.of(0x02),
    suiteId,
    kat.messageId,
    lengthPrefixed(kat.serializedContext),
    uint16(1),
    lengthPrefixed(Buffer.from('aws-kms-rsa')),
    lengthPrefixed(Buffer.from(kat.keyArn)),
    lengthPrefixed(kat.edkCiphertext[algorithm]),
    Buffer.of(0x02),
    uint32(kat.frameLength),
    commitment,
  ])
  const headerTag = gcm(encryptionKey, Buffer.alloc(12), headerBody, Buffer.alloc(0))
  const frameIv = Buffer.concat([Buffer.alloc(8), uint32(1)])
  const frameAad = Buffer.concat([kat.messageId, Buffer.from('AWSKMSEncryptionClient Final Frame'), uint32(1), uint64(kat.plaintext.length)])
  return new Uint8Array(
    Buffer.concat([
      headerBody,
      headerTag,
      uint32(0xffffffff),
      uint32(1),
      frameIv,
      uint32(kat.plaintext.length),
      gcm(encryptionKey, frameIv, frameAad, kat.plaintext),
    ]),
  )
}
