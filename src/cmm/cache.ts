// The cryptographic materials cache: entries of encryption or decryption materials with their creation
// and expiry times and usage counters, in a least-recently-used map. Every entry that leaves the cache, for
// whatever reason, has its plaintext data key zeroed.
// spec: framework/cryptographic-materials-cache.md, framework/local-cryptographic-materials-cache.md
import type { LRUCache } from 'lru-cache'
import { ignoreRejection } from '../ignore-rejection.js'
import { ConfigurationError } from '../errors.js'
import { loadOnce } from '../load-on-demand.js'
import { optionsObject } from '../option-names.js'
import { quoteValue } from '../quote.js'
import type { CompleteDecryptionMaterials, CompleteEncryptionMaterials } from '../types.js'

/** Zero every secret a cache entry holds: the data key and, for the DynamoDB item suites, the signing keys. */
export function zeroMaterials(materials: CompleteEncryptionMaterials | CompleteDecryptionMaterials): void {
  materials.plaintextDataKey.fill(0)
  if ('symmetricSigningKeys' in materials) for (const key of materials.symmetricSigningKeys ?? []) key.fill(0)
  if ('symmetricSigningKey' in materials) materials.symmetricSigningKey?.fill(0)
}

/** A cache entry. The cache owns `materials.plaintextDataKey`: callers only ever receive copies of it. */
export interface CacheEntry {
  /** Which side's materials it holds: encryption entries and decryption entries never mix. */
  readonly operation: 'encrypt' | 'decrypt'
  /** What the underlying manager returned; the caching manager hands out copies of its data key. */
  readonly materials: CompleteEncryptionMaterials | CompleteDecryptionMaterials
  /** Partition of the caching manager that stored it (for events). */
  readonly partition: string
  /** On the caching manager's clock, in milliseconds. */
  readonly createdAt: number
  /** The entry is TTL-expired from this instant on. */
  readonly expiresAt: number
  /** Usage metadata, updated only by the caching manager (spec: framework/caching-cmm.md#usage-stats). */
  messagesEncrypted: number
  /** Plaintext bytes encrypted with the entry's data key so far (usage metadata, as `messagesEncrypted`). */
  bytesEncrypted: number
  /** Set when the entry leaves the cache; its data key has then been zeroed. */
  evicted: boolean
}

/**
 * Whether `entry` may no longer be used at `now`: TTL-expired, or read before it was fetched (a clock set back,
 * such as `Date.now` after an NTP step, would otherwise lengthen its life by as much).
 */
export function isExpired(entry: CacheEntry, now: number): boolean {
  return !(now >= entry.createdAt && now < entry.expiresAt)
}

/** Why an entry left the cache. */
export type CacheEvictionReason = 'expired' | 'limit' | 'capacity' | 'replaced' | 'deleted'

/**
 * What a cache reports to its `onEvent` hook. `hit`: served without calling the underlying manager (also a
 * request that waited for another's fetch); `miss`: called it and cached the result; `bypass`: called it
 * without the cache (suite without key derivation, unknown or too large plaintext length).
 */
export type CacheEvent =
  | {
      /** What happened to the request (see above). */
      readonly type: 'hit' | 'miss' | 'bypass'
      /** The side of the request: `encrypt` or `decrypt` materials. */
      readonly operation: 'encrypt' | 'decrypt'
      /** The partition of the caching manager that asked. */
      readonly partition: string
    }
  | {
      /** An entry left the cache, its data key zeroed. */
      readonly type: 'evict'
      /** The side of the entry's materials. */
      readonly operation: 'encrypt' | 'decrypt'
      /** The partition of the caching manager that stored it. */
      readonly partition: string
      /** Why it left. */
      readonly reason: CacheEvictionReason
    }

/** Counters of a materials cache, from `cache.stats()`. */
export interface CacheStats {
  /** Requests served from the cache. */
  readonly hits: number
  /** Requests that called the underlying manager and cached its answer. */
  readonly misses: number
  /** Requests that called the underlying manager without the cache. */
  readonly bypasses: number
  /** Entries removed for any reason (each had its data key zeroed). */
  readonly evictions: number
  /** Entries held now. */
  readonly size: number
  /** Most entries it holds. */
  readonly capacity: number
}

/**
 * What a `CachingMaterialsManager` needs from a cache. `LocalMaterialsCache` implements it; several
 * caching managers may share one (their partitions keep their entries apart).
 */
