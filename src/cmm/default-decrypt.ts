// The decrypt half of DefaultMaterialsManager, loaded on its first decrypt: a browser application that only
// encrypts never downloads it. spec: framework/default-cmm.md#decrypt-materials
import type { CryptoBackend } from '../backend/types.js'
import { fromBase64 } from '../backend/der.js'
import { stopIfAborted } from '../abort.js'
import {
  EncryptionContextMismatchError,
  KeyringError,
  MalformedMessageError,
  NoDecryptableKeyError,
  SignatureVerificationError,
} from '../errors.js'
import { NO_KEYS, PUBLIC_KEY_CONTEXT_KEY, RESERVED_PREFIX, emptyContext } from '../format/context.js'
import { keyringName } from '../keyrings/keyring-name.js'
import { assertDecryptAllowed } from '../suites-decrypt.js'
import type { CompleteDecryptionMaterials, DecryptionRequest, EncryptedDataKey, EncryptionContext, Keyring } from '../types.js'
import { quoteIdentifier } from '../quote.js'
import { quoteList } from '../quote-list.js'
import { errorMessage, sentence } from '../error-text.js'
import { isEnvelopeError } from './materials-check.js'
import { checkMaterialsRequest } from './request-check.js'
import { isBytes } from '../is-bytes.js'

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
      request.signal,
    )
  } catch (error) {
    stopIfAborted(request.signal)
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
    const reason = new KeyringError(`No encrypted data key is for this keyring (the message has keys from: ${describeDataKeys(request.encryptedDataKeys)}).`)
    throw new NoDecryptableKeyError(`No keyring could decrypt a data key: ${reason.message}`, [
      { keyring: keyringName(keyring), error: reason },
    ])
  }
  if (!isBytes(plaintextDataKey) || plaintextDataKey.length !== suite.keyLength) {
    if (isBytes(plaintextDataKey)) plaintextDataKey.fill(0)
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
 * The message's data keys as an error names them: each provider ID, and its key where the provider info shows
 * one. They come from the message: quoted, cut short and few, however many and long they are.
 */
function describeDataKeys(keys: readonly EncryptedDataKey[]): string {
  const described = keys.map(({ providerId, providerInfo }) => {
    const key = keyNameOf(providerInfo)
    return key === undefined ? quoteIdentifier(providerId) : `${quoteIdentifier(providerId)} ${quoteIdentifier(key)}`
  })
  return quoteList(new Set(described), 10, String)
}

/** A raw AES keyring's provider info after the key name: the tag length in bits (128) and the IV length (12), then the IV. */
const RAW_AES_FIELDS = new Uint8Array([0, 0, 0, 128, 0, 0, 0, 12])
const RAW_AES_FIELDS_LENGTH = RAW_AES_FIELDS.length + 12

/**
 * The key a data key's provider info names, where it shows one: the whole info as text (a KMS key ARN, a raw RSA
 * key's name), or a raw AES key's name before its IV fields (which hold zero bytes, so they are never text).
 */
function keyNameOf(info: Uint8Array): string | undefined {
  const whole = printableText(info)
  if (whole !== undefined) return whole
  const nameLength = info.length - RAW_AES_FIELDS_LENGTH
  if (nameLength <= 0 || !RAW_AES_FIELDS.every((byte, index) => info[nameLength + index] === byte)) return undefined
  return printableText(info.subarray(0, nameLength))
}

// Its own decoder, not format/bytes.ts's: importing that module's helpers here would put them in the browser's first load.
const strictUtf8 = new TextDecoder('utf-8', { fatal: true })

function printableText(bytes: Uint8Array): string | undefined {
  let text: string
  try {
    text = strictUtf8.decode(bytes)
  } catch {
    return undefined
  }
  return text !== '' && !/[\u0000-\u001f\u007f]/.test(text) ? text : undefined
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
