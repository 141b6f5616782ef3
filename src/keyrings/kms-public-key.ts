import { abortable, abortSignalOption } from '../abort.js'
import { rsaSpkiModulusBits, toPem } from '../backend/der.js'
import { ConfigurationError, KeyringError } from '../errors.js'
import { isKmsArn, parseKmsArn } from './kms-arn.js'
import { optionsObject } from '../option-names.js'
import { quoteIdentifier, quoteValue } from '../quote.js'
import { sharedDefaultKmsClientSupplier, type KmsClientSupplier } from './kms-client.js'
import { sendGetPublicKey } from './kms-commands.js'
import { clientFor, configuredRegion } from './kms-common.js'
import { namedErrorMessage, sentence } from '../error-text.js'
import { validateGrantTokens } from './kms-grant-tokens.js'
import type { KmsRsaEncryptionAlgorithm } from './kms-rsa.js'
import type { Bytes } from '../types.js'
import { isBytes } from '../is-bytes.js'
import { copyBytes } from '../format/bytes.js'

/** The public half of a KMS RSA key, ready to hand to a client that encrypts with `KmsRsaKeyring`. */
export interface KmsPublicKey {
  /** The key ARN KMS answered with (an alias you asked for resolves to its key). Use it as `KmsRsaKeyring` `keyId`. */
  readonly keyId: string
  /** DER SPKI, as KMS returns it. */
  readonly publicKey: Bytes
  /** The same key as a `-----BEGIN PUBLIC KEY-----` PEM string. */
  readonly pem: string
  /** `RSA_2048`, `RSA_3072` or `RSA_4096`. */
  readonly keySpec: string
  /** The key's RSAES algorithms that `KmsRsaKeyring` supports, in KMS's order. */
  readonly encryptionAlgorithms: readonly KmsRsaEncryptionAlgorithm[]
}

/** Options of `createKmsPublicKeyCache(...)`. */
export interface KmsPublicKeyCacheOptions {
  /** Client per Region (called with the Region of each ARN). Default: one `KMSClient` per Region, made on first use. */
  clientSupplier?: KmsClientSupplier | undefined
  /** How long an answer is reused, in milliseconds. Default 1 hour. */
  maxAge?: number | undefined
  /** Most keys held; beyond it, the key asked for least recently goes first. Default 100. */
  maxEntries?: number | undefined
  /** Grant tokens sent with each KMS call, for keys a grant allows (before the grant is consistent, say). */
  grantTokens?: readonly string[] | undefined
}

/** What `createKmsPublicKeyCache` returns: public keys fetched from KMS once and kept. */
export interface KmsPublicKeyCache {
  /**
   * The public key of a KMS RSA key (key or alias ARN; an alias name or key id is looked up in the AWS SDK's default
   * Region), fetched with GetPublicKey at most once per `maxAge`. Aborting
   * `signal` ends this call at once (`ABORTED`); the GetPublicKey request, which other calls may share, runs on, and
   * its answer is kept for the next call.
   */
  get(keyArn: string, options?: { signal?: AbortSignal | undefined }): Promise<KmsPublicKey>
  /** Forget one key, or every key. */
  clear(keyArn?: string): void
}

const SUPPORTED_ALGORITHMS: readonly KmsRsaEncryptionAlgorithm[] = ['RSAES_OAEP_SHA_256', 'RSAES_OAEP_SHA_1']
const DEFAULT_MAX_AGE = 60 * 60 * 1000
const DEFAULT_MAX_ENTRIES = 100

/**
 * Fetches and caches the public keys of KMS RSA keys, for a service that hands them to clients which then
 * encrypt offline (in a browser, say) with `KmsRsaKeyring`. KMS asymmetric key material never rotates, so
 * the age limit only bounds how long a disabled or deleted key keeps being handed out. Concurrent requests
 * for one key share one GetPublicKey call; a failed call is not cached. Every answer is checked: an RSA
 * `ENCRYPT_DECRYPT` key of at least 2048 bits with an OAEP algorithm this library supports.
 *
 * @example
 * ```ts
 * const publicKeys = createKmsPublicKeyCache()
 * // in a request handler:
 * const { keyId, pem } = await publicKeys.get('arn:aws:kms:us-east-1:111122223333:alias/browser-uploads')
 * response.end(JSON.stringify({ keyId, publicKey: pem, encryptionAlgorithm: 'RSAES_OAEP_SHA_256' }))
 * ```
 */