export interface MaterialsCache {
  /**
   * Optional: a promise to await before the other methods are used, while the cache gets ready (a
   * `LocalMaterialsCache` loads `lru-cache` on first use); undefined once it is. Caching managers call it on
   * every request they cache.
   */
  ready?(): Promise<void> | undefined
  /** The live entry under `id`, or undefined. A TTL-expired entry is evicted instead of returned. */
  get(id: string, now: number): CacheEntry | undefined
  /** Store an entry, replacing (and zeroing) any entry under `id`. */
  put(id: string, entry: CacheEntry): void
  /** Remove `entry` if it is still the one under `id`. */
  evict(id: string, entry: CacheEntry, reason: CacheEvictionReason): void
  /** Count a hit, miss or bypass and pass it to the event hook. */
  record(event: CacheEvent): void
  /** Its counters now. */
  stats(): CacheStats
}

/** Options of `new LocalMaterialsCache(...)`. */
export interface LocalMaterialsCacheOptions {
  /** Most entries held; the least recently used is evicted beyond it. 0 keeps nothing. Up to 1,000,000. */
  capacity: number
  /** Called synchronously on every hit, miss, bypass and eviction (for metrics). Errors it throws, or rejections of a promise it returns, are ignored. */
  onEvent?: ((event: CacheEvent) => void) | undefined
}

type LruModule = typeof import('lru-cache')
let lruModule: LruModule | undefined

/** `lru-cache`, imported when the first cache is used: applications that never cache never load it. */
const loadLru = /* @__PURE__ */ loadOnce(
  () => import('lru-cache').then((module) => (lruModule = module)),
  (error) => new ConfigurationError('LocalMaterialsCache could not load its lru-cache dependency.', { cause: error }),
)

/** How many least-recently-used entries each `get` checks for TTL expiry (spec: #entry-pruning-tail-size). */
const PRUNING_TAIL_SIZE = 3
const MAX_CAPACITY = 1_000_000

/**
 * An in-memory LRU materials cache, built on `lru-cache`. Entries are evicted when TTL-expired (on access,
 * and among the least recently used on every lookup), when a caching manager finds them past a usage limit,
 * or when the cache is full; each evicted entry's plaintext data key is zeroed. `lru-cache` is loaded on first
 * use: a caching manager awaits `ready()` itself; code that calls `put` directly awaits it first.
 *
 * @example
 * ```ts
 * const cache = new LocalMaterialsCache({ capacity: 100, onEvent: (event) => metrics.count(`cache.${event.type}`) })
 * const cmm = new CachingMaterialsManager({ keyring, cache, maxAge: 60_000, maxMessagesEncrypted: 1000 })
 * cache.stats() // { hits, misses, bypasses, evictions, size, capacity }
 * ```
 */
export class LocalMaterialsCache implements MaterialsCache {
  /** Most entries it holds (the `capacity` option). */
  readonly capacity: number
  #entries: LRUCache<string, CacheEntry> | undefined
  readonly #onEvent: ((event: CacheEvent) => void) | undefined
  /** Why the next removal happens; lru-cache itself only knows "delete", "set" and "evict". */
  #pendingReason: CacheEvictionReason | undefined
  #hits = 0
  #misses = 0
  #bypasses = 0
  #evictions = 0

  constructor(options: LocalMaterialsCacheOptions) {
    const { capacity, onEvent } = optionsObject(options, 'LocalMaterialsCache', 'capacity, onEvent')
    if (typeof capacity !== 'number' || !Number.isInteger(capacity) || capacity < 0 || capacity > MAX_CAPACITY) {
      throw new ConfigurationError(`LocalMaterialsCache capacity must be an integer from 0 to ${MAX_CAPACITY}; got ${quoteValue(capacity)}.`)
    }
    if (onEvent !== undefined && typeof onEvent !== 'function') {
      throw new ConfigurationError('LocalMaterialsCache onEvent must be a function.')
    }
    this.capacity = capacity
    this.#onEvent = onEvent
    this.#storage()
  }

  /** Undefined once `lru-cache` is loaded (or the capacity is 0); until then, a promise of that. */
  ready(): Promise<void> | undefined {
    if (this.capacity === 0 || this.#storage() !== undefined) return undefined
    return loadLru().then(() => void this.#storage())
  }

  /** The entries, made on first use once `lru-cache` is loaded; undefined before that and at capacity 0. */
  #storage(): LRUCache<string, CacheEntry> | undefined {
    if (this.#entries === undefined && this.capacity > 0 && lruModule !== undefined) {
      this.#entries = new lruModule.LRUCache<string, CacheEntry>({
        max: this.capacity,
        dispose: (entry, _id, reason) => {
          const mapped = reason === 'evict' ? 'capacity' : reason === 'set' ? 'replaced' : (this.#pendingReason ?? 'deleted')
          this.#discard(entry, mapped)
        },
      })
    }
    return this.#entries
  }

