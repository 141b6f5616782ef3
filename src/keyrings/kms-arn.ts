import { ConfigurationError } from '../errors.js'
import { quoteIdentifier, quoteValue } from '../quote.js'

/** The parts of an AWS KMS ARN (spec: framework/aws-kms/aws-kms-key-arn.md#a-valid-aws-kms-arn). */
export interface KmsArn {
  /** e.g. `aws`, `aws-cn`, `aws-us-gov`. */
  readonly partition: string
  /** Always `kms`. */
  readonly service: 'kms'
  /** e.g. `us-east-1`. */
  readonly region: string
  /** The key's 12-digit AWS account ID. */
  readonly accountId: string
  /** `key` for a key ARN, `alias` for an alias ARN. */
  readonly resourceType: 'key' | 'alias'
  /** Everything after the first `/` of the resource section: a key id (`mrk-…` for multi-Region keys) or an alias name. */
  readonly resourceId: string
}

/** The reason `text` is not a valid KMS ARN, or undefined when it is one. */
function arnProblem(text: string): string | undefined {
  // spec: framework/aws-kms/aws-kms-key-arn.md#a-valid-aws-kms-arn
  const parts = text.split(':')
  if (parts.length !== 6) return `it has ${parts.length - 1} ":" separators; a KMS ARN has 5 (arn:partition:kms:region:account:key/id)`
  const [prefix, partition, service, region, accountId, resource] = parts as [string, string, string, string, string, string]
  if (prefix !== 'arn') return 'it does not start with "arn"'
  if (partition === '') return 'its partition is empty'
  if (service !== 'kms') return `its service is ${quoteIdentifier(service)}, not "kms"`
  if (region === '') return 'its Region is empty'
  if (accountId === '') return 'its account is empty'
  if (resource === '') return 'its resource section is empty'
  const slash = resource.indexOf('/')
  if (slash < 0) return 'its resource section has no "/" between the resource type and id'
  const resourceType = resource.slice(0, slash)
  if (resourceType !== 'key' && resourceType !== 'alias') return `its resource type is ${quoteIdentifier(resourceType)}, not "key" or "alias"`
  if (slash === resource.length - 1) return 'its resource id is empty'
  return undefined
}

/**
 * Parse an AWS KMS key or alias ARN. Throws a `ConfigurationError` saying which rule the input breaks, after
 * `what` (the option it came from, say) when given.
 *
 * @example
 * ```ts
 * parseKmsArn('arn:aws:kms:us-east-1:111122223333:key/mrk-1234').region // 'us-east-1'
 * ```
 */
export function parseKmsArn(arn: string, what?: string): KmsArn {
  if (typeof arn !== 'string') throw new ConfigurationError(`${what ?? 'A KMS ARN'} must be a string; got ${typeof arn}.`)
  const problem = arnProblem(arn)
  if (problem !== undefined) throw new ConfigurationError(`${what === undefined ? '' : `${what} `}${quoteIdentifier(arn)} is not a valid AWS KMS ARN: ${problem}.`)
  const [, partition, , region, accountId, resource] = arn.split(':') as [string, string, string, string, string, string]
  const slash = resource.indexOf('/')
  return Object.freeze({
    partition,
    service: 'kms',
    region,
    accountId,
    resourceType: resource.slice(0, slash) as 'key' | 'alias',
    // spec: any additional "/" belong to the resource id
    resourceId: resource.slice(slash + 1),
  })
}

/**
 * True when `arn` is a valid AWS KMS ARN (key or alias). Never throws.
 *
 * @example
 * ```ts
 * isKmsArn('arn:aws:kms:us-east-1:111122223333:alias/app') // true
 * isKmsArn('alias/app') // false: a bare alias name is not an ARN
 * ```
 */
export function isKmsArn(arn: unknown): arn is string {
  return typeof arn === 'string' && arnProblem(arn) === undefined
}

