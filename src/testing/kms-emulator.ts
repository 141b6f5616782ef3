// A local AWS KMS for tests and demos: an HTTP server on a loopback port that speaks the KMS JSON 1.1
// protocol, so the unmodified AWS SDK talks to it over the network. One port serves many Regions: each
// request's Region is read from its SigV4 credential scope (the signature itself is not verified).
import { randomUUID } from 'node:crypto'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import { ConfigurationError } from '../errors.js'
import { optionsObject } from '../option-names.js'
import { quoteValue } from '../quote.js'
import { generateMaterial, KEY_SPECS, type EmulatedKeySpec } from './kms-crypto.js'
import { KmsServiceError, unsupported } from './kms-errors.js'
import { KmsFaults, stringFilter, type KmsFaultInjector } from './kms-faults.js'
import { TARGET_PREFIX, callerOf, parseJsonObject, readBody, send, type Caller } from './kms-http.js'
import { RequestInput } from './kms-input.js'
import type { OperationContext } from './kms-key-use.js'
import { OPERATIONS } from './kms-operations.js'
import { KmsStore, nowInSeconds, systemProblem, type EmulatedKey } from './kms-state.js'

/** Options of `startKmsEmulator(...)`. */
export interface KmsEmulatorOptions {
  /** Port to listen on; 0 (the default) picks a free one. */
  port?: number | undefined
  /**
   * Address to listen on; default `127.0.0.1`. The emulator checks no credentials: whoever can reach the address can
   * use its keys, so another than a loopback address (`0.0.0.0`, for other containers) opens them to that network.
   */
  host?: string | undefined
  /** Regions served; default `['us-east-1', 'us-west-2', 'eu-west-1']`. Requests signed for others get UnrecognizedClientException. */
  regions?: string[] | undefined
  /** Default `111122223333`. */
  accountId?: string | undefined
  /** Default `aws`. */
  partition?: string | undefined
  /**
   * A JSON file to load keys and aliases from at start (when it exists) and to save to at start and after
   * every change, so ciphertext stays decryptable across restarts. A file that cannot be read or written fails
   * the start with a `ConfigurationError`. It holds key material: keep it out of version control.
   */
  statePath?: string | undefined
  /** How many calls `calls` keeps (the latest). Default 100,000. */
  maxLoggedCalls?: number | undefined
  /**
   * Origins of web pages that may call the emulator (CORS), such as `http://localhost:5173`, or `'*'` for any.
   * Default none: a browser refuses a page's calls to it from another origin, as any other local server that has
   * not allowed them, and the emulator refuses any call that carries an `Origin` not listed (AccessDeniedException).
   * Allow only pages you serve: any page a browser here opens from an allowed origin can use the emulator's keys.
   */
  corsOrigins?: readonly string[] | undefined
}

/** One request the emulator received. */
export interface KmsCall {
  /** From `X-Amz-Target` (`TrentService.<operation>`); `''` when the header is missing. */
  readonly operation: string
  /** From the SigV4 credential scope; undefined when the request was not signed. */
  readonly region: string | undefined
  /** The ARN of the key the request resolved to, when it got that far. */
  readonly keyId: string | undefined
  /** The access key id the request was signed with; undefined when it was not signed. */
  readonly accessKeyId: string | undefined
  /** Whether it was answered with success (HTTP 200). */
  readonly ok: boolean
  /** The error `__type` answered, when `ok` is false. */
  readonly errorType?: string
}

/** A key created through the emulator's own API. */
export interface KmsEmulatorKey {
  /** The key id (`mrk-…` for a multi-Region key). */
  readonly keyId: string
  /** The key ARN, as keyrings take it. */
  readonly arn: string
  /** The Region the key lives in. */
  readonly region: string
}

/** Options of `emulator.createKey(...)`. */
export interface KmsEmulatorCreateKeyOptions {
  /** Default: the first Region served. */
  region?: string | undefined
  /** Default `SYMMETRIC_DEFAULT`; RSA keys have key usage ENCRYPT_DECRYPT. */
  keySpec?: EmulatedKeySpec | undefined
  /** A multi-Region primary key, id `mrk-<32 hex>`. */
  multiRegion?: boolean | undefined
  /** What DescribeKey answers as the key's description. */
  description?: string | undefined
}