  get(id: string, now: number): CacheEntry | undefined {
    const entries = this.#storage()
    if (entries === undefined) return undefined // nothing was ever stored
    this.#pruneTail(entries, now)
    const entry = entries.get(id)
    if (entry === undefined) return undefined
    if (isExpired(entry, now)) {
      this.#remove(entries, id, 'expired')
      return undefined
    }
    return entry
  }

  put(id: string, entry: CacheEntry): void {
    const entries = this.#storage()
    if (entries === undefined) {
      if (this.capacity > 0) {
        throw new ConfigurationError('LocalMaterialsCache: await cache.ready() before the first put (it loads lru-cache on first use).')
      }
      this.#discard(entry, 'capacity') // a zero-capacity cache keeps nothing
      return
    }
    entries.set(id, entry)
  }

  evict(id: string, entry: CacheEntry, reason: CacheEvictionReason): void {
    const entries = this.#entries
    if (entries !== undefined && entries.peek(id) === entry) this.#remove(entries, id, reason)
  }

  /**
   * Evict every expired entry (and any fetched after `now`). `now` is on the caching managers' clock (default:
   * `performance.now()`).
   */
  prune(now: number = performance.now()): void {
    if (typeof now !== 'number' || !Number.isFinite(now)) throw new ConfigurationError(`LocalMaterialsCache prune(now) takes a finite number of milliseconds; got ${quoteValue(now)}.`)
    const entries = this.#entries
    if (entries === undefined) return
    const expired = [...entries.entries()].filter(([, entry]) => isExpired(entry, now)).map(([id]) => id)
    for (const id of expired) this.#remove(entries, id, 'expired')
  }

  /** Evict every entry, zeroing its data key. */
  clear(): void {
    const entries = this.#entries
    if (entries === undefined) return
    this.#pendingReason = 'deleted'
    try {
      entries.clear()
    } finally {
      this.#pendingReason = undefined
    }
  }

  record(event: CacheEvent): void {
    if (event.type === 'hit') this.#hits++
    else if (event.type === 'miss') this.#misses++
    else if (event.type === 'bypass') this.#bypasses++
    this.#emit(event)
  }

  stats(): CacheStats {
    return {
      hits: this.#hits,
      misses: this.#misses,
      bypasses: this.#bypasses,
      evictions: this.#evictions,
      size: this.#entries?.size ?? 0,
      capacity: this.capacity,
    }
  }

  /** Only counts: never the cached materials. */
  toString(): string {
    const { size, capacity, hits, misses, evictions } = this.stats()
    return `LocalMaterialsCache(${size}/${capacity} entries, ${hits} hits, ${misses} misses, ${evictions} evictions)`
  }

  [Symbol.for('nodejs.util.inspect.custom')](): string {
    return this.toString()
  }

  /** spec: framework/local-cryptographic-materials-cache.md#pruning (the N least recently used entries) */
  #pruneTail(entries: LRUCache<string, CacheEntry>, now: number): void {
    let checked = 0
    let expired: string[] | undefined
    for (const id of entries.rkeys()) {
      if (checked++ === PRUNING_TAIL_SIZE) break
      const entry = entries.peek(id)
      if (entry !== undefined && isExpired(entry, now)) (expired ??= []).push(id)
    }
    if (expired !== undefined) for (const id of expired) this.#remove(entries, id, 'expired')
  }

  #remove(entries: LRUCache<string, CacheEntry>, id: string, reason: CacheEvictionReason): void {
    this.#pendingReason = reason
    try {
      entries.delete(id)
    } finally {
      this.#pendingReason = undefined
    }
  }

  #discard(entry: CacheEntry, reason: CacheEvictionReason): void {
    if (entry.evicted) return
    entry.evicted = true
    zeroMaterials(entry.materials)
    this.#evictions++
    this.#emit({ type: 'evict', operation: entry.operation, partition: entry.partition, reason })
  }

  #emit(event: CacheEvent): void {
    if (this.#onEvent === undefined) return
    try {
      // An async hook's rejection is ignored too.
      ignoreRejection(this.#onEvent(event))
    } catch {
      // A metrics hook must not break encryption.
    }
  }
}
