import { isPromise, type CryptoBackend } from '../backend/types.js'
import { ignoreRejection, isThenable } from '../ignore-rejection.js'
import { ConfigurationError, EncryptionContextMismatchError, UnsupportedOperationError } from '../errors.js'
import { isKeyring } from '../keyrings/common.js'
import { copyBytes, LONE_SURROGATE_PROBLEM, loneSurrogateAt } from '../format/bytes.js'
import { checkOneSource, optionsObject } from '../option-names.js'
import { quoteIdentifier, quoteValue } from '../quote.js'
import { assertEncryptAllowed, type AlgorithmSuite } from '../suites.js'
import { assertDecryptAllowed } from '../suites-decrypt.js'
import type {
  CompleteDecryptionMaterials,
  CompleteEncryptionMaterials,
  DecryptionRequest,
  EncryptedDataKey,
  EncryptionRequest,
  Keyring,
  MaterialsManager,
} from '../types.js'
import { LocalMaterialsCache, isExpired, zeroMaterials, type CacheEntry, type MaterialsCache } from './cache.js'
import { decryptionIdentifier, encryptionIdentifier, identifierPrefix } from './cache-id.js'
import { DefaultMaterialsManager, asMaterialsManager } from './default.js'
import { expirySweeper, type ExpirySweeper } from './expiry-sweep.js'
import { checkDecryptionMaterials, checkEncryptionMaterials } from './materials-check.js'
import { checkMaterialsRequest } from './request-check.js'

/** Options of `new CachingMaterialsManager(...)`: what it wraps (`keyring` or `materialsManager`), `maxAge` and the usage limits. */
export interface CachingMaterialsManagerOptions {
  /** The keyring to call on a miss (wrapped in a `DefaultMaterialsManager`); or give `materialsManager`. */
  keyring?: Keyring | undefined
  /** The materials manager to call on a miss; or give `keyring`. */
  materialsManager?: MaterialsManager | undefined
  /** Where entries live; default: a `LocalMaterialsCache` of 1000 entries of this manager's own. */
  cache?: MaterialsCache | undefined
  /** Milliseconds a data key may be used after it was requested (the entry's TTL). Required. */
  maxAge: number
  /** Messages one cached data key may encrypt, 1 to 2^32. Default 2^32. */
  maxMessagesEncrypted?: number | undefined
  /** Plaintext bytes one cached data key may encrypt, 1 to 2^53-1. Default 2^53-1. */
  maxBytesEncrypted?: number | undefined
  /** Managers with the same partition share entries of a shared cache. Default: a random ID (share nothing). */
  partition?: string | undefined
  /** The clock TTLs are measured on, in milliseconds. Default `performance.now` (monotonic). */
  clock?: (() => number) | undefined
}

const DEFAULT_CAPACITY = 1000
/** spec: framework/caching-cmm.md#limit-messages */
const MAX_MESSAGES = 2 ** 32

const hasOwn = (object: object, key: string): boolean => Object.prototype.hasOwnProperty.call(object, key)

/** A reading of a caller's clock, refused unless a finite number: NaN would compare as neither expired nor live. */
function clockReading(now: unknown): number {
  if (typeof now === 'number' && Number.isFinite(now)) return now
  if (isThenable(now)) {
    ignoreRejection(now)
    throw new ConfigurationError('CachingMaterialsManager clock returned a Promise: it must return a finite number of milliseconds, synchronously.')
  }
  throw new ConfigurationError(`CachingMaterialsManager clock must return a finite number of milliseconds; it returned ${quoteValue(now)}.`)
}

function limitOption(name: string, value: unknown, max: number, fallback: number): number {
  if (value === undefined) return fallback
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > max) {
    throw new ConfigurationError(`CachingMaterialsManager ${name} must be an integer from 1 to ${max}; got ${quoteValue(value)}.`)
  }
  return value
}

