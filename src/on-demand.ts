// Code loaded on first use instead of at import time (see load-on-demand.ts), so that a browser application
// that only encrypts with an unsigned suite (KmsRsaKeyring, 0x0478) never downloads it: the decrypt half of
// the default materials manager and of KmsRsaKeyring, the check that a RawRsaKeyring's two keys are one pair,
// the private half of WebCrypto RSA, WebCrypto ECDSA, and the check of a custom materials manager's encryption
// materials and the typing of its own errors and of the platform's and of one-shot input it cannot take, and
// the browser's one-shot calls on input that arrives in pieces or under an abort signal (gather.ts), and AES-GCM
// decryption on WebCrypto.
// They share one module so that a bundler makes one lazy chunk of them rather than several small ones.
export { defaultDecryptionMaterials } from './cmm/default-decrypt.js'
export { checkEncryptionMaterials, managerFailure } from './cmm/materials-check.js'
export { encryptFailure } from './platform-failure.js'
export { inputRefused } from './input-refusal.js'
export { checkMaterialsRequest } from './cmm/request-check.js'
export { kmsRsaDecrypt } from './keyrings/kms-rsa-decrypt.js'
export { checkRsaPair } from './keyrings/raw-rsa-pair.js'
export { importPrivateKey, publicSpki, rsaDecrypt } from './backend/webcrypto-rsa-private.js'
export { generateSigningKey, importVerificationKey, signMessage, verifyMessage } from './backend/webcrypto-ecdsa.js'
export { oneShot } from './gather.js'
export { webCryptoOpen } from './backend/webcrypto-open.js'