/** A running emulator, from `startKmsEmulator`: its endpoint, key management, fault injection and call log. */
export interface KmsEmulator {
  /** `http://127.0.0.1:PORT`: pass it as the KMSClient `endpoint`. */
  readonly endpoint: string
  /** The account its key ARNs name (the `accountId` option; default 111122223333). */
  readonly accountId: string
  /** The Regions it serves; a request signed for another gets UnrecognizedClientException. */
  readonly regions: readonly string[]
  /** Create a key without a request, as CreateKey does (symmetric by default). */
  createKey(options?: KmsEmulatorCreateKeyOptions): KmsEmulatorKey
  /** Replicate a multi-Region primary key: same id and material, in `replicaRegion`. */
  replicateKey(primaryArn: string, replicaRegion: string): KmsEmulatorKey
  /** Create `alias/...` for the key, in the key's Region. */
  createAlias(aliasName: string, keyArn: string): void
  /** Point the alias of the key's Region at that key, as UpdateAlias does (a key of the same kind, symmetric or RSA). */
  updateAlias(aliasName: string, keyArn: string): void
  /** Delete the alias in `region`, as DeleteAlias does; its key is untouched. */
  deleteAlias(aliasName: string, region: string): void
  /** Enable or disable a key, as EnableKey and DisableKey do: a disabled key fails every use with DisabledException. */
  setKeyEnabled(keyArn: string, enabled: boolean): void
  /** The key becomes PendingDeletion: every cryptographic use fails with KMSInvalidStateException. */
  scheduleKeyDeletion(keyArn: string): void
  /** Fault injection. */
  readonly faults: KmsFaultInjector
  /**
   * Requests received, in order of arrival (a snapshot). The log keeps the latest `maxLoggedCalls`
   * (100,000 by default); older ones are dropped, so a long-running emulator does not grow without bound.
   */
  readonly calls: readonly KmsCall[]
  /** How many logged calls match every given field of `filter` (all of them without one). */
  callCount(filter?: { operation?: string | undefined; region?: string | undefined; keyArn?: string | undefined }): number
  /** Empty the call log (`calls`, `callCount`). */
  resetCalls(): void
  /** Stop listening and drop open connections. */
  close(): Promise<void>
}

const DEFAULT_REGIONS = ['us-east-1', 'us-west-2', 'eu-west-1']
const DEFAULT_MAX_LOGGED_CALLS = 100_000
class LocalKms implements KmsEmulator {
  readonly endpoint: string
  readonly accountId: string
  readonly regions: readonly string[]
  readonly faults: KmsFaults
  readonly #store: KmsStore
  readonly #statePath: string | undefined
  readonly #server: Server
  readonly #closing = new AbortController()
  #calls: KmsCall[] = []

  readonly #maxLoggedCalls: number
  readonly #corsOrigins: ReadonlySet<string>

