import { isPromise, type CryptoBackend, type MaybePromise } from './backend/types.js'
import { EMPTY, utf8 } from './format/bytes.js'
import type { AlgorithmSuite } from './suites.js'

const DERIVE_KEY_LABEL = utf8('DERIVEKEY')
const COMMIT_KEY_LABEL = utf8('COMMITKEY')

export interface DerivedKeys {
  /** The AES-GCM key for the header tag and the body. */
  readonly encryptionKey: Uint8Array
  /** The key commitment (v2 suites), empty otherwise. */
  readonly commitment: Uint8Array
}

const nonCommitting = ([encryptionKey]: Uint8Array[]): DerivedKeys => ({ encryptionKey: encryptionKey as Uint8Array, commitment: EMPTY })
const committing = ([encryptionKey, commitment]: Uint8Array[]): DerivedKeys => ({
  encryptionKey: encryptionKey as Uint8Array,
  commitment: commitment as Uint8Array,
})

/** Suite ID || `rest`. */
function info(suite: AlgorithmSuite, rest: Uint8Array): Uint8Array {
  const bytes = new Uint8Array(2 + rest.length)
  bytes[0] = suite.id >>> 8
  bytes[1] = suite.id & 0xff
  bytes.set(rest, 2)
  return bytes
}

/**
 * Derive the message's encryption key (and commitment) from the data key: synchronously on node:crypto,
 * as a promise on WebCrypto (callers await only a promise). With the identity KDF the encryption key is
 * the data key itself.
 * spec: framework/transitive-requirements.md#hkdf-encryption-key and #hkdf-commit-key
 */
export function deriveKeys(backend: CryptoBackend, suite: AlgorithmSuite, dataKey: Uint8Array, messageId: Uint8Array): MaybePromise<DerivedKeys> {
  if (suite.kdfHash === undefined) return { encryptionKey: dataKey, commitment: EMPTY }
  if (!suite.committing) {
    // info = suite ID || message ID; an empty salt is HKDF's "hash-length zeros".
    const keys = backend.hkdf(suite.kdfHash, dataKey, EMPTY, [{ info: info(suite, messageId), length: suite.keyLength }])
    return isPromise(keys) ? keys.then(nonCommitting) : nonCommitting(keys)
  }
  // Both keys share one extract step (same key and salt), as the spec recommends.
  const keys = backend.hkdf(suite.kdfHash, dataKey, messageId, [
    { info: info(suite, DERIVE_KEY_LABEL), length: suite.keyLength },
    { info: COMMIT_KEY_LABEL, length: suite.suiteDataLength },
  ])
  return isPromise(keys) ? keys.then(committing) : committing(keys)
}
