import { nounFor } from '../byte-count.js'
import type { CryptoBackend } from '../backend/types.js'
import { ConfigurationError, EncryptionContextMismatchError, InvalidEncryptionContextError } from '../errors.js'
import { RESERVED_PREFIX } from '../format/context.js'
import { isKeyring } from '../keyrings/common.js'
import type {
  CompleteDecryptionMaterials,
  CompleteEncryptionMaterials,
  DecryptionRequest,
  EncryptionRequest,
  Keyring,
  MaterialsManager,
} from '../types.js'
import { checkOneSource, optionsObject } from '../option-names.js'
import { quoteIdentifier, quoteValue } from '../quote.js'
import { quoteList } from '../quote-list.js'
import { DefaultMaterialsManager } from './default.js'
import { checkMaterialsRequest } from './request-check.js'

/** Options of `new RequiredEncryptionContextMaterialsManager(...)`. */
export interface RequiredEncryptionContextMaterialsManagerOptions {
  /** Context keys every encrypt must have and every decrypt must be given; their pairs are not stored in messages. */
  requiredKeys: readonly string[]
  /** Keyring to use through a `DefaultMaterialsManager`; or give `materialsManager`. */
  keyring?: Keyring | undefined
  /** Materials manager to wrap; or give `keyring`. */
  materialsManager?: MaterialsManager | undefined
}

const hasOwn = (object: object, key: string): boolean => Object.prototype.hasOwnProperty.call(object, key)

/** Set only while {@link RequiredEncryptionContextMaterialsManager.forReservedKeys} constructs one. */
let allowReservedKeys = false

/**
 * Requires some encryption context keys and keeps their pairs out of the message: encrypt fails without
 * them; their pairs are authenticated (by the header tag, and by keyrings that bind the context, such as
 * AWS KMS) but not stored; decrypt fails unless the caller supplies them again in `encryptionContext`.
 * Useful for values that must not travel with the ciphertext or that the reader must assert (a tenant ID).
 * spec: framework/required-encryption-context-cmm.md
 *
 * @example
 * ```ts
 * const cmm = new RequiredEncryptionContextMaterialsManager({ requiredKeys: ['tenant'], keyring })
 * const { ciphertext } = await encrypt(cmm, data, { encryptionContext: { tenant: 'acme', purpose: 'backup' } })
 * // The message stores only { purpose: 'backup' }; the tenant must be given to decrypt:
 * const { plaintext } = await decrypt(cmm, ciphertext, { encryptionContext: { tenant: 'acme' } })
 * ```
 */
export class RequiredEncryptionContextMaterialsManager implements MaterialsManager {
  /** The context keys every encrypt must have and every decrypt must be given again. */
  readonly requiredKeys: readonly string[]
  readonly #underlying: MaterialsManager

  constructor(options: RequiredEncryptionContextMaterialsManagerOptions) {
    const { requiredKeys, keyring, materialsManager } = optionsObject(
      options,
      'RequiredEncryptionContextMaterialsManager',
      'requiredKeys, keyring, materialsManager',
    )
    if (!Array.isArray(requiredKeys) || requiredKeys.length === 0) {
      const given = Array.isArray(requiredKeys) ? 'an empty array' : quoteValue(requiredKeys)
      throw new ConfigurationError(`RequiredEncryptionContextMaterialsManager requiredKeys must be a non-empty array of context keys; got ${given}.`)
    }
    for (const key of requiredKeys as unknown[]) {
      if (typeof key !== 'string' || key === '') {
        throw new ConfigurationError(`RequiredEncryptionContextMaterialsManager requiredKeys must be non-empty strings; got ${quoteValue(key)}.`)
      }
      if (key.startsWith(RESERVED_PREFIX) && !allowReservedKeys) {
        throw new ConfigurationError(`RequiredEncryptionContextMaterialsManager: ${quoteIdentifier(key)} uses the reserved prefix "${RESERVED_PREFIX}".`)
      }
    }
    const repeated = requiredKeys.find((key, index) => requiredKeys.indexOf(key) !== index)
    if (repeated !== undefined) {
      throw new ConfigurationError(`RequiredEncryptionContextMaterialsManager requiredKeys must not repeat a key; ${quoteIdentifier(repeated)} is there twice.`)
    }
    checkOneSource('RequiredEncryptionContextMaterialsManager', keyring, materialsManager)
    if (keyring !== undefined && !isKeyring(keyring)) {
      throw new ConfigurationError('RequiredEncryptionContextMaterialsManager keyring must be a keyring.')
    }
    const manager = materialsManager as MaterialsManager | undefined
    if (
      manager !== undefined &&
      (typeof manager?.getEncryptionMaterials !== 'function' || typeof manager.getDecryptionMaterials !== 'function')
    ) {
      throw new ConfigurationError('RequiredEncryptionContextMaterialsManager materialsManager must be a materials manager.')
    }
    this.requiredKeys = Object.freeze([...requiredKeys])
    // spec: framework/required-encryption-context-cmm.md#initialization
    this.#underlying = manager ?? new DefaultMaterialsManager(keyring as Keyring)
  }

