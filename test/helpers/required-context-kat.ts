// A message with encryption context that is authenticated but not stored, built from the specification
// with node:crypto alone (none of the library's code), so the library's decrypt is checked against an
// independent writer. Every input is fixed, so the bytes are a known answer.
//
// Derivation (suite 0x0478, message format v2, one final frame):
//   full context C = { department: 'finance', tenant: 'acme-corp' }, required keys R = ['tenant']
//   stored context S = C without R = { department: 'finance' }; context to only authenticate A = { tenant: 'acme-corp' }
//   ser(X) = uint16 pair count, then for each pair sorted by UTF-8 key bytes: uint16 len, key, uint16 len, value
//                                              (framework/structures.md#serialization; empty context = no bytes)
//   raw AES keyring (framework/raw-aes-keyring.md): EDK ciphertext = AES-256-GCM(wrapping key, wrap IV,
//     AAD = ser(C) — the full context, unstored pairs included), provider info = key name ‖ uint32 128 ‖ uint32 12 ‖ wrap IV
//   HKDF-SHA512(salt = message ID, IKM = data key): info 0x0478 ‖ "DERIVEKEY" → 32-byte encryption key,
//     info "COMMITKEY" → 32-byte commitment (framework/algorithm-suites.md#key-derivation and #key-commitment)
//   header body = 0x02 ‖ 0x0478 ‖ message ID ‖ uint16 len ‖ ser(S) ‖ uint16 1 ‖ EDK ‖ 0x02 ‖ uint32 frame length ‖ commitment
//   header tag = AES-256-GCM(encryption key, IV = 12 zero bytes, AAD = header body ‖ ser(A), no plaintext)
//                                              (client-apis/encrypt.md#construct-the-header)
//   final frame = 0xFFFFFFFF ‖ uint32 1 ‖ IV (8 zero bytes ‖ uint32 1) ‖ uint32 length ‖ AES-256-GCM(encryption key, IV,
//     AAD = message ID ‖ "AWSKMSEncryptionClient Final Frame" ‖ uint32 1 ‖ uint64 length, plaintext) ‖ tag
import { createCipheriv, hkdfSync } from 'node:crypto'
import { serializeContextByHand as serialize, uint16, uint32, uint64 } from './wire.js'

export const KAT = {
  suiteId: 0x0478,
  wrappingKey: Buffer.alloc(32, 0x11),
  keyNamespace: 'kat',
  keyName: 'kat-key',
  dataKey: Buffer.alloc(32, 0x22),
  messageId: Buffer.alloc(32, 0x33),
  wrapIv: Buffer.alloc(12, 0x44),
  frameLength: 4096,
  plaintext: Buffer.from('authenticated, not stored'),
  context: { department: 'finance', tenant: 'acme-corp' } as Record<string, string>,
  requiredKeys: ['tenant'],
}

function gcm(key: Buffer, iv: Buffer, aad: Buffer, plaintext: Buffer): { ciphertext: Buffer; tag: Buffer } {
  const cipher = createCipheriv('aes-256-gcm', key, iv)
  cipher.setAAD(aad)
  const ciphertext = Buffer.concat([cipher.update(plaintext), cipher.final()])
  return { ciphertext, tag: cipher.getAuthTag() }
}

/** Build the known-answer message; `requiredKeys: []` stores every pair (an ordinary message). */
export function buildKatMessage(options: { context?: Record<string, string>; requiredKeys?: string[] } = {}): Uint8Array {
  const context = options.context ?? KAT.context
  const requiredKeys = options.requiredKeys ?? KAT.requiredKeys
  const stored = Object.fromEntries(Object.entries(context).filter(([key]) => !requiredKeys.includes(key)))
  const onlyAuthenticated = Object.fromEntries(Object.entries(context).filter(([key]) => requiredKeys.includes(key)))

  const wrapped = gcm(KAT.wrappingKey, KAT.wrapIv, serialize(context), KAT.dataKey)
  const providerInfo = Buffer.concat([Buffer.from(KAT.keyName), uint32(128), uint32(12), KAT.wrapIv])
  const edkCiphertext = Buffer.concat([wrapped.ciphertext, wrapped.tag])

  const suiteId = uint16(KAT.suiteId)
  const derive = (info: Buffer) => Buffer.from(hkdfSync('sha512', KAT.dataKey, KAT.messageId, info, 32))
  const encryptionKey = derive(Buffer.concat([suiteId, Buffer.from('DERIVEKEY')]))
  const commitment = derive(Buffer.from('COMMITKEY'))

  const storedBytes = serialize(stored)
  const headerBody = Buffer.concat([
    Buffer.of(0x02),
    suiteId,
    KAT.messageId,
    uint16(storedBytes.length),
    storedBytes,
    uint16(1),
    uint16(Buffer.byteLength(KAT.keyNamespace)),
    Buffer.from(KAT.keyNamespace),
    uint16(providerInfo.length),
    providerInfo,
    uint16(edkCiphertext.length),
    edkCiphertext,
    Buffer.of(0x02),
    uint32(KAT.frameLength),
    commitment,
  ])
  const headerTag = gcm(encryptionKey, Buffer.alloc(12), Buffer.concat([headerBody, serialize(onlyAuthenticated)]), Buffer.alloc(0)).tag

  const frameIv = Buffer.concat([Buffer.alloc(8), uint32(1)])
  const frameAad = Buffer.concat([KAT.messageId, Buffer.from('AWSKMSEncryptionClient Final Frame'), uint32(1), uint64(KAT.plaintext.length)])
  const frame = gcm(encryptionKey, frameIv, frameAad, KAT.plaintext)
  return new Uint8Array(
    Buffer.concat([
      headerBody,
      headerTag,
      uint32(0xffffffff),
      uint32(1),
      frameIv,
      uint32(KAT.plaintext.length),
      frame.ciphertext,
      frame.tag,
    ]),
  )
}