/**
 * Parse an ARN that must name a key, not an alias: what KMS returns and what a message records.
 * An alias ARN gets its own message, since it is the usual mistake. `what` names the input in errors.
 *
 * @example
 * ```ts
 * const { region, accountId, resourceId } = parseKmsKeyArn('arn:aws:kms:eu-west-1:111122223333:key/mrk-1234abcd')
 * ```
 */
export function parseKmsKeyArn(arn: string, what?: string): KmsArn {
  const parsed = parseKmsArn(arn, what)
  if (parsed.resourceType !== 'key') {
    throw new ConfigurationError(
      `${what ?? 'A KMS key ARN'} must name a key, but ${quoteIdentifier(arn)} is an alias ARN. Give the key ARN (arn:…:key/…) the alias points to.`,
    )
  }
  return parsed
}

const ARN_PARTS = ['partition', 'service', 'region', 'accountId', 'resourceType', 'resourceId'] as const

/**
 * The ARN as a string (`parseKmsArn` inverted). Throws a `ConfigurationError` for parts that make no valid KMS
 * ARN (a part missing, empty or holding a ":", say), rather than return one `parseKmsArn` would refuse.
 *
 * @example
 * ```ts
 * const replica = formatKmsArn({ ...parseKmsKeyArn(primaryArn), region: 'eu-west-1' })
 * ```
 */
export function formatKmsArn(arn: KmsArn): string {
  if (typeof arn !== 'object' || arn === null) {
    throw new ConfigurationError(`formatKmsArn takes the parts of an ARN (${ARN_PARTS.join(', ')}); got ${quoteValue(arn)}.`)
  }
  for (const name of ARN_PARTS) {
    const value: unknown = arn[name]
    if (typeof value !== 'string') throw new ConfigurationError(`formatKmsArn: ${name} must be a string; got ${quoteValue(value)}.`)
    if (value.includes(':')) throw new ConfigurationError(`formatKmsArn: ${name} ${quoteIdentifier(value)} holds a ":", which separates an ARN's parts.`)
  }
  if (arn.resourceType !== 'key' && arn.resourceType !== 'alias') {
    throw new ConfigurationError(`formatKmsArn: resourceType must be "key" or "alias"; got ${quoteIdentifier(arn.resourceType)}.`)
  }
  const text = `arn:${arn.partition}:${arn.service}:${arn.region}:${arn.accountId}:${arn.resourceType}/${arn.resourceId}`
  const problem = arnProblem(text)
  if (problem !== undefined) throw new ConfigurationError(`formatKmsArn: these parts make no valid AWS KMS ARN: ${problem}.`)
  return text
}

/**
 * Check that `identifier` is an AWS KMS identifier: a key or alias ARN, an alias name (`alias/…`), or a key id.
 * spec: framework/aws-kms/aws-kms-key-arn.md#a-valid-aws-kms-identifier
 */
export function assertKmsIdentifier(identifier: unknown, what = 'A KMS key identifier'): asserts identifier is string {
  if (typeof identifier !== 'string' || identifier === '') {
    throw new ConfigurationError(`${what} must be a non-empty string; got ${identifier === '' ? 'an empty string' : typeof identifier}.`)
  }
  if (identifier.startsWith('arn:')) {
    parseKmsArn(identifier, what)
    return
  }
  if (identifier.startsWith('alias/')) {
    if (identifier.length === 'alias/'.length) throw new ConfigurationError(`${what} "alias/" names no alias.`)
    return
  }
  if (/[:/\s]/.test(identifier)) {
    throw new ConfigurationError(`${what} ${quoteIdentifier(identifier)} is neither a KMS ARN, an alias (alias/…) nor a key id.`)
  }
}

/**
 * True for a multi-Region key: a key ARN or key id whose id starts with `mrk-`. Aliases are never
 * multi-Region keys, even when their name starts with `mrk-`. Throws for an invalid ARN.
 * spec: framework/aws-kms/aws-kms-key-arn.md#identifying-an-an-aws-kms-multi-region-identifier
 *
 * @example
 * ```ts
 * isMultiRegionKey('arn:aws:kms:us-east-1:111122223333:key/mrk-1234abcd') // true
 * isMultiRegionKey('mrk-1234abcd') // true
 * isMultiRegionKey('arn:aws:kms:us-east-1:111122223333:alias/mrk-app') // false
 * ```
 */