  /**
   * For the library's own formats (the DynamoDB item encryptor), whose required keys are the reserved
   * `aws-crypto-` names it sets itself: the table name, key names and signed context attributes.
   * @internal
   */
  static forReservedKeys(materialsManager: MaterialsManager, requiredKeys: readonly string[]): RequiredEncryptionContextMaterialsManager {
    allowReservedKeys = true
    try {
      return new RequiredEncryptionContextMaterialsManager({ requiredKeys, materialsManager })
    } finally {
      allowReservedKeys = false
    }
  }

  // spec: framework/required-encryption-context-cmm.md#get-encryption-materials
  async getEncryptionMaterials(request: EncryptionRequest, backend: CryptoBackend): Promise<CompleteEncryptionMaterials> {
    checkMaterialsRequest('RequiredEncryptionContextMaterialsManager.getEncryptionMaterials', request, backend, false)
    const missing = this.requiredKeys.filter((key) => !hasOwn(request.encryptionContext, key))
    if (missing.length > 0) {
      throw new InvalidEncryptionContextError(
        `The encryption context has no ${quoteList(missing)}, which this materials manager requires; ` +
          `add the ${nounFor(missing.length, 'pair')} to encryptionContext.`,
      )
    }
    const requested = request.requiredEncryptionContextKeys ?? []
    const requiredEncryptionContextKeys = [...requested, ...this.requiredKeys.filter((key) => !requested.includes(key))]
    const materials = await this.#underlying.getEncryptionMaterials(Object.assign({}, request, { requiredEncryptionContextKeys }), backend)
    const kept = materials.requiredEncryptionContextKeys ?? []
    const dropped = this.requiredKeys.filter((key) => !kept.includes(key))
    if (dropped.length > 0) {
      materials.plaintextDataKey.fill(0)
      throw new ConfigurationError(
        `The underlying materials manager dropped required encryption context ${nounFor(dropped.length, 'key')} ${quoteList(dropped)}: ` +
          `the message would store ${dropped.length === 1 ? 'its value' : 'their values'}.`,
      )
    }
    return materials
  }

  // spec: framework/required-encryption-context-cmm.md#decrypt-materials
  async getDecryptionMaterials(request: DecryptionRequest, backend: CryptoBackend): Promise<CompleteDecryptionMaterials> {
    checkMaterialsRequest('RequiredEncryptionContextMaterialsManager.getDecryptionMaterials', request, backend, true)
    const reproduced = request.reproducedEncryptionContext ?? {}
    const missing = this.requiredKeys.filter((key) => !hasOwn(reproduced, key))
    if (missing.length > 0) {
      const them = missing.length === 1 ? 'it' : 'them'
      throw new EncryptionContextMismatchError(
        `Decrypting needs the ${nounFor(missing.length, 'value')} of ${quoteList(missing)} in encryptionContext: ` +
          `this materials manager requires ${them}, and messages it writes do not store ${them}.`,
      )
    }
    const materials = await this.#underlying.getDecryptionMaterials(request, backend)
    // The underlying manager must pass the required pairs on unchanged, or they would go unauthenticated.
    const changed = this.requiredKeys.filter((key) => materials.encryptionContext[key] !== reproduced[key])
    if (changed.length > 0) {
      materials.plaintextDataKey.fill(0)
      throw new ConfigurationError(
        `The underlying materials manager did not keep required encryption context ${nounFor(changed.length, 'key')} ${quoteList(changed)} ` +
          `with the ${nounFor(changed.length, 'value')} the caller gave.`,
      )
    }
    return materials
  }
}