export function createKmsPublicKeyCache(options: KmsPublicKeyCacheOptions = {}): KmsPublicKeyCache {
  const { clientSupplier, maxAge = DEFAULT_MAX_AGE, maxEntries = DEFAULT_MAX_ENTRIES, grantTokens } = optionsObject(
    options,
    'createKmsPublicKeyCache',
    'clientSupplier, maxAge, maxEntries, grantTokens',
  )
  if (clientSupplier !== undefined && typeof clientSupplier !== 'function') {
    throw new ConfigurationError('createKmsPublicKeyCache clientSupplier must be a function from a Region name to a KMS client.')
  }
  if (typeof maxAge !== 'number' || !(maxAge >= 0) || !Number.isFinite(maxAge)) {
    throw new ConfigurationError(`createKmsPublicKeyCache maxAge must be a non-negative number of milliseconds; got ${quoteValue(maxAge)}.`)
  }
  if (!Number.isSafeInteger(maxEntries) || maxEntries < 1) {
    throw new ConfigurationError(`createKmsPublicKeyCache maxEntries must be a positive integer; got ${quoteValue(maxEntries)}.`)
  }
  const tokens = validateGrantTokens('createKmsPublicKeyCache', grantTokens)
  const entries = new Map<string, { readonly answer: Promise<KmsPublicKey>; readonly expires: number }>()

  const fetchKey = async (keyArn: string, region: string): Promise<KmsPublicKey> => {
    const client = clientFor('createKmsPublicKeyCache', clientSupplier ?? sharedDefaultKmsClientSupplier(), region, keyArn)
    let response: unknown
    try {
      response = await sendGetPublicKey(client, { KeyId: keyArn, GrantTokens: [...tokens] })
    } catch (error) {
      if (error instanceof ConfigurationError) throw error
      throw new KeyringError(`KMS GetPublicKey of ${keyArn} failed: ${sentence(namedErrorMessage(error))}`, { cause: error })
    }
    return checkedPublicKey(keyArn, response)
  }

  const lookUp = (keyArn: string): Promise<KmsPublicKey> => {
    let region: string
    try {
      region = configuredRegion('KmsPublicKeyCache.get', keyArn, 'key')
    } catch (error) {
      return Promise.reject(error)
    }
    // Monotonic: a wall clock set back (an NTP step) would keep a disabled key in use for as long again.
    const now = performance.now()
    const cached = entries.get(keyArn)
    if (cached !== undefined && cached.expires > now) {
      // Asked for again: it moves to the end, so that keys asked for once (a scan) push out other such keys first.
      entries.delete(keyArn)
      entries.set(keyArn, cached)
      return cached.answer.then(ownCopy)
    }
    const answer = fetchKey(keyArn, region)
    entries.delete(keyArn)
    entries.set(keyArn, { answer, expires: now + maxAge })
    while (entries.size > maxEntries) entries.delete(entries.keys().next().value as string)
    answer.catch(() => {
      if (entries.get(keyArn)?.answer === answer) entries.delete(keyArn)
    })
    return answer.then(ownCopy)
  }

  return {
    get(keyArn, getOptions) {
      let signal: AbortSignal | undefined
      try {
        signal = abortSignalOption(optionsObject(getOptions, 'KmsPublicKeyCache.get', 'signal').signal)
      } catch (error) {
        return Promise.reject(error)
      }
      return signal === undefined ? lookUp(keyArn) : abortable(signal, 'KmsPublicKeyCache.get', () => lookUp(keyArn))
    },
    clear(keyArn) {
      // Nothing (undefined or null) clears every key.
      if (keyArn === undefined || keyArn === null) entries.clear()
      else if (typeof keyArn === 'string') entries.delete(keyArn)
      else throw new ConfigurationError(`clear() takes a key or alias ARN, or nothing; got ${quoteValue(keyArn)}.`)
    },
  }
}

/** Each caller gets its own bytes: changing them must not change what the next caller is handed. */
function ownCopy(key: KmsPublicKey): KmsPublicKey {
  return Object.freeze({ ...key, publicKey: copyBytes(key.publicKey) })
}

function checkedPublicKey(requested: string, response: unknown): KmsPublicKey {
  const { KeyId, PublicKey, KeySpec, KeyUsage, EncryptionAlgorithms } = (response ?? {}) as Record<string, unknown>
  const refuse = (problem: string) => new KeyringError(`KMS GetPublicKey of ${requested} ${problem}.`)
  if (typeof KeyId !== 'string' || !isKmsArn(KeyId) || parseKmsArn(KeyId).resourceType !== 'key') {
    throw refuse(`answered with KeyId ${quoteIdentifier(KeyId)}, which is not a key ARN`)
  }
  // Asked for a key (by ARN or key id), the answer must be for that key; asked for an alias, for the key it names.
  const otherKey = requested.startsWith('arn:')
    ? parseKmsArn(requested).resourceType === 'key' && KeyId !== requested
    : !requested.startsWith('alias/') && parseKmsArn(KeyId).resourceId !== requested
  if (otherKey) throw refuse(`answered for another key, ${KeyId}`)
  if (KeyUsage !== 'ENCRYPT_DECRYPT') throw refuse(`says the key's usage is ${quoteIdentifier(KeyUsage)}; encrypting needs ENCRYPT_DECRYPT`)
  if (typeof KeySpec !== 'string' || !KeySpec.startsWith('RSA_')) throw refuse(`says the key spec is ${quoteIdentifier(KeySpec)}, not an RSA key`)
  const algorithms = Array.isArray(EncryptionAlgorithms)
    ? SUPPORTED_ALGORITHMS.filter((algorithm) => (EncryptionAlgorithms as unknown[]).includes(algorithm))
    : []
  if (algorithms.length === 0) throw refuse('lists no RSAES_OAEP_SHA_256 or RSAES_OAEP_SHA_1 encryption algorithm')
  if (!isBytes(PublicKey)) throw refuse('returned no public key')
  let bits: number
  try {
    bits = rsaSpkiModulusBits(PublicKey)
  } catch (error) {
    throw refuse(`returned a public key that is not RSA SPKI: ${(error as Error).message}`)
  }
  if (bits < 2048) throw refuse(`returned a ${bits}-bit key; KmsRsaKeyring needs at least 2048 bits`)
  // A copy, not slice(): a client of one's own may answer with a Node Buffer, whose slice() is a view.
  const publicKey = copyBytes(PublicKey)
  return Object.freeze({
    keyId: KeyId,
    publicKey,
    pem: toPem(publicKey, 'PUBLIC KEY'),
    keySpec: KeySpec,
    encryptionAlgorithms: Object.freeze(algorithms),
  })
}