export function isMultiRegionKey(identifier: string): boolean {
  if (typeof identifier !== 'string') throw new ConfigurationError(`A KMS key identifier must be a string; got ${typeof identifier}.`)
  if (identifier.startsWith('arn:')) {
    // spec: framework/aws-kms/aws-kms-key-arn.md#identifying-an-an-aws-kms-multi-region-arn
    const arn = parseKmsArn(identifier)
    return arn.resourceType === 'key' && arn.resourceId.startsWith('mrk-')
  }
  if (identifier.startsWith('alias/')) return false
  return identifier.startsWith('mrk-')
}

/**
 * Whether a configured key identifier may decrypt a data key recorded under `other`: identical
 * identifiers match, and two ARNs of the same multi-Region key match in any two Regions.
 * spec: framework/aws-kms/aws-kms-mrk-match-for-decrypt.md#implementation
 *
 * @example
 * ```ts
 * mrkMatch('arn:aws:kms:us-east-1:111122223333:key/mrk-1', 'arn:aws:kms:eu-west-1:111122223333:key/mrk-1') // true
 * ```
 */
export function mrkMatch(identifier: string, other: string): boolean {
  if (identifier === other) return true
  if (!isMultiRegionKey(identifier) || !isMultiRegionKey(other)) return false
  // A bare mrk- key id names no partition or account to compare, so only an identical one matches.
  if (!identifier.startsWith('arn:') || !other.startsWith('arn:')) return false
  const a = parseKmsArn(identifier)
  const b = parseKmsArn(other)
  // The Region is deliberately left out: that is what makes a replica match.
  return (
    a.partition === b.partition &&
    a.service === b.service &&
    a.accountId === b.accountId &&
    a.resourceType === b.resourceType &&
    a.resourceId === b.resourceId
  )
}

/**
 * Refuse a list naming the same multi-Region key more than once (in any Regions): which Region to call
 * would be ambiguous. The error lists every identifier involved, not only the first duplicate.
 * spec: framework/aws-kms/aws-kms-mrk-are-unique.md#implementation
 *
 * @example
 * ```ts
 * // Throws a ConfigurationError: the same multi-Region key in two Regions.
 * assertMrksAreUnique(['arn:aws:kms:us-east-1:111122223333:key/mrk-1', 'arn:aws:kms:eu-west-1:111122223333:key/mrk-1'])
 * ```
 */
export function assertMrksAreUnique(identifiers: readonly string[]): void {
  // A string would be read as a list of one-character identifiers, and pass.
  if (!Array.isArray(identifiers)) throw new ConfigurationError(`assertMrksAreUnique takes an array of key identifiers; got ${quoteValue(identifiers)}.`)
  const byResourceId = new Map<string, string[]>()
  for (const identifier of identifiers) {
    if (!isMultiRegionKey(identifier)) continue
    const resourceId = identifier.startsWith('arn:') ? parseKmsArn(identifier).resourceId : identifier
    const group = byResourceId.get(resourceId)
    if (group === undefined) byResourceId.set(resourceId, [identifier])
    else group.push(identifier)
  }
  const duplicates = [...byResourceId.values()].filter((group) => group.length > 1).flat()
  if (duplicates.length > 0) {
    throw new ConfigurationError(
      `These identifiers name the same multi-Region key more than once, so which Region to call is ambiguous: ${duplicates.join(', ')}. ` +
        'Keep one ARN per multi-Region key.',
    )
  }
}

/** The ARN with its Region replaced (used to call a multi-Region key's replica in the local Region). */
export function withRegion(arn: KmsArn, region: string): string {
  return formatKmsArn({ ...arn, region })
}
