import { toBase64 } from '../backend/der.js'
import type { CryptoBackend } from '../backend/types.js'
import { ConfigurationError, InvalidEncryptionContextError } from '../errors.js'
import { isAllZero } from '../format/bytes.js'
import { NO_KEYS, PUBLIC_KEY_CONTEXT_KEY, checkRequiredKeys, emptyContext } from '../format/context.js'
import { isKeyring } from '../keyrings/common.js'
import { loadOnDemand, onDemandLoaded } from '../load-on-demand.js'
import { assertEncryptAllowed } from '../suites.js'
import type {
  CompleteDecryptionMaterials,
  CompleteEncryptionMaterials,
  DecryptionRequest,
  EncryptionRequest,
  Keyring,
  MaterialsManager,
} from '../types.js'
import { isBytes } from '../is-bytes.js'

const hasOwn = (object: object, key: string): boolean => Object.prototype.hasOwnProperty.call(object, key)

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
  /** The keyring that wraps and unwraps its data keys. */
  readonly keyring: Keyring

  constructor(keyring: Keyring) {
    if (!isKeyring(keyring)) throw new ConfigurationError('DefaultMaterialsManager needs a keyring (an object with onEncrypt and onDecrypt).')
    this.keyring = keyring
  }

  async getEncryptionMaterials(request: EncryptionRequest, backend: CryptoBackend): Promise<CompleteEncryptionMaterials> {
    // A request encrypt made passes this (its context is frozen, after validateCallerContext); any other is
    // checked in full, loaded on demand. (`Object(x)` is a new, unfrozen object for null, undefined and other
    // values that are not objects.)
    if (typeof request?.suite?.keyLength !== 'number' || !Object.isFrozen(Object(request.encryptionContext)) || typeof backend?.randomBytes !== 'function') {
      const onDemand = onDemandLoaded() ?? (await loadOnDemand())
      onDemand.checkMaterialsRequest('DefaultMaterialsManager.getEncryptionMaterials', request, backend, false)
    }
    const { suite } = request
    assertEncryptAllowed(suite, request.commitmentPolicy)
    // spec: framework/default-cmm.md#get-encryption-materials (never overwrite the reserved key)
    if (hasOwn(request.encryptionContext, PUBLIC_KEY_CONTEXT_KEY)) {
      throw new InvalidEncryptionContextError(`The encryption context already has "${PUBLIC_KEY_CONTEXT_KEY}", which the library sets itself.`)
    }
    const requiredKeys = checkRequiredKeys(
      request.requiredEncryptionContextKeys,
      request.encryptionContext,
      'DefaultMaterialsManager',
      suite.edkWrapping === 'intermediate',
    )
    // The caller's context as it is when frozen (encrypt's always is) and nothing is added to it.
    let encryptionContext = request.encryptionContext
    let signingKey: unknown
    if (suite.signature !== undefined) {
      const pair = await backend.generateSigningKey(suite.signature.curve)
      signingKey = pair.privateKey
      encryptionContext = Object.freeze(Object.assign(emptyContext(), encryptionContext, { [PUBLIC_KEY_CONTEXT_KEY]: toBase64(pair.publicKey) }))
    } else if (!Object.isFrozen(encryptionContext)) {
      encryptionContext = Object.freeze(Object.assign(emptyContext(), encryptionContext))
    }
    const requiredEncryptionContextKeys = requiredKeys.length === 0 ? NO_KEYS : Object.freeze([...requiredKeys])
    const materials = await this.keyring.onEncrypt(
      { suite, encryptionContext, encryptedDataKeys: [], requiredEncryptionContextKeys },
      backend,
      request.signal,
    )
    // A keyring adds the data key and encrypted copies of it (spec: framework/keyring-interface.md#onencrypt); the
    // suite, the context, the signing key and the required keys stay the manager's, whatever object it returns.
    const complete = Object.assign({}, materials, { suite, encryptionContext, signingKey, requiredEncryptionContextKeys }) as CompleteEncryptionMaterials
    // Materials visibly wrong get the full check (loaded on demand, as for a custom manager), which names the
    // problem and zeroes the data key. The shape of each encrypted data key is checked as the header is written.
    const { plaintextDataKey, encryptedDataKeys } = complete
    if (
      !isBytes(plaintextDataKey) ||
      plaintextDataKey.length !== suite.keyLength ||
      isAllZero(plaintextDataKey) ||
      !Array.isArray(encryptedDataKeys) ||
      encryptedDataKeys.length === 0
    ) {
      const onDemand = onDemandLoaded() ?? (await loadOnDemand())
      onDemand.checkEncryptionMaterials(complete, suite, backend)
    }
    return complete
  }

  getDecryptionMaterials(request: DecryptionRequest, backend: CryptoBackend): Promise<CompleteDecryptionMaterials> {
    // The decrypt half is loaded on first use (once), so a browser application that only encrypts never
    // downloads it; later calls take no extra turn (and no async frame of their own).
    const onDemand = onDemandLoaded()
    if (onDemand !== undefined) return onDemand.defaultDecryptionMaterials(this.keyring, request, backend)
    return loadOnDemand().then((loaded) => loaded.defaultDecryptionMaterials(this.keyring, request, backend))
  }
}

export function asMaterialsManager(keyringOrCmm: unknown): MaterialsManager {
  const candidate = keyringOrCmm as MaterialsManager | null
  if (typeof candidate?.getEncryptionMaterials === 'function' && typeof candidate.getDecryptionMaterials === 'function') {
    return candidate
  }
  if (isKeyring(keyringOrCmm)) return new DefaultMaterialsManager(keyringOrCmm)
  throw new ConfigurationError('The first argument must be a keyring or a materials manager.')
}
