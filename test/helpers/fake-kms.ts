// An in-memory stand-in for AWS KMS behind the KmsClientLike interface, for keyring unit tests.
// It answers the real SDK command objects the keyrings send (it reads `command.constructor.name` and
// `command.input`), enforces Region, key state and encryption context the way KMS does, records every
// call, and lets a test replace any answer. Its "ciphertext" is not encryption: it is a test double.
import { randomBytes } from 'node:crypto'
import type { KmsClientLike, KmsClientSupplier } from '../../src/index.js'

export const ACCOUNT = '111122223333'

export interface FakeCall {
  readonly region: string
  readonly operation: string
  readonly input: Record<string, any>
}

interface FakeKey {
  readonly arn: string
  readonly region: string
  /** Keys of one multi-Region family share this, and their secret. */
  readonly family: string
  readonly secret: Uint8Array
  state: 'Enabled' | 'Disabled' | 'PendingDeletion'
}

type Override = (call: FakeCall) => unknown

export function kmsError(name: string, message = `${name} from the fake KMS`): Error {
  const error = new Error(message)
  error.name = name
  return error
}

export class FakeKms {
  readonly calls: FakeCall[] = []
  readonly #keys = new Map<string, FakeKey>()
  readonly #aliases = new Map<string, string>()
  readonly #denied = new Set<string>()
  readonly #down = new Set<string>()
  /** Replace the answer to an operation: return a response, or throw. */
  readonly overrides = new Map<string, Override>()
  /** Every data key plaintext this fake handed out, to check that the keyrings zero the ones they drop. */
  readonly handedOut: Uint8Array[] = []
  /** Copies of those plaintexts as handed out, to check that no error or output ever shows one. */
  readonly handedOutCopies: Uint8Array[] = []

  createKey(region: string, options: { multiRegion?: boolean; account?: string; partition?: string } = {}): string {
    const id = `${options.multiRegion ? 'mrk-' : ''}${randomBytes(8).toString('hex')}`
    const arn = `arn:${options.partition ?? 'aws'}:kms:${region}:${options.account ?? ACCOUNT}:key/${id}`
    this.#keys.set(arn, { arn, region, family: options.multiRegion ? arn.replace(`:${region}:`, ':*:') : arn, secret: randomBytes(32), state: 'Enabled' })
    return arn
  }

  replicate(primaryArn: string, region: string): string {
    const primary = this.#keys.get(primaryArn)!
    const arn = primaryArn.replace(`:${primary.region}:`, `:${region}:`)
    this.#keys.set(arn, { ...primary, arn, region, state: 'Enabled' })
    return arn
  }

  createAlias(name: string, keyArn: string): string {
    const key = this.#keys.get(keyArn)!
    const aliasArn = keyArn.replace(/:key\/.*$/, `:alias/${name}`)
    this.#aliases.set(aliasArn, key.arn)
    return aliasArn
  }

  setState(arn: string, state: FakeKey['state']): void {
    this.#keys.get(arn)!.state = state
  }

  deny(arn: string): void {
    this.#denied.add(arn)
  }

  regionDown(region: string, down = true): void {
    if (down) this.#down.add(region)
    else this.#down.delete(region)
  }

  client(region: string): KmsClientLike {
    return { send: async (command) => this.#handle({ region, operation: command.constructor.name, input: command.input as Record<string, any> }) }
  }

  /** A supplier that records the Regions asked for. */
  readonly suppliedRegions: string[] = []
  readonly supplier: KmsClientSupplier = (region) => {
    this.suppliedRegions.push(region)
    return this.client(region)
  }

  count(operation?: string, region?: string): number {
    return this.calls.filter((call) => (operation === undefined || call.operation === operation) && (region === undefined || call.region === region)).length
  }

  async #handle(call: FakeCall): Promise<unknown> {
    this.calls.push(call)
    const override = this.overrides.get(call.operation)
    if (override !== undefined) return override(call)
    if (this.#down.has(call.region)) throw kmsError('TimeoutError', `connect ETIMEDOUT kms.${call.region}.amazonaws.com`)
    const { input } = call
    switch (call.operation) {
      case 'GenerateDataKeyCommand': {
        const key = this.#usable(call, input.KeyId)
        const plaintext = new Uint8Array(randomBytes(input.NumberOfBytes))
        this.handedOut.push(plaintext)
        this.handedOutCopies.push(plaintext.slice())
        return { KeyId: key.arn, Plaintext: plaintext, CiphertextBlob: wrap(key, plaintext, input.EncryptionContext) }
      }
      case 'EncryptCommand': {
        const key = this.#usable(call, input.KeyId)
        return { KeyId: key.arn, CiphertextBlob: wrap(key, input.Plaintext, input.EncryptionContext) }
      }
      case 'DecryptCommand': {
        const key = this.#usable(call, input.KeyId)
        const blob = unwrapBlob(input.CiphertextBlob)
        if (blob === undefined || blob.family !== key.family) throw kmsError('IncorrectKeyException')
        if (blob.context !== canonical(input.EncryptionContext)) throw kmsError('InvalidCiphertextException')
        const plaintext = xor(Buffer.from(blob.data, 'base64'), key.secret)
        this.handedOut.push(plaintext)
        return { KeyId: key.arn, Plaintext: plaintext }
      }
      default:
        throw kmsError('UnsupportedOperationException', `the fake KMS does not do ${call.operation}`)
    }
  }

  #usable(call: FakeCall, keyId: string): FakeKey {
    const arn = this.#aliases.get(keyId) ?? keyId
    const key = this.#keys.get(arn)
    // Like KMS, a Region's endpoint knows only that Region's keys.
    if (key === undefined || key.region !== call.region) throw kmsError('NotFoundException', `Key '${keyId}' does not exist`)
    if (this.#denied.has(arn)) throw kmsError('AccessDeniedException', `not authorized to use ${arn}`)
    if (key.state === 'Disabled') throw kmsError('DisabledException', `${arn} is disabled.`)
    if (key.state === 'PendingDeletion') throw kmsError('KMSInvalidStateException', `${arn} is pending deletion.`)
    return key
  }
}

function canonical(context: Record<string, string> | undefined): string {
  return JSON.stringify(Object.entries(context ?? {}).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
}

function xor(data: Uint8Array, secret: Uint8Array): Uint8Array {
  return new Uint8Array(data.length).map((_, index) => (data[index] as number) ^ (secret[index % secret.length] as number))
}

function wrap(key: FakeKey, plaintext: Uint8Array, context: Record<string, string> | undefined): Uint8Array {
  const blob = { family: key.family, context: canonical(context), data: Buffer.from(xor(plaintext, key.secret)).toString('base64') }
  return new Uint8Array(Buffer.from(JSON.stringify(blob)))
}

function unwrapBlob(bytes: Uint8Array): { family: string; context: string; data: string } | undefined {
  try {
    return JSON.parse(Buffer.from(bytes).toString('utf8'))
  } catch {
    return undefined
  }
}
