// The decrypt half of DefaultMaterialsManager, loaded on its first decrypt: a browser application that only
// encrypts never downloads it. spec: framework/default-cmm.md#decrypt-materials
import type { CryptoBackend } from '../backend/types.js'
import { fromBase64 } from '../backend/der.js'
import {
  EncryptionContextMismatchError,
  KeyringError,
  MalformedMessageError,
  NoDecryptableKeyError,
  SignatureVerificationError,
} from '../errors.js'
import { NO_KEYS, PUBLIC_KEY_CONTEXT_KEY, RESERVED_PREFIX, emptyContext } from '../format/context.js'
import { keyringName } from '../keyrings/common.js'
import { assertDecryptAllowed } from '../suites-decrypt.js'
import type { CompleteDecryptionMaterials, DecryptionRequest, EncryptionContext, Keyring } from '../types.js'
import { quoteIdentifier } from '../quote.js'
import { quoteList } from '../quote-list.js'
import { errorMessage, sentence } from '../error-text.js'
import { isEnvelopeError } from './materials-check.js'
import { checkMaterialsRequest } from './request-check.js'

const hasOwn = (object: object, key: string): boolean => Object.prototype.hasOwnProperty.call(object, key)

/** DefaultMaterialsManager.getDecryptionMaterials for `keyring`. */
export async function defaultDecryptionMaterials(
  keyring: Keyring,
  request: DecryptionRequest,
  backend: CryptoBackend,
): Promise<CompleteDecryptionMaterials> {
  checkMaterialsRequest('DefaultMaterialsManager.getDecryptionMaterials', request, backend, true)
  const { suite } = request
  assertDecryptAllowed(suite, request.commitmentPolicy)
  const { encryptionContext, requiredEncryptionContextKeys } = appendReproduced(
    request.encryptionContext,
    request.reproducedEncryptionContext,
    // The DynamoDB item format binds reserved pairs (table name, key names) it does not store.
    suite.edkWrapping === 'intermediate',
  )
  const encodedPublicKey = request.encryptionContext[PUBLIC_KEY_CONTEXT_KEY]
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
    materials = await keyring.onDecrypt(
      { suite, encryptionContext, requiredEncryptionContextKeys },
      request.encryptedDataKeys,
      backend,
    )
  } catch (error) {
    if (isEnvelopeError(error) && error instanceof NoDecryptableKeyError) throw error
    throw new NoDecryptableKeyError(`The keyring could not decrypt a data key: ${sentence(errorMessage(error))}`, [
      { keyring: keyringName(keyring), error },
    ])
  }
  if (typeof materials !== 'object' || materials === null) {
    throw new KeyringError('The keyring returned no decryption materials from onDecrypt (it must return the materials it was given, or new ones).')
  }
  const { plaintextDataKey } = materials
  if (plaintextDataKey === undefined) {
    // The provider IDs come from the message: quoted and few, however many and long they are.
    const providers = quoteList(new Set(request.encryptedDataKeys.map((edk) => edk.providerId)))
    const reason = new KeyringError(`No encrypted data key is for this keyring (the message has keys from: ${providers}).`)
    throw new NoDecryptableKeyError(`No keyring could decrypt a data key: ${reason.message}`, [
      { keyring: keyringName(keyring), error: reason },
    ])
  }
  if (!(plaintextDataKey instanceof Uint8Array) || plaintextDataKey.length !== suite.keyLength) {
    if (plaintextDataKey instanceof Uint8Array) plaintextDataKey.fill(0)
    throw new KeyringError(`The keyring returned no ${suite.keyLength}-byte data key (a Uint8Array), which the suite needs.`)
  }
  if (suite.symmetricSignature !== undefined && materials.symmetricSigningKey?.length !== suite.keyLength) {
    plaintextDataKey.fill(0)
    throw new KeyringError('The keyring returned no symmetric signing key, which this suite needs: it must support intermediate key wrapping.')
  }
  // The keyring adds the data key (spec: framework/keyring-interface.md#ondecrypt); the context and the required
  // keys stay the manager's. An unsigned suite adds nothing to what a keyring that kept them returned.
  const kept = materials.encryptionContext === encryptionContext && materials.requiredEncryptionContextKeys === requiredEncryptionContextKeys
  if (verificationKey === undefined && kept) {
    return materials as CompleteDecryptionMaterials
  }
  return Object.assign({}, materials, { plaintextDataKey, encryptionContext, requiredEncryptionContextKeys, verificationKey })
}

/**
 * The decryption materials' context: the stored pairs plus the caller's pairs the message does not store,
 * which become required keys (authenticated by the header tag). A stored key must keep its value.
 * spec: framework/cmm-interface.md#decrypt-materials
 */
function appendReproduced(
  stored: EncryptionContext,
  reproduced: EncryptionContext | undefined,
  reservedAllowed: boolean,
): { encryptionContext: EncryptionContext; requiredEncryptionContextKeys: readonly string[] } {
  if (reproduced === undefined) return { encryptionContext: stored, requiredEncryptionContextKeys: NO_KEYS }
  const appended: string[] = []
  for (const [key, value] of Object.entries(reproduced)) {
    if (hasOwn(stored, key)) {
      if (stored[key] !== value) {
        throw new EncryptionContextMismatchError(`The message's encryption context has a different value for ${quoteIdentifier(key)} than the caller requires.`)
      }
    } else if (key.startsWith(RESERVED_PREFIX) && !reservedAllowed) {
      throw new EncryptionContextMismatchError(`The message's encryption context has no key ${quoteIdentifier(key)}, which the caller requires.`)
    } else {
      appended.push(key)
    }
  }
  if (appended.length === 0) return { encryptionContext: stored, requiredEncryptionContextKeys: NO_KEYS }
  const encryptionContext = emptyContext()
  Object.assign(encryptionContext, stored)
  for (const key of appended) encryptionContext[key] = reproduced[key] as string
  return { encryptionContext: Object.freeze(encryptionContext), requiredEncryptionContextKeys: Object.freeze(appended) }
}