  constructor(store: KmsStore, statePath: string | undefined, server: Server, endpoint: string, maxLoggedCalls: number, corsOrigins: readonly string[]) {
    this.#maxLoggedCalls = maxLoggedCalls
    this.#corsOrigins = new Set(corsOrigins)
    this.#store = store
    this.#statePath = statePath
    this.#server = server
    this.endpoint = endpoint
    this.accountId = store.accountId
    this.regions = store.regions
    this.faults = new KmsFaults(store.regions, Object.keys(OPERATIONS))
    server.on('request', (request: IncomingMessage, response: ServerResponse) => {
      response.on('error', () => {})
      const origin = request.headers.origin
      const allowed = origin !== undefined && (this.#corsOrigins.has('*') || this.#corsOrigins.has(origin))
      // A browser asks first whether a page may send KMS's headers: not a KMS call, so not logged.
      if (request.method === 'OPTIONS' && origin !== undefined) return answerPreflight(request, response, allowed, origin)
      if (allowed) {
        response.setHeader('Access-Control-Allow-Origin', origin)
        response.setHeader('Access-Control-Expose-Headers', 'x-amzn-RequestId, x-amzn-ErrorType')
      }
      if (this.#corsOrigins.size > 0) response.setHeader('Vary', 'Origin')
      this.#handle(request, response, origin === undefined || allowed ? undefined : origin).catch(() => response.destroy())
    })
  }

  get calls(): readonly KmsCall[] {
    return [...this.#calls]
  }

  callCount(given: { operation?: string | undefined; region?: string | undefined; keyArn?: string | undefined } = {}): number {
    // A misspelt filter would count nothing, and pass a test that should fail: names and values are checked.
    const filter = stringFilter('callCount filter', optionsObject(given, 'callCount filter', 'operation, region, keyArn'))
    // Calls of operations the emulator does not serve are logged too, so any well-formed name may be counted.
    if (filter.operation !== undefined && !/^[A-Z][A-Za-z]+$/.test(filter.operation)) {
      throw new ConfigurationError(`callCount filter.operation must be a KMS operation name such as "Decrypt"; got ${quoteValue(filter.operation)}.`)
    }
    return this.#calls.filter(
      (call) =>
        (filter.operation === undefined || call.operation === filter.operation) &&
        (filter.region === undefined || call.region === filter.region) &&
        (filter.keyArn === undefined || call.keyId === filter.keyArn),
    ).length
  }

  resetCalls(): void {
    this.#calls = []
  }

  createKey(createOptions?: KmsEmulatorCreateKeyOptions): KmsEmulatorKey {
    const options = optionsObject(createOptions, 'createKey', 'region, keySpec, multiRegion, description')
    if (options.multiRegion !== undefined && typeof options.multiRegion !== 'boolean') throw new ConfigurationError('createKey multiRegion must be true or false.')
    if (options.description !== undefined && (typeof options.description !== 'string' || options.description.length > 8192)) {
      throw new ConfigurationError(`createKey description must be a string of at most 8192 characters, as in KMS; got ${quoteValue(options.description)}.`)
    }
    const keySpec = options.keySpec ?? 'SYMMETRIC_DEFAULT'
    if (!KEY_SPECS.includes(keySpec)) throw new ConfigurationError(`createKey keySpec must be one of ${KEY_SPECS.join(', ')}.`)
    const region = options.region ?? (this.regions[0] as string)
    const key = this.#change(() =>
      this.#store.addKey(
        { region, keySpec, multiRegion: options.multiRegion === true, description: options.description ?? '' },
        generateMaterial(keySpec),
      ),
    )
    return { keyId: key.keyId, arn: key.arn, region: key.region }
  }

  replicateKey(primaryArn: string, replicaRegion: string): KmsEmulatorKey {
    const replica = this.#change(() => this.#store.addReplica(this.#keyByArn(primaryArn, 'replicateKey'), replicaRegion, undefined))
    return { keyId: replica.keyId, arn: replica.arn, region: replica.region }
  }

