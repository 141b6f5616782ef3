// Fault injection rules: which requests to throttle, slow down, fail as a Region outage, or deny.
import { ConfigurationError } from '../errors.js'
import { optionsObject } from '../option-names.js'
import { quoteIdentifier, quoteValue } from '../quote.js'

/** Limits a fault to one operation (e.g. `'Decrypt'`) and/or one Region; an empty filter matches every call. */
export interface KmsCallFilter {
  /** A KMS operation name, e.g. `'GenerateDataKey'`. */
  operation?: string | undefined
  /** One of the emulator's Regions. */
  region?: string | undefined
}

/** Limits a denial to one operation and/or one caller, identified by the access key id it signs with. */
export interface KmsDenyFilter {
  /** A KMS operation name, e.g. `'Decrypt'`. */
  operation?: string | undefined
  /** The access key id of the caller to deny. */
  accessKeyId?: string | undefined
}

/** The fault injection controls of a running emulator. Rules apply to requests that arrive after they are set. */
export interface KmsFaultInjector {
  /** The next `count` matching calls fail with ThrottlingException (HTTP 400), which the SDK retries. */
  throttle(count: number, filter?: KmsCallFilter): void
  /**
   * Every matching call waits `ms` milliseconds before it is handled; delays of several matching rules add up.
   * `latency(0, filter)` removes the rule set with that same filter; `latency(0)` removes every latency rule.
   */
  latency(ms: number, filter?: KmsCallFilter): void
  /**
   * Requests signed for `region` fail with KMSInternalException (HTTP 500) until `regionDown(region, false)`.
   * The SDK treats a 500 as transient: it retries (3 attempts by default, tens of milliseconds apart), then throws
   * the KMSInternalException. A dropped connection would be retried the same way but surface as a bare socket
   * error, so the typed 500 is what the emulator sends.
   */
  regionDown(region: string, down?: boolean): void
  /** Requests that resolve to `keyArn` fail with AccessDeniedException, optionally only for one operation or caller. */
  deny(keyArn: string, filter?: KmsDenyFilter): void
  /** Remove every fault. */
  clear(): void
}

interface ThrottleRule {
  remaining: number
  readonly filter: KmsCallFilter
}

const filterKey = (filter: KmsCallFilter): string => JSON.stringify([filter.operation ?? null, filter.region ?? null])

function matches(filter: KmsCallFilter, operation: string, region: string): boolean {
  return (filter.operation === undefined || filter.operation === operation) && (filter.region === undefined || filter.region === region)
}

/**
 * A call or fault filter (its names already checked by `optionsObject`) with its values checked to be strings;
 * `what` names it in errors (`callCount filter`, say).
 */
export function stringFilter<Filter extends object>(what: string, filter: Filter): Filter {
  for (const [name, value] of Object.entries(filter)) {
    if (value !== undefined && typeof value !== 'string') throw new ConfigurationError(`${what}.${name} must be a string; got ${quoteValue(value)}.`)
  }
  return filter
}

/** The emulator's fault rules; the server asks it about each request. */
export class KmsFaults implements KmsFaultInjector {
  #throttles: ThrottleRule[] = []
  readonly #latencies = new Map<string, { readonly ms: number; readonly filter: KmsCallFilter }>()
  readonly #downRegions = new Set<string>()
  #denials: { readonly keyArn: string; readonly filter: KmsDenyFilter }[] = []
  readonly #regions: readonly string[]
  readonly #operations: readonly string[]

  /** `regions` and `operations`: what the emulator serves, so a rule naming anything else (a typo) is refused. */
  constructor(regions: readonly string[], operations: readonly string[]) {
    this.#regions = regions
    this.#operations = operations
  }

