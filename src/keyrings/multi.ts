import type { CryptoBackend } from '../backend/types.js'
import { ConfigurationError, KeyringError, NoDecryptableKeyError, type KeyringFailure } from '../errors.js'
import type { DecryptionMaterials, EncryptedDataKey, EncryptionMaterials, Keyring } from '../types.js'
import { isKeyring } from './common.js'
import { keyringName } from './keyring-name.js'
import { optionsObject } from '../option-names.js'
import { stopIfAborted } from '../abort.js'

/** Options of `new MultiKeyring(...)`: a generator, other children, or both. */
export interface MultiKeyringOptions {
  /** Makes the data key on encrypt. Without one, materials must already carry a data key. */
  generator?: Keyring | undefined
  /** Each wraps the same data key too; any of them may decrypt. */
  children?: Keyring[] | undefined
}


/**
 * Combines keyrings: the generator makes the data key and every keyring wraps it, so any one of them can
 * decrypt. spec: framework/multi-keyring.md
 *
 * @example
 * ```ts
 * const keyring = new MultiKeyring({ generator: aesKeyring, children: [rsaEscrowKeyring] })
 * ```
 */
export class MultiKeyring implements Keyring {
  /** The keyring that makes the data key on encrypt; tried first on decrypt. */
  readonly generator: Keyring | undefined
  /** The keyrings that each wrap the data key too; tried in order on decrypt. */
  readonly children: readonly Keyring[]

  constructor(options: MultiKeyringOptions) {
    const { generator, children = [] } = optionsObject(options, 'MultiKeyring', 'generator, children')
    if (generator !== undefined && !isKeyring(generator)) throw new ConfigurationError('MultiKeyring generator must be a keyring.')
    if (!Array.isArray(children) || !children.every(isKeyring)) {
      throw new ConfigurationError('MultiKeyring children must be an array of keyrings.')
    }
    if (generator === undefined && children.length === 0) {
      throw new ConfigurationError('MultiKeyring needs a generator or at least one child.')
    }
    this.generator = generator
    this.children = Object.freeze([...children])
  }

  /** True when any keyring in it refuses signing suites (KmsRsaKeyring): `encrypt` then defaults to an unsigned suite. */
  get refusesSigningSuites(): boolean {
    const keyrings = this.generator === undefined ? this.children : [this.generator, ...this.children]
    return keyrings.some((keyring) => (keyring as { refusesSigningSuites?: unknown }).refusesSigningSuites === true)
  }

  async onEncrypt(materials: EncryptionMaterials, backend: CryptoBackend, signal?: AbortSignal): Promise<EncryptionMaterials> {
    let current = materials
    if (this.generator !== undefined) {
      current = await this.generator.onEncrypt(current, backend, signal)
      if (current.plaintextDataKey === undefined) throw new KeyringError('The MultiKeyring generator returned no data key.')
    } else if (current.plaintextDataKey === undefined) {
      throw new KeyringError('MultiKeyring has no generator and no data key was supplied: give it a generator.')
    }
    // The data key the generator made here must not outlive a failed encrypt (a child's KMS Region down, say).
    const made = materials.plaintextDataKey === undefined ? current.plaintextDataKey : undefined
    try {
      for (const child of this.children) current = await child.onEncrypt(current, backend, signal)
    } catch (error) {
      made?.fill(0)
      throw error
    }
    return current
  }

  async onDecrypt(
    materials: DecryptionMaterials,
    encryptedDataKeys: readonly EncryptedDataKey[],
    backend: CryptoBackend,
    signal?: AbortSignal,
  ): Promise<DecryptionMaterials> {
    if (materials.plaintextDataKey !== undefined) return materials
    const failures: KeyringFailure[] = []
    const keyrings = this.generator === undefined ? this.children : [this.generator, ...this.children]
    for (const keyring of keyrings) {
      try {
        const result = await keyring.onDecrypt(materials, encryptedDataKeys, backend, signal)
        if (result.plaintextDataKey !== undefined) return result
      } catch (error) {
        // Aborted: no other keyring is tried.
        stopIfAborted(signal)
        // One keyring failing is not fatal while another may still succeed.
        if (error instanceof NoDecryptableKeyError) failures.push(...error.failures)
        else failures.push({ keyring: keyringName(keyring), error })
      }
    }
    if (failures.length === 0) return materials
    throw new NoDecryptableKeyError(
      `No keyring in the MultiKeyring could decrypt a data key (${failures.length} failed).`,
      failures,
    )
  }

  /** Its keyrings, each as its own `toJSON` shows it: never a key. */
  toJSON(): object {
    return { type: 'MultiKeyring', generator: this.generator, children: this.children }
  }
}