function isMaterialsCache(value: unknown): value is MaterialsCache {
  const methods = value as Record<string, unknown> | null
  return (
    ['get', 'put', 'evict', 'record', 'stats'].every((method) => typeof methods?.[method] === 'function') &&
    (methods?.ready === undefined || typeof methods.ready === 'function')
  )
}

/**
 * Checked when the manager is made; the ID itself is made at first use, since some platforms refuse random values
 * outside a request (a Cloudflare Worker's global scope, where a manager is made to outlive requests).
 */
function assertRandomPartitionPossible(): void {
  // Node has it unless started with --no-experimental-global-webcrypto; a manager given its own partition needs none.
  if (typeof globalThis.crypto?.getRandomValues !== 'function') {
    throw new UnsupportedOperationError('CachingMaterialsManager makes its default partition with crypto.getRandomValues, which this platform lacks: pass a partition.')
  }
}

function randomPartition(): string {
  const bytes = globalThis.crypto.getRandomValues(new Uint8Array(16))
  return Array.from(bytes, (byte) => byte.toString(16).padStart(2, '0')).join('')
}

// Copies with copyBytes: a keyring on node:crypto may hand over Buffers, whose slice() is a view of the same memory.
function copyKeys(keys: readonly EncryptedDataKey[]): EncryptedDataKey[] {
  return keys.map((key) => ({ providerId: key.providerId, providerInfo: copyBytes(key.providerInfo), ciphertext: copyBytes(key.ciphertext) }))
}

/** A caller's own copy: it zeroes the data key after use, which must not touch the cached one. */
function copyEncryption(materials: CompleteEncryptionMaterials): CompleteEncryptionMaterials {
  const copy = { ...materials, plaintextDataKey: copyBytes(materials.plaintextDataKey), encryptedDataKeys: copyKeys(materials.encryptedDataKeys) }
  if (materials.symmetricSigningKeys !== undefined) copy.symmetricSigningKeys = materials.symmetricSigningKeys.map(copyBytes)
  return copy
}

function copyDecryption(materials: CompleteDecryptionMaterials): CompleteDecryptionMaterials {
  const copy = { ...materials, plaintextDataKey: copyBytes(materials.plaintextDataKey) }
  if (materials.symmetricSigningKey !== undefined) copy.symmetricSigningKey = copyBytes(materials.symmetricSigningKey)
  return copy
}

/** Entries made for a request that required fewer keys must not serve one that requires more (they would store them). */
function coversRequiredKeys(materials: CompleteEncryptionMaterials, request: EncryptionRequest): boolean {
  const wanted = request.requiredEncryptionContextKeys
  if (wanted === undefined || wanted.length === 0) return true
  const held = materials.requiredEncryptionContextKeys ?? []
  return wanted.every((key) => held.includes(key))
}

/**
 * Whether cached decryption materials were made for exactly this caller's unstored pairs. The entry
 * identifier covers the stored context only, so without this check a caller could reuse the pairs another
 * caller reproduced (and so decrypt without knowing them), or be refused because of another caller's.
 */
function reproducesExactly(materials: CompleteDecryptionMaterials, request: DecryptionRequest): boolean {
  const reproduced = request.reproducedEncryptionContext ?? {}
  const unstored = Object.keys(reproduced).filter((key) => !hasOwn(request.encryptionContext, key))
  const held = materials.requiredEncryptionContextKeys ?? []
  if (held.length !== unstored.length) return false
  return unstored.every((key) => held.includes(key) && materials.encryptionContext[key] === reproduced[key])
}

/**
 * One sweeper per LocalMaterialsCache, shared by the managers on the default clock that put entries in it: a cache
 * shared by many managers (one per tenant, say) is still swept at most once a second.
 */
const sweepers = new WeakMap<LocalMaterialsCache, ExpirySweeper>()

function sweeperFor(cache: LocalMaterialsCache): ExpirySweeper {
  let sweeper = sweepers.get(cache)
  if (sweeper === undefined) {
    sweeper = sweeperOf(new WeakRef(cache))
    sweepers.set(cache, sweeper)
  }
  return sweeper
}

