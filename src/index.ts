/**
 * kms-envelope: client-side envelope encryption in the AWS Encryption SDK message format.
 * This entry runs on node:crypto.
 *
 * @example
 * ```ts
 * import { encrypt, decrypt, RawAesKeyring } from 'kms-envelope'
 * const keyring = new RawAesKeyring({ keyNamespace: 'app', keyName: 'key-1', wrappingKey })
 * const { ciphertext } = await encrypt(keyring, 'hello', { encryptionContext: { purpose: 'demo' } })
 * const { plaintext, header } = await decrypt(keyring, ciphertext, { encryptionContext: { purpose: 'demo' } })
 * ```
 */
import { nodeBackend } from './backend/node.js'
import { decryptWith } from './decrypt.js'
import { encryptWith } from './encrypt.js'
import type { DecryptOptions, DecryptResult, EncryptOptions, EncryptResult, Keyring, MaterialsManager } from './types.js'

/**
 * Encrypt `plaintext` (bytes, or a string encoded as UTF-8) into one message.
 * The default suite is 0x0578 (AES-256-GCM, key commitment, ECDSA P-384 signature).
 */
export function encrypt(
  keyringOrCmm: Keyring | MaterialsManager,
  plaintext: Uint8Array | string,
  options?: EncryptOptions,
): Promise<EncryptResult> {
  return encryptWith(nodeBackend, keyringOrCmm, plaintext, options)
}

/**
 * Decrypt one complete message. Returns plaintext only after the header, every frame and (for signing
 * suites) the signature verify; bytes after the message are an error.
 */
export function decrypt(
  keyringOrCmm: Keyring | MaterialsManager,
  ciphertext: Uint8Array,
  options?: DecryptOptions,
): Promise<DecryptResult> {
  return decryptWith(nodeBackend, keyringOrCmm, ciphertext, options)
}

export * from './errors.js'
export { RawAesKeyring, type RawAesKeyringOptions } from './keyrings/raw-aes.js'
export { RawRsaKeyring, type RawRsaKeyringOptions } from './keyrings/raw-rsa.js'
export { MultiKeyring, type MultiKeyringOptions } from './keyrings/multi.js'
export { DefaultMaterialsManager } from './cmm/default.js'
export { ALGORITHM_SUITE_IDS, type AlgorithmSuite } from './suites.js'
export type { CryptoBackend, RsaPadding } from './backend/types.js'
export type * from './types.js'
