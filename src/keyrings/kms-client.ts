import { ConfigurationError } from '../errors.js'
import { optionsObject } from '../option-names.js'
import { quoteIdentifier } from '../quote.js'
import { loadKmsSdk } from './kms-commands.js'
import { objectKind } from '../format/context.js'

/** Clients the default supplier keeps, one per Region: more than AWS has Regions in a partition. */
const MAX_CLIENTS = 64

/** Sent in the user agent of every client the default supplier makes. Kept equal to package.json by a test. */
export const LIBRARY_VERSION = '0.1.0'
const USER_AGENT = `kms-envelope/${LIBRARY_VERSION}`

/**
 * Timeouts the default supplier gives its clients unless `clientConfig.requestHandler` is set: the AWS SDK has
 * none, so a connection that stops answering (a dead keep-alive connection, a black-holing firewall) would hold
 * a KMS call, and the encrypt or decrypt waiting on it, for good. A timed-out call is retried as the SDK retries.
 */
export const DEFAULT_CONNECTION_TIMEOUT_MS = 5_000
/** Longest wait for a KMS response, and for its next bytes (KMS answers in milliseconds). */
export const DEFAULT_REQUEST_TIMEOUT_MS = 10_000

/**
 * What the KMS keyrings need from a client: `send(command, options)`, as on `KMSClient` from @aws-sdk/client-kms.
 * The keyrings build `GenerateDataKeyCommand`, `EncryptCommand` and `DecryptCommand`s and check every
 * response field they use. When the caller gave an abort signal, `options` is `{ abortSignal }`: a client that
 * takes it cancels the request when the signal aborts.
 */
export interface KmsClientLike {
  /** Sends one KMS command (GenerateDataKey, Encrypt, Decrypt, GetPublicKey), as `KMSClient.send` does. */
  send(command: { readonly input: object }, options?: { readonly abortSignal?: AbortSignal }): Promise<unknown>
}

/**
 * Returns the client to call for one AWS Region. Called with the Region part of a key ARN, or with '' for a key
 * identifier without a Region (an alias name or key id): return a client of your default Region then.
 *
 * @example
 * ```ts
 * import { KMSClient } from '@aws-sdk/client-kms'
 * const clients = { 'us-east-1': new KMSClient({ region: 'us-east-1' }) }
 * const keyring = new KmsKeyring({ generatorKeyId, clientSupplier: (region) => clients[region] })
 * ```
 */
export type KmsClientSupplier = (region: string) => KmsClientLike

/**
 * Options for every `KMSClient` the default supplier creates: any `KMSClientConfig` field of
 * @aws-sdk/client-kms (`endpoint`, `credentials`, `maxAttempts`, `retryStrategy`, `requestHandler`, …).
 * `region` is always the one asked for; for the default Region ('') it is `clientConfig.region`, or the SDK's own
 * default (AWS_REGION, the config profile) when that is unset. Typed loosely so that kms-envelope's types need no AWS SDK package.
 */
export type KmsClientConfig = object

/** Options of `defaultKmsClientSupplier(...)`: which Regions it serves and how it configures each client. */
export interface DefaultKmsClientSupplierOptions {
  /** `KMSClient` options for every client it makes (see `KmsClientConfig`). */
  clientConfig?: KmsClientConfig | undefined
  /** Limit the Regions clients may be made for. A Region outside `allow` or inside `deny` is refused. */
  regions?: { allow?: readonly string[] | undefined; deny?: readonly string[] | undefined } | undefined
}

/**
 * A client supplier that makes one `KMSClient` per Region when it is first used and reuses it. It keeps the
 * clients of the 64 Regions used most recently; a Region used again after that gets a new client.
 * @aws-sdk/client-kms is imported on the first call to KMS, not before. A refused Region throws a
 * `ConfigurationError`; a discovery keyring records that as the reason for skipping the key.
 *
 * @example
 * ```ts
 * const clientSupplier = defaultKmsClientSupplier({
 *   clientConfig: { maxAttempts: 5 },
 *   regions: { allow: ['us-east-1', 'eu-west-1'] },
 * })
 * const keyring = new KmsDiscoveryKeyring({ clientSupplier })
 * ```
 */