/**
 * The timer holds the cache weakly: a cache no one uses any more (a manager made per request, say) is collected
 * as before instead of living on until its entries expire. Made apart from `sweeperFor`, whose closures would
 * share its `cache`.
 */
function sweeperOf(cache: WeakRef<LocalMaterialsCache>): ExpirySweeper {
  return expirySweeper(
    (now) => cache.deref()?.prune(now),
    () => cache.deref()?.stats().size ?? 0,
    () => performance.now(),
  )
}

function cacheable(suite: AlgorithmSuite): boolean {
  // spec: framework/caching-cmm.md#get-encryption-materials: suites with the identity KDF are never cached
  // (the data key itself would encrypt every message).
  return suite.kdfHash !== undefined
}

/**
 * Reuses data keys across messages to cut calls to the keyring (AWS KMS, typically), within limits: each
 * cached data key expires `maxAge` ms after it was requested and encrypts at most `maxMessagesEncrypted`
 * messages and `maxBytesEncrypted` plaintext bytes. Concurrent requests for the same entry make one call
 * to the underlying manager; a failed call is not cached. Decryption materials are cached per algorithm
 * suite, encrypted data keys and stored context, for `maxAge`. Suites without key derivation, and encrypts
 * whose plaintext length is unknown (a stream without `plaintextLength` or `maxPlaintextLength`), bypass
 * the cache. For signing suites the cached materials include the ECDSA signing key, which is then reused by
 * every message of that entry. spec: framework/caching-cmm.md
 *
 * @example
 * ```ts
 * const cache = new LocalMaterialsCache({ capacity: 100 })
 * const cmm = new CachingMaterialsManager({ keyring: kmsKeyring, cache, maxAge: 5 * 60_000, maxMessagesEncrypted: 1000 })
 * await encrypt(cmm, 'hello', { encryptionContext: { tenant: 'acme' } })
 * ```
 */
export class CachingMaterialsManager implements MaterialsManager {
  /** Where its entries live (the `cache` option, or a `LocalMaterialsCache` of its own). */
  readonly cache: MaterialsCache
  /** Milliseconds a data key may be used after it was requested. */
  readonly maxAge: number
  /** Messages one cached data key may encrypt. */
  readonly maxMessagesEncrypted: number
  /** Plaintext bytes one cached data key may encrypt. */
  readonly maxBytesEncrypted: number
  readonly #underlying: MaterialsManager
  readonly #clock: () => number
  /** On the default clock, with a LocalMaterialsCache: evicts the cache's entries once expired. */
  readonly #sweeper: ExpirySweeper | undefined
  #partition: string | undefined
  #prefixes: { readonly encrypt: Uint8Array; readonly decrypt: Uint8Array } | undefined
  /** Fetches in progress, by entry identifier: concurrent misses wait for the same one (single flight). */
  readonly #inflight = new Map<string, Promise<CacheEntry>>()
  /** Fetches that failed because the call that began them was aborted: the calls waiting on them fetch anew. */
  readonly #abandoned = new WeakSet<Promise<CacheEntry>>()

