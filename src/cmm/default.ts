import type { CryptoBackend } from '../backend/types.js'
import {
  ConfigurationError,
  EnvelopeError,
  KeyringError,
  MalformedMessageError,
  NoDecryptableKeyError,
  SignatureVerificationError,
} from '../errors.js'
import { PUBLIC_KEY_CONTEXT_KEY } from '../format/context.js'
import { isKeyring, keyringName } from '../keyrings/common.js'
import { assertDecryptAllowed, assertEncryptAllowed } from '../suites.js'
import type {
  CompleteDecryptionMaterials,
  CompleteEncryptionMaterials,
  DecryptionRequest,
  EncryptionRequest,
  Keyring,
  MaterialsManager,
} from '../types.js'


/**
 * The default materials manager: asks one keyring for the data key and, for signing suites, makes the
 * ECDSA key pair and stores its public half in the encryption context. spec: framework/default-cmm.md
 *
 * @example
 * ```ts
 * const cmm = new DefaultMaterialsManager(keyring)
 * await encrypt(cmm, plaintext)
 * ```
 */
export class DefaultMaterialsManager implements MaterialsManager {
  readonly keyring: Keyring

  constructor(keyring: Keyring) {
    if (!isKeyring(keyring)) throw new ConfigurationError('DefaultMaterialsManager needs a keyring (an object with onEncrypt and onDecrypt).')
    this.keyring = keyring
  }

  async getEncryptionMaterials(request: EncryptionRequest, backend: CryptoBackend): Promise<CompleteEncryptionMaterials> {
    const { suite } = request
    assertEncryptAllowed(suite, request.commitmentPolicy)
    const encryptionContext = { ...request.encryptionContext }
    let signingKey: unknown
    if (suite.signature !== undefined) {
      const pair = await backend.generateSigningKey(suite.signature.curve)
      signingKey = pair.privateKey
      encryptionContext[PUBLIC_KEY_CONTEXT_KEY] = toBase64(pair.publicKey)
    }
    Object.freeze(encryptionContext)
    const materials = await this.keyring.onEncrypt({ suite, encryptionContext, encryptedDataKeys: [] }, backend)
    const { plaintextDataKey } = materials
    if (plaintextDataKey === undefined || plaintextDataKey.length !== suite.keyLength) {
      throw new KeyringError(`The keyring returned no ${suite.keyLength}-byte data key.`)
    }
    if (materials.encryptedDataKeys.length === 0) throw new KeyringError('The keyring returned no encrypted data key.')
    if (materials.suite !== suite) throw new KeyringError('The keyring changed the algorithm suite.')
    return { ...materials, plaintextDataKey, signingKey }
  }

  async getDecryptionMaterials(request: DecryptionRequest, backend: CryptoBackend): Promise<CompleteDecryptionMaterials> {
    const { suite, encryptionContext } = request
    assertDecryptAllowed(suite, request.commitmentPolicy)
    const encodedPublicKey = encryptionContext[PUBLIC_KEY_CONTEXT_KEY]
    let verificationKey: unknown
    if (suite.signature !== undefined) {
      if (encodedPublicKey === undefined) {
        throw new MalformedMessageError(`Signing suite message has no "${PUBLIC_KEY_CONTEXT_KEY}" in its encryption context.`)
      }
      try {
        verificationKey = await backend.importVerificationKey(suite.signature.curve, fromBase64(encodedPublicKey))
      } catch (error) {
        throw new SignatureVerificationError(`The message's signing public key is not a valid ${suite.signature.curve} point.`, { cause: error })
      }
    } else if (encodedPublicKey !== undefined) {
      throw new MalformedMessageError(`A non-signing suite message carries "${PUBLIC_KEY_CONTEXT_KEY}" in its encryption context.`)
    }

    let materials
    try {
      materials = await this.keyring.onDecrypt({ suite, encryptionContext }, request.encryptedDataKeys, backend)
    } catch (error) {
      if (error instanceof NoDecryptableKeyError) throw error
      throw new NoDecryptableKeyError(`The keyring could not decrypt a data key: ${describe(error)}`, [
        { keyring: keyringName(this.keyring), error },
      ])
    }
    const { plaintextDataKey } = materials
    if (plaintextDataKey === undefined) {
      const providers = [...new Set(request.encryptedDataKeys.map((edk) => edk.providerId))].join(', ')
      const reason = new KeyringError(`No encrypted data key is for this keyring (the message has keys from: ${providers}).`)
      throw new NoDecryptableKeyError(`No keyring could decrypt a data key: ${reason.message}`, [
        { keyring: keyringName(this.keyring), error: reason },
      ])
    }
    if (plaintextDataKey.length !== suite.keyLength) {
      throw new KeyringError(`The keyring returned a ${plaintextDataKey.length}-byte data key; the suite needs ${suite.keyLength}.`)
    }
    return { ...materials, plaintextDataKey, verificationKey }
  }
}

function describe(error: unknown): string {
  return error instanceof EnvelopeError || error instanceof Error ? error.message : String(error)
}

function toBase64(bytes: Uint8Array): string {
  let binary = ''
  for (const byte of bytes) binary += String.fromCharCode(byte)
  return btoa(binary)
}

function fromBase64(text: string): Uint8Array {
  const binary = atob(text)
  const bytes = new Uint8Array(binary.length)
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i)
  return bytes
}

export function asMaterialsManager(keyringOrCmm: unknown): MaterialsManager {
  const candidate = keyringOrCmm as MaterialsManager | null
  if (typeof candidate?.getEncryptionMaterials === 'function' && typeof candidate.getDecryptionMaterials === 'function') {
    return candidate
  }
  if (isKeyring(keyringOrCmm)) return new DefaultMaterialsManager(keyringOrCmm)
  throw new ConfigurationError('The first argument must be a keyring or a materials manager.')
}