export function defaultKmsClientSupplier(options: DefaultKmsClientSupplierOptions = {}): KmsClientSupplier {
  const { clientConfig = {}, regions = {} } = optionsObject(options, 'defaultKmsClientSupplier', 'clientConfig, regions')
  // A Map's entries are not its own properties: read as an object, an endpoint or credentials in it would be lost.
  const kind = objectKind(clientConfig)
  if (kind !== 'Object') {
    throw new ConfigurationError(`defaultKmsClientSupplier clientConfig must be a plain object of KMSClient options; got ${kind}.`)
  }
  if (typeof regions !== 'object' || regions === null) {
    throw new ConfigurationError('defaultKmsClientSupplier regions must be an object with allow and/or deny lists.')
  }
  const { allow: allowed, deny: denied } = optionsObject(regions, 'defaultKmsClientSupplier regions', 'allow, deny')
  const allow = regionList('regions.allow', allowed)
  const deny = regionList('regions.deny', denied)
  // A supplier that refuses every Region is a mistake that would only show at the first KMS call.
  if (allow !== undefined && [...allow].every((region) => deny?.has(region))) {
    throw new ConfigurationError(
      `defaultKmsClientSupplier regions allow no Region: ${allow.size === 0 ? 'regions.allow is empty' : 'regions.deny takes out every Region regions.allow names'}.`,
    )
  }
  const config = { ...clientConfig } as Record<string, unknown>
  config.customUserAgent = withOurUserAgent(config.customUserAgent)
  // socketTimeout bounds an idle connection; requestTimeout, the whole call (browsers, and the SDK's releases from
  // late 2025, where it throws only with throwOnRequestTimeout; earlier ones read it as the idle bound).
  config.requestHandler ??= {
    connectionTimeout: DEFAULT_CONNECTION_TIMEOUT_MS,
    socketTimeout: DEFAULT_REQUEST_TIMEOUT_MS,
    requestTimeout: DEFAULT_REQUEST_TIMEOUT_MS,
    throwOnRequestTimeout: true,
  }
  // Most recently used last. The Regions come from key ARNs, which decrypt reads from messages: kept without a
  // bound, made-up Regions in hostile messages would each leave a client behind (about 50 KB) for good.
  const clients = new Map<string, KmsClientLike>()
  const checkRegion = (region: string): void => {
    if (allow !== undefined && !allow.has(region)) {
      throw new ConfigurationError(`Region ${region} is not in this client supplier's allowed Regions (${[...allow].join(', ')}).`)
    }
    if (deny?.has(region)) throw new ConfigurationError(`Region ${region} is in this client supplier's denied Regions.`)
  }
  return (region: string): KmsClientLike => {
    if (typeof region !== 'string') {
      throw new ConfigurationError(`A KMS client supplier takes a Region name, or '' for the default Region; got ${quoteIdentifier(region)}.`)
    }
    // '': the default Region, for key identifiers without one. clientConfig.region names it, else the SDK finds it
    // (AWS_REGION, the config profile), which is known only once the client is made: checked then.
    const named = region === '' ? config.region : region
    if (typeof named === 'string') checkRegion(named)
    let client = clients.get(region)
    if (client === undefined) client = region === '' ? lazyClient(config, typeof named === 'string' ? undefined : checkRegion) : lazyClient({ ...config, region })
    else clients.delete(region)
    clients.set(region, client)
    // The least recently used client is dropped, not destroyed: a request it is sending may still finish.
    if (clients.size > MAX_CLIENTS) clients.delete(clients.keys().next().value as string)
    return client
  }
}

/**
 * A client whose `KMSClient` (and the SDK itself) is created on the first `send`. With `checkRegion`, the Region
 * the SDK resolves for it is checked first.
 */
function lazyClient(config: Record<string, unknown>, checkRegion?: (region: string) => void): KmsClientLike {
  let client: Promise<KmsClientLike> | undefined
  return {
    async send(command, options) {
      client ??= loadKmsSdk()
        .then(async ({ KMSClient }): Promise<KmsClientLike> => {
          const made = new KMSClient(config)
          if (checkRegion !== undefined) checkRegion(await defaultRegion(made))
          return made
        })
        .catch((error: unknown) => {
          client = undefined
          throw error
        })
      return (await client).send(command, options)
    },
  }
}

/** The Region the AWS SDK picked for a client made without one, or an error that says how to give one. */
async function defaultRegion(client: KmsClientLike): Promise<string> {
  const region = (client as { config?: { region?: unknown } }).config?.region
  let resolved: unknown
  try {
    resolved = typeof region === 'function' ? await region() : region
  } catch (error) {
    resolved = error
  }
  if (typeof resolved === 'string' && resolved !== '') return resolved
  throw new ConfigurationError(
    'the AWS SDK found no default Region for a key identifier without one (an alias name or key id): set AWS_REGION ' +
      '(or a region in your AWS config profile), give defaultKmsClientSupplier clientConfig.region, or configure the key ARN.',
    resolved instanceof Error ? { cause: resolved } : undefined,
  )
}

function regionList(name: string, value: unknown): ReadonlySet<string> | undefined {
  if (value === undefined) return undefined
  if (!Array.isArray(value) || !value.every((region) => typeof region === 'string' && region !== '')) {
    throw new ConfigurationError(`defaultKmsClientSupplier ${name} must be an array of Region names.`)
  }
  return new Set(value as string[])
}

/** Add ours to a caller's `customUserAgent` (a string, or [name, version] pairs) instead of replacing it. */
function withOurUserAgent(custom: unknown): unknown {
  if (custom === undefined) return USER_AGENT
  if (typeof custom === 'string') return `${custom} ${USER_AGENT}`
  if (Array.isArray(custom)) return [...custom, ['kms-envelope', LIBRARY_VERSION]]
  throw new ConfigurationError('defaultKmsClientSupplier clientConfig.customUserAgent must be a string or an array of [name, version] pairs.')
}

let sharedSupplier: KmsClientSupplier | undefined

/** The supplier keyrings use when given none: one for the process, so keyrings share connections. */
export function sharedDefaultKmsClientSupplier(): KmsClientSupplier {
  return (sharedSupplier ??= defaultKmsClientSupplier())
}