  constructor(options: CachingMaterialsManagerOptions) {
    const { keyring, materialsManager, cache, maxAge, maxMessagesEncrypted, maxBytesEncrypted, partition, clock } =
      optionsObject(
        options,
        'CachingMaterialsManager',
        'keyring, materialsManager, cache, maxAge, maxMessagesEncrypted, maxBytesEncrypted, partition, clock',
      )
    checkOneSource('CachingMaterialsManager', keyring, materialsManager)
    if (keyring !== undefined && !isKeyring(keyring)) throw new ConfigurationError('CachingMaterialsManager keyring must be a keyring.')
    if (materialsManager !== undefined && (isKeyring(materialsManager) || !hasMaterialsMethods(materialsManager))) {
      throw new ConfigurationError('CachingMaterialsManager materialsManager must be a materials manager.')
    }
    if (typeof maxAge !== 'number' || !Number.isFinite(maxAge) || maxAge <= 0) {
      throw new ConfigurationError(`CachingMaterialsManager maxAge must be a number of milliseconds above 0; got ${quoteValue(maxAge)}.`)
    }
    if (cache !== undefined && !isMaterialsCache(cache)) {
      throw new ConfigurationError('CachingMaterialsManager cache must be a materials cache such as a LocalMaterialsCache.')
    }
    if (partition !== undefined && (typeof partition !== 'string' || partition === '')) {
      throw new ConfigurationError(`CachingMaterialsManager partition must be a non-empty string; got ${quoteValue(partition)}.`)
    }
    // Stored as UTF-8 in every cache identifier: two names UTF-8 cannot tell apart would share entries.
    if (partition !== undefined && loneSurrogateAt(partition) >= 0) {
      throw new ConfigurationError(`CachingMaterialsManager partition ${quoteIdentifier(partition)} ${LONE_SURROGATE_PROBLEM}.`)
    }
    if (clock !== undefined && typeof clock !== 'function') throw new ConfigurationError('CachingMaterialsManager clock must be a function.')
    this.#underlying = keyring !== undefined ? new DefaultMaterialsManager(keyring) : asMaterialsManager(materialsManager)
    this.cache = cache ?? new LocalMaterialsCache({ capacity: DEFAULT_CAPACITY })
    this.maxAge = maxAge
    this.maxMessagesEncrypted = limitOption('maxMessagesEncrypted', maxMessagesEncrypted, MAX_MESSAGES, MAX_MESSAGES)
    this.maxBytesEncrypted = limitOption('maxBytesEncrypted', maxBytesEncrypted, Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER)
    // spec: framework/caching-cmm.md#partition-id (unique per manager unless set; never changed)
    if (partition === undefined) assertRandomPartitionPossible()
    this.#partition = partition
    this.#clock = clock === undefined ? () => performance.now() : () => clockReading(clock())
    // A clock of the caller's own (a test's) moves when they say: a timer could not tell when its entries expire.
    this.#sweeper = clock === undefined && this.cache instanceof LocalMaterialsCache && this.cache.capacity > 0 ? sweeperFor(this.cache) : undefined
  }