  /**
   * `filter` (its names checked by `optionsObject`) with its values checked to be strings, and its operation and
   * Region ones the emulator serves: a rule that could match no request would let a test pass without its fault.
   */
  #checkFilter<Filter extends KmsCallFilter | KmsDenyFilter>(method: string, filter: Filter): Filter {
    const { operation, region } = stringFilter(`faults.${method} filter`, filter) as KmsCallFilter
    if (operation !== undefined) this.#checkServed(`faults.${method} filter.operation`, operation, 'an operation', this.#operations)
    if (region !== undefined) this.#checkServed(`faults.${method} filter.region`, region, 'a Region', this.#regions)
    return filter
  }

  #checkServed(what: string, value: string, kind: string, served: readonly string[]): void {
    if (!served.includes(value)) {
      throw new ConfigurationError(`${what} ${quoteIdentifier(value)} is not ${kind} the emulator serves: it serves ${served.join(', ')}.`)
    }
  }

  throttle(count: number, filter: KmsCallFilter = {}): void {
    if (!Number.isSafeInteger(count) || count < 0) throw new ConfigurationError(`faults.throttle count must be a whole number >= 0; got ${count}.`)
    const rule = this.#checkFilter('throttle', optionsObject(filter, 'faults.throttle filter', 'operation, region'))
    if (count > 0) this.#throttles.push({ remaining: count, filter: { ...rule } })
  }

  latency(ms: number, filter?: KmsCallFilter): void {
    if (!Number.isFinite(ms) || ms < 0) throw new ConfigurationError(`faults.latency ms must be a number >= 0; got ${ms}.`)
    // No filter (undefined or null): the rule for every call, or with 0, every rule.
    const rule = filter == null ? undefined : this.#checkFilter('latency', optionsObject(filter, 'faults.latency filter', 'operation, region'))
    if (ms === 0 && rule === undefined) this.#latencies.clear()
    else if (ms === 0) this.#latencies.delete(filterKey(rule as KmsCallFilter))
    else this.#latencies.set(filterKey(rule ?? {}), { ms, filter: { ...rule } })
  }

  regionDown(region: string, down = true): void {
    if (typeof region !== 'string' || region === '') throw new ConfigurationError(`faults.regionDown needs a Region name; got ${quoteValue(region)}.`)
    this.#checkServed('faults.regionDown', region, 'a Region', this.#regions)
    if (down) this.#downRegions.add(region)
    else this.#downRegions.delete(region)
  }

  deny(keyArn: string, filter: KmsDenyFilter = {}): void {
    if (typeof keyArn !== 'string' || !keyArn.startsWith('arn:')) throw new ConfigurationError(`faults.deny needs a key ARN; got ${quoteValue(keyArn)}.`)
    const rule = this.#checkFilter('deny', optionsObject(filter, 'faults.deny filter', 'operation, accessKeyId'))
    this.#denials.push({ keyArn, filter: { ...rule } })
  }

  clear(): void {
    this.#throttles = []
    this.#latencies.clear()
    this.#downRegions.clear()
    this.#denials = []
  }

  /** Consumes one throttle from the first matching rule that has any left. */
  takeThrottle(operation: string, region: string): boolean {
    const rule = this.#throttles.find((candidate) => candidate.remaining > 0 && matches(candidate.filter, operation, region))
    if (rule === undefined) return false
    rule.remaining -= 1
    this.#throttles = this.#throttles.filter((candidate) => candidate.remaining > 0)
    return true
  }

  delayFor(operation: string, region: string): number {
    let total = 0
    for (const { ms, filter } of this.#latencies.values()) if (matches(filter, operation, region)) total += ms
    return total
  }

  isDown(region: string): boolean {
    return this.#downRegions.has(region)
  }

  isDenied(keyArn: string, operation: string, accessKeyId: string): boolean {
    return this.#denials.some(
      ({ keyArn: denied, filter }) =>
        denied === keyArn &&
        (filter.operation === undefined || filter.operation === operation) &&
        (filter.accessKeyId === undefined || filter.accessKeyId === accessKeyId),
    )
  }
}