  createAlias(aliasName: string, keyArn: string): void {
    this.#change(() => {
      const key = this.#keyByArn(keyArn, 'createAlias')
      this.#store.addAlias(key.region, aliasName, key)
    })
  }

  updateAlias(aliasName: string, keyArn: string): void {
    this.#change(() => {
      const key = this.#keyByArn(keyArn, 'updateAlias')
      this.#store.retargetAlias(this.#store.alias(key.region, aliasName), key)
    })
  }

  deleteAlias(aliasName: string, region: string): void {
    this.#change(() => {
      this.#store.assertRegion(region)
      this.#store.deleteAlias(this.#store.alias(region, aliasName))
    })
  }

  setKeyEnabled(keyArn: string, enabled: boolean): void {
    this.#change(() => {
      const key = this.#keyByArn(keyArn, 'setKeyEnabled')
      if (key.state === 'PendingDeletion') throw new KmsServiceError('KMSInvalidStateException', `${key.arn} is pending deletion.`)
      key.state = enabled ? 'Enabled' : 'Disabled'
    })
  }

  scheduleKeyDeletion(keyArn: string): void {
    this.#change(() => {
      const key = this.#keyByArn(keyArn, 'scheduleKeyDeletion')
      const days = 30
      key.state = 'PendingDeletion'
      key.deletionDate = nowInSeconds() + days * 86_400
      key.pendingWindowInDays = days
    })
  }

  async close(): Promise<void> {
    this.#closing.abort()
    const closed = new Promise<void>((resolve) => this.#server.close(() => resolve()))
    this.#server.closeAllConnections()
    await closed
  }

  toJSON(): object {
    return { endpoint: this.endpoint, accountId: this.accountId, regions: this.regions }
  }

  /** Shows where it listens, never keys. */
  [Symbol.for('nodejs.util.inspect.custom')](): string {
    return `KmsEmulator ${this.endpoint} (${this.regions.join(', ')})`
  }

  /** Run a change made through the emulator's API, save it, and report KMS refusals as configuration errors. */
  #change<T>(change: () => T): T {
    let result: T
    try {
      result = change()
    } catch (error) {
      if (error instanceof KmsServiceError) throw new ConfigurationError(`${error.type}: ${error.message}`, { cause: error })
      throw error
    }
    this.#save()
    return result
  }

  #keyByArn(arn: string, method: string): EmulatedKey {
    const parts = typeof arn === 'string' ? arn.split(':') : []
    if (parts.length !== 6 || parts[0] !== 'arn') throw new ConfigurationError(`${method} needs a key ARN, as createKey returns it; got ${quoteValue(arn)}.`)
    return this.#store.resolve(parts[3] as string, arn)
  }

  #save(): void {
    if (this.#statePath !== undefined) this.#store.save(this.#statePath)
  }

  /**
   * Answer one request. `refusedOrigin`: the Origin of a web page that corsOrigins does not allow. Such a call is
   * refused before it does anything: a browser would not show that page the answer, but the call would still run,
   * and a page that reaches the emulator through its own host name (DNS rebinding) would read the answer too.
   */
  async #handle(request: IncomingMessage, response: ServerResponse, refusedOrigin: string | undefined): Promise<void> {
    const requestId = randomUUID()
    // Hold the call's place in arrival order; the finished record replaces it before the answer is sent.
    const placeholder: KmsCall = { operation: '', region: undefined, keyId: undefined, accessKeyId: undefined, ok: false }
    // At the bound, the oldest tenth goes at once, so trimming is rare.
    if (this.#calls.length >= this.#maxLoggedCalls) this.#calls.splice(0, Math.ceil(this.#maxLoggedCalls / 10))
    this.#calls.push(placeholder)
    let operation = ''
    let caller: Partial<Caller> = {}
    let context: OperationContext | undefined
    const record = (errorType?: string): void => {
      const index = this.#calls.lastIndexOf(placeholder) // recent: search from the end
      if (index < 0) return
      this.#calls[index] = Object.freeze({
        operation,
        region: caller.region,
        keyId: context?.keyArn,
        accessKeyId: caller.accessKeyId,
        ok: errorType === undefined,
        ...(errorType === undefined ? {} : { errorType }),
      })
    }
    try {
      if (request.method !== 'POST') throw new KmsServiceError('ValidationException', 'KMS takes POST requests only.', 405)
      const body = await readBody(request)
      const target = request.headers['x-amz-target']
      if (typeof target !== 'string' || target === '') throw unsupported(`Missing X-Amz-Target header; expected ${TARGET_PREFIX}<Operation>.`)
      operation = target.startsWith(TARGET_PREFIX) ? target.slice(TARGET_PREFIX.length) : target
      if (refusedOrigin !== undefined) throw new KmsServiceError('AccessDeniedException', originRefusal(refusedOrigin), 403)
      caller = callerOf(request.headers.authorization)
      const { region, accessKeyId } = caller as Caller
      if (!this.regions.includes(region)) {
        throw new KmsServiceError(
          'UnrecognizedClientException',
          `The security token included in the request is invalid: Region ${region} is not served by this KMS emulator (it serves ${this.regions.join(', ')}).`,
        )
      }
      const delay = this.faults.delayFor(operation, region)
      if (delay > 0) await sleep(delay, undefined, { signal: this.#closing.signal })
      if (this.faults.isDown(region)) throw new KmsServiceError('KMSInternalException', `KMS in ${region} is down (faults.regionDown).`, 500)
      if (this.faults.takeThrottle(operation, region)) throw new KmsServiceError('ThrottlingException', 'Rate exceeded')
      const handler = target.startsWith(TARGET_PREFIX) && Object.hasOwn(OPERATIONS, operation) ? OPERATIONS[operation] : undefined
      if (handler === undefined) throw unsupported(`Operation ${JSON.stringify(target)} is not supported by the KMS emulator.`)
      const input = new RequestInput(parseJsonObject(body))
      context = { operation, region, accessKeyId, store: this.#store, faults: this.faults, keyArn: undefined, mutated: false }
      const result = await handler(context, input)
      if (context.mutated) this.#save()
      record()
      send(response, 200, result, requestId)
    } catch (error) {
      if (this.#closing.signal.aborted) {
        response.destroy()
        return
      }
      const failure =
        error instanceof KmsServiceError
          ? error
          : new KmsServiceError('KMSInternalException', `The KMS emulator failed: ${error instanceof Error ? `${error.name}: ${error.message.slice(0, 200)}` : typeof error}.`, 500)
      record(failure.type)
      send(response, failure.status, { __type: failure.type, message: failure.message }, requestId, failure.type)
      if (failure.status === 413) response.on('finish', () => request.destroy())
    }
  }
}

const originRefusal = (origin: string): string =>
  `Origin ${origin} may not call this KMS emulator: start it with corsOrigins (--cors-origin) listing the origin.`

/**
 * A CORS preflight: for an allowed origin, the methods and headers a page may use (the ones it asks for: the SDK
 * sends SigV4's and its own); for another, 403 without CORS headers, which the browser reports as a CORS failure.
 */
function answerPreflight(request: IncomingMessage, response: ServerResponse, allowed: boolean, origin: string): void {
  request.resume()
  if (!allowed) {
    const text = originRefusal(origin)
    response.writeHead(403, { 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': Buffer.byteLength(text), Vary: 'Origin' })
    response.end(text)
    return
  }
  const asked = request.headers['access-control-request-headers']
  response.writeHead(204, {
    'Access-Control-Allow-Origin': origin,
    'Access-Control-Allow-Methods': 'POST',
    ...(typeof asked === 'string' && asked !== '' ? { 'Access-Control-Allow-Headers': asked } : {}),
    // Chrome asks this of a page on a public address that calls a private one (a loopback port, here).
    ...(request.headers['access-control-request-private-network'] === 'true' ? { 'Access-Control-Allow-Private-Network': 'true' } : {}),
    'Access-Control-Max-Age': '600',
    Vary: 'Origin, Access-Control-Request-Headers',
  })
  response.end()
}

/** The options, checked (undefined or null mean none). */
function checkOptions(given: KmsEmulatorOptions | null | undefined): KmsEmulatorOptions {
  const options = optionsObject(given, 'startKmsEmulator', 'port, host, regions, accountId, partition, statePath, maxLoggedCalls, corsOrigins')
  const { port, host, regions, accountId, partition, statePath } = options
  if (port !== undefined && (!Number.isInteger(port) || port < 0 || port > 65_535)) throw new ConfigurationError(`port must be an integer from 0 to 65535; got ${quoteValue(port)}.`)
  if (host !== undefined && (typeof host !== 'string' || host === '')) throw new ConfigurationError(`host must be a non-empty string; got ${quoteValue(host)}.`)
  if (regions !== undefined) checkRegions(regions)
  if (accountId !== undefined && (typeof accountId !== 'string' || !/^\d{12}$/.test(accountId))) {
    throw new ConfigurationError(`accountId must be a string of 12 digits; got ${quoteValue(accountId)}.`)
  }
  if (partition !== undefined && (typeof partition !== 'string' || !/^[a-z-]+$/.test(partition))) {
    throw new ConfigurationError(`partition must be a partition name such as "aws"; got ${quoteValue(partition)}.`)
  }
  if (statePath !== undefined && (typeof statePath !== 'string' || statePath === '')) throw new ConfigurationError(`statePath must be a file path; got ${quoteValue(statePath)}.`)
  if (options.maxLoggedCalls !== undefined && (!Number.isInteger(options.maxLoggedCalls) || options.maxLoggedCalls < 1)) {
    throw new ConfigurationError(`maxLoggedCalls must be a positive integer; got ${quoteValue(options.maxLoggedCalls)}.`)
  }
  if (options.corsOrigins !== undefined) checkOrigins(options.corsOrigins)
  return options
}

/** Refuse a `corsOrigins` entry no browser sends: each is `'*'` or scheme, host and port alone (`https://app.example`). */
function checkOrigins(origins: unknown): void {
  const expected = 'corsOrigins must be a list of origins such as "http://localhost:5173", or "*" for any'
  if (!Array.isArray(origins)) throw new ConfigurationError(`${expected}; got ${quoteValue(origins)}.`)
  for (const origin of origins as unknown[]) {
    if (origin === '*') continue
    let canonical: string | undefined
    try {
      canonical = typeof origin === 'string' ? new URL(origin).origin : undefined
    } catch {
      canonical = undefined
    }
    if (canonical !== origin || canonical === 'null') {
      const hint = canonical !== undefined && canonical !== 'null' ? ` (the origin of that URL is "${canonical}")` : ''
      throw new ConfigurationError(`${expected}; got ${quoteValue(origin)}${hint}.`)
    }
  }
}

/** Refuse a `regions` option KMS could not have: no Regions, a name no Region has, or one Region twice. */
function checkRegions(regions: unknown): void {
  const expected = 'regions must be a non-empty list of Region names such as "us-east-1"'
  if (!Array.isArray(regions) || regions.length === 0) throw new ConfigurationError(`${expected}.`)
  const seen = new Set<string>()
  for (const region of regions as unknown[]) {
    if (typeof region !== 'string' || !/^[a-z0-9]+(-[a-z0-9]+)*$/.test(region)) throw new ConfigurationError(`${expected}; got ${quoteValue(region)}.`)
    if (seen.has(region)) throw new ConfigurationError(`regions lists ${quoteValue(region)} twice.`)
    seen.add(region)
  }
}

/** Why the server could not listen, with what to do about it. */
function listenFailure(error: unknown, host: string, port: number): ConfigurationError {
  const code = (error as { code?: unknown } | undefined)?.code
  const hint =
    code === 'EADDRINUSE'
      ? 'Another process uses that port: choose another, or port 0 for any free one.'
      : code === 'EACCES'
        ? 'This process may not use that port: choose one above 1023, or port 0 for any free one.'
        : code === 'ENOTFOUND' || code === 'EAI_AGAIN' || code === 'EADDRNOTAVAIL'
          ? 'The host must be an address of this machine, such as 127.0.0.1 or ::1.'
          : 'See the cause.'
  return new ConfigurationError(`The KMS emulator cannot listen on ${host} port ${port} (${systemProblem(error)}). ${hint}`, { cause: error })
}

/**
 * Start a local AWS KMS emulator. The unmodified `@aws-sdk/client-kms` talks to it over HTTP.
 *
 * @example
 * ```ts
 * import { KMSClient, EncryptCommand } from '@aws-sdk/client-kms'
 * import { startKmsEmulator } from 'kms-envelope/testing'
 *
 * const kms = await startKmsEmulator()
 * const { arn } = kms.createKey({ region: 'us-east-1' })
 * const client = new KMSClient({ region: 'us-east-1', endpoint: kms.endpoint, credentials: { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'x' } })
 * await client.send(new EncryptCommand({ KeyId: arn, Plaintext: new Uint8Array([1, 2, 3]) }))
 * kms.faults.throttle(2) // the next two calls get ThrottlingException
 * await kms.close()
 * ```
 */
export async function startKmsEmulator(given?: KmsEmulatorOptions): Promise<KmsEmulator> {
  const options = checkOptions(given)
  const host = options.host ?? '127.0.0.1'
  const store = new KmsStore(options.accountId ?? '111122223333', options.partition ?? 'aws', Object.freeze([...(options.regions ?? DEFAULT_REGIONS)]))
  if (options.statePath !== undefined) {
    store.load(options.statePath)
    // Written now, so a path that cannot be written fails the start rather than the first change.
    store.save(options.statePath)
  }
  const server = createServer()
  const wanted = options.port ?? 0
  await new Promise<void>((resolve, reject) => {
    const refused = (error: unknown): void => reject(listenFailure(error, host, wanted))
    server.once('error', refused)
    server.listen(wanted, host, () => {
      server.off('error', refused)
      resolve()
    })
  })
  const { port } = server.address() as AddressInfo
  const endpoint = `http://${host.includes(':') ? `[${host}]` : host}:${port}`
  return new LocalKms(store, options.statePath, server, endpoint, options.maxLoggedCalls ?? DEFAULT_MAX_LOGGED_CALLS, options.corsOrigins ?? [])
}