  /** Managers with the same partition share a cache's entries. Without one given, a random ID made at first use. */
  get partition(): string {
    return (this.#partition ??= randomPartition())
  }

  get #prefix(): { readonly encrypt: Uint8Array; readonly decrypt: Uint8Array } {
    return (this.#prefixes ??= { encrypt: identifierPrefix(this.partition, 'encrypt'), decrypt: identifierPrefix(this.partition, 'decrypt') })
  }

  async getEncryptionMaterials(request: EncryptionRequest, backend: CryptoBackend): Promise<CompleteEncryptionMaterials> {
    checkMaterialsRequest('CachingMaterialsManager.getEncryptionMaterials', request, backend, false)
    const { suite } = request
    assertEncryptAllowed(suite, request.commitmentPolicy)
    // Bytes are counted before encrypting, so the length must be known (or bounded by the caller).
    const bytes = request.plaintextLength ?? request.maxPlaintextLength
    if (!cacheable(suite) || bytes === undefined || bytes > this.maxBytesEncrypted) {
      this.#record('bypass', 'encrypt')
      return this.#underlying.getEncryptionMaterials(request, backend)
    }
    const ready = this.cache.ready?.() // the cache's storage, loaded on first use
    if (ready !== undefined) await ready
    const pending = encryptionIdentifier(backend, this.#prefix.encrypt, suite.id, request.encryptionContext)
    // Nothing is awaited between the lookup below and registering a fetch, which keeps single flight exact.
    const id = isPromise(pending) ? await pending : pending
    const usable = (entry: CacheEntry) =>
      entry.operation === 'encrypt' && coversRequiredKeys(entry.materials as CompleteEncryptionMaterials, request)
    for (;;) {
      const cached = this.cache.get(id, this.#clock())
      const fromCache = cached !== undefined && usable(cached) ? this.#take(id, cached, bytes) : undefined
      if (fromCache !== undefined) return fromCache
      const inflight = this.#inflight.get(id)
      if (inflight === undefined) break
      // Another request is fetching this entry: share its result, counting this message against it.
      const shared = await this.#share(inflight, request)
      if (shared === undefined) continue
      const fromShared = usable(shared) ? this.#take(id, shared, bytes) : undefined
      if (fromShared !== undefined) return fromShared
      // Used up (or made for another set of required keys) meanwhile: look again.
    }
    this.#record('miss', 'encrypt')
    return this.#fetch(
      id,
      'encrypt',
      bytes,
      request.signal,
      () => this.#underlying.getEncryptionMaterials(request, backend),
      (fresh) => checkEncryptionMaterials(fresh, suite, backend),
      (fresh) => coversRequiredKeys(fresh, request),
      copyEncryption,
    )
  }

  async getDecryptionMaterials(request: DecryptionRequest, backend: CryptoBackend): Promise<CompleteDecryptionMaterials> {
    checkMaterialsRequest('CachingMaterialsManager.getDecryptionMaterials', request, backend, true)
    const { suite } = request
    assertDecryptAllowed(suite, request.commitmentPolicy)
    // spec: framework/cmm-interface.md#decrypt-materials (a stored key the caller reproduces keeps its value)
    for (const [key, value] of Object.entries(request.reproducedEncryptionContext ?? {})) {
      if (hasOwn(request.encryptionContext, key) && request.encryptionContext[key] !== value) {
        throw new EncryptionContextMismatchError(`The message's encryption context has a different value for ${quoteIdentifier(key)} than the caller requires.`)
      }
    }
    if (!cacheable(suite)) {
      this.#record('bypass', 'decrypt')
      return this.#underlying.getDecryptionMaterials(request, backend)
    }
    const ready = this.cache.ready?.()
    if (ready !== undefined) await ready
    const pending = decryptionIdentifier(backend, this.#prefix.decrypt, suite.id, request.encryptedDataKeys, request.encryptionContext)
    const id = isPromise(pending) ? await pending : pending
    const usable = (entry: CacheEntry) =>
      entry.operation === 'decrypt' &&
      !entry.evicted &&
      !isExpired(entry, this.#clock()) &&
      reproducesExactly(entry.materials as CompleteDecryptionMaterials, request)
    for (;;) {
      const cached = this.cache.get(id, this.#clock())
      if (cached !== undefined && usable(cached)) return this.#hit(cached, 'decrypt', copyDecryption)
      const inflight = this.#inflight.get(id)
      if (inflight === undefined) break
      const shared = await this.#share(inflight, request)
      if (shared !== undefined && usable(shared)) return this.#hit(shared, 'decrypt', copyDecryption)
    }
    this.#record('miss', 'decrypt')
    return this.#fetch(
      id,
      'decrypt',
      0,
      request.signal,
      () => this.#underlying.getDecryptionMaterials(request, backend),
      (fresh) => checkDecryptionMaterials(fresh, suite, backend),
      (fresh) => reproducesExactly(fresh, request),
      copyDecryption,
    )
  }

  /**
   * Call the underlying manager once for everyone waiting on `id`. The entry starts with this request's
   * message counted; its age counts from before the call. It is stored (or zeroed, when it must not be
   * shared) before any waiter resumes, and the caller's copy is taken before that: a zero-capacity cache
   * zeroes an entry at once. A failure, and materials `check` refuses, reach every waiter and are not cached;
   * a failure after this request's `signal` aborted sends the waiters to fetch anew (see `#share`).
   */
  async #fetch<M extends CompleteEncryptionMaterials | CompleteDecryptionMaterials>(
    id: string,
    operation: 'encrypt' | 'decrypt',
    bytes: number,
    signal: AbortSignal | undefined,
    call: () => Promise<M>,
    check: (materials: M) => void,
    shareable: (materials: M) => boolean,
    copy: (materials: M) => M,
  ): Promise<M> {
    const requestedAt = this.#clock()
    const fetching = call().then((materials): CacheEntry => {
      check(materials)
      return {
        operation,
        materials,
        partition: this.partition,
        createdAt: requestedAt,
        expiresAt: requestedAt + this.maxAge,
        messagesEncrypted: operation === 'encrypt' ? 1 : 0,
        bytesEncrypted: bytes,
        evicted: false,
      }
    })
    this.#inflight.set(id, fetching)
    try {
      // This continuation was registered before any waiter's, so it runs first.
      const entry = await fetching
      const materials = entry.materials as M
      const mine = copy(materials)
      const atLimit =
        operation === 'encrypt' && (entry.messagesEncrypted >= this.maxMessagesEncrypted || entry.bytesEncrypted >= this.maxBytesEncrypted)
      if (shareable(materials) && !atLimit && !isExpired(entry, this.#clock())) {
        this.cache.put(id, entry)
        this.#sweeper?.entryPut(entry.expiresAt)
      } else {
        entry.evicted = true
        zeroMaterials(materials)
      }
      return mine
    } catch (error) {
      // This continuation runs before any waiter's, so they see the mark.
      if (signal?.aborted) this.#abandoned.add(fetching)
      throw error
    } finally {
      if (this.#inflight.get(id) === fetching) this.#inflight.delete(id)
    }
  }

  /**
   * The entry another request is fetching, or undefined when that request was aborted and this one should fetch
   * for itself: its abort cancelled the fetch (a KMS call), which must not fail the calls that shared it.
   */
  async #share(inflight: Promise<CacheEntry>, request: EncryptionRequest | DecryptionRequest): Promise<CacheEntry | undefined> {
    try {
      return await inflight
    } catch (error) {
      if (this.#abandoned.has(inflight) && !request.signal?.aborted) return undefined
      throw error
    }
  }

  /**
   * Count one message of `bytes` against an encryption entry and hand out a copy of its materials, all
   * synchronously, so concurrent encrypts can never take an entry past a limit. An entry that is expired or
   * cannot take the message is evicted (undefined is returned), and so is one this message brings to a
   * limit: nothing more may use its key.
   */
  #take(id: string, entry: CacheEntry, bytes: number): CompleteEncryptionMaterials | undefined {
    if (entry.evicted) return undefined
    if (isExpired(entry, this.#clock())) {
      this.cache.evict(id, entry, 'expired')
      return undefined
    }
    if (entry.messagesEncrypted + 1 > this.maxMessagesEncrypted || entry.bytesEncrypted + bytes > this.maxBytesEncrypted) {
      this.cache.evict(id, entry, 'limit')
      return undefined
    }
    entry.messagesEncrypted += 1
    entry.bytesEncrypted += bytes
    const mine = this.#hit(entry, 'encrypt', copyEncryption)
    if (entry.messagesEncrypted === this.maxMessagesEncrypted || entry.bytesEncrypted === this.maxBytesEncrypted) {
      this.cache.evict(id, entry, 'limit')
    }
    return mine
  }

  #hit<M>(entry: CacheEntry, operation: 'encrypt' | 'decrypt', copy: (materials: M) => M): M {
    const mine = copy(entry.materials as M)
    this.#record('hit', operation)
    return mine
  }

  #record(type: 'hit' | 'miss' | 'bypass', operation: 'encrypt' | 'decrypt'): void {
    this.cache.record({ type, operation, partition: this.partition })
  }

  /** Settings only: never cached materials. */
  toString(): string {
    return `CachingMaterialsManager(partition ${this.#partition ?? 'random, made at first use'}, maxAge ${this.maxAge} ms, maxMessagesEncrypted ${this.maxMessagesEncrypted}, maxBytesEncrypted ${this.maxBytesEncrypted})`
  }

  [Symbol.for('nodejs.util.inspect.custom')](): string {
    return this.toString()
  }
}

function hasMaterialsMethods(value: unknown): boolean {
  const candidate = value as MaterialsManager | null
  return typeof candidate?.getEncryptionMaterials === 'function' && typeof candidate.getDecryptionMaterials === 'function'
}
