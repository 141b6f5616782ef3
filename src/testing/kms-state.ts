// The emulator's keys and aliases, per Region, and their JSON state file.
import { randomBytes, randomUUID } from 'node:crypto'
import { existsSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs'
import { ConfigurationError } from '../errors.js'
import { exportMaterial, importMaterial, KEY_SPECS, type EmulatedKeySpec, type KeyMaterial } from './kms-crypto.js'
import { KmsServiceError, notFound, unsupported, validation } from './kms-errors.js'
import { assertNotPendingDeletion } from './kms-key-use.js'

export type KeyState = 'Enabled' | 'Disabled' | 'PendingDeletion'

/** One KMS key in one Region. A multi-Region key and its replicas are separate entries with the same id. */
export interface EmulatedKey {
  readonly keyId: string
  readonly region: string
  readonly arn: string
  readonly keySpec: EmulatedKeySpec
  readonly description: string
  /** Seconds since the epoch, the unit KMS's JSON protocol uses. */
  readonly creationDate: number
  readonly multiRegion: boolean
  /** True for single-Region keys and multi-Region primaries. */
  readonly primary: boolean
  /** Shared by a multi-Region key and its replicas, like their material. */
  readonly materialId: string
  state: KeyState
  deletionDate: number | undefined
  pendingWindowInDays: number | undefined
}

export interface EmulatedAlias {
  readonly aliasName: string
  readonly region: string
  readonly targetKeyId: string
  readonly creationDate: number
  /** When UpdateAlias last moved it; its creation until then. */
  readonly lastUpdatedDate?: number | undefined
}

export interface NewKeyOptions {
  readonly region: string
  readonly keySpec: EmulatedKeySpec
  readonly multiRegion: boolean
  readonly description: string
}

const STATE_FORMAT = 'kms-envelope-kms-emulator-state'
const STATE_VERSION = 1
const ALIAS_NAME = /^alias\/[a-zA-Z0-9/_-]{1,250}$/

export const nowInSeconds = (): number => Date.now() / 1000

/** Keys, their material and aliases. Every lookup is scoped to one Region, as in KMS. */
export class KmsStore {
  readonly accountId: string
  readonly partition: string
  readonly regions: readonly string[]
  readonly #keys = new Map<string, EmulatedKey>()
  readonly #material = new Map<string, KeyMaterial>()
  readonly #aliases = new Map<string, EmulatedAlias>()

  constructor(accountId: string, partition: string, regions: readonly string[]) {
    this.accountId = accountId
    this.partition = partition
    this.regions = regions
  }

  keyArn(region: string, keyId: string): string {
    return `arn:${this.partition}:kms:${region}:${this.accountId}:key/${keyId}`
  }

  aliasArn(region: string, aliasName: string): string {
    return `arn:${this.partition}:kms:${region}:${this.accountId}:${aliasName}`
  }

  assertRegion(region: string): void {
    if (!this.regions.includes(region)) {
      throw validation(`Region ${JSON.stringify(region)} is not served by this emulator (it serves ${this.regions.join(', ')}).`)
    }
  }

  addKey(options: NewKeyOptions, material: KeyMaterial): EmulatedKey {
    this.assertRegion(options.region)
    const keyId = options.multiRegion ? `mrk-${randomBytes(16).toString('hex')}` : randomUUID()
    const key: EmulatedKey = {
      keyId,
      region: options.region,
      arn: this.keyArn(options.region, keyId),
      keySpec: options.keySpec,
      description: options.description,
      creationDate: nowInSeconds(),
      multiRegion: options.multiRegion,
      primary: true,
      materialId: randomBytes(32).toString('hex'),
      state: 'Enabled',
      deletionDate: undefined,
      pendingWindowInDays: undefined,
    }
    this.#insert(key, material)
    return key
  }

  /** A replica: same id, spec and material as the primary, in another Region. */
  addReplica(primary: EmulatedKey, replicaRegion: string, description: string | undefined): EmulatedKey {
    if (!primary.multiRegion) throw unsupported(`${primary.arn} is not a multi-Region key; only multi-Region keys can be replicated.`)
    if (!primary.primary) throw unsupported(`${primary.arn} is a replica key; replicate its primary key instead.`)
    this.assertRegion(replicaRegion)
    if (replicaRegion === primary.region) throw validation(`The replica Region must differ from the primary key's Region ${primary.region}.`)
    if (this.findKey(replicaRegion, primary.keyId) !== undefined) {
      throw new KmsServiceError('AlreadyExistsException', `${this.keyArn(replicaRegion, primary.keyId)} already exists.`)
    }
    const replica: EmulatedKey = {
      ...primary,
      region: replicaRegion,
      arn: this.keyArn(replicaRegion, primary.keyId),
      description: description ?? primary.description,
      creationDate: nowInSeconds(),
      primary: false,
      state: 'Enabled',
      deletionDate: undefined,
      pendingWindowInDays: undefined,
    }
    this.#insert(replica, this.materialOf(primary))
    return replica
  }

  addAlias(region: string, aliasName: string, target: EmulatedKey): EmulatedAlias {
    if (!ALIAS_NAME.test(aliasName) || aliasName.startsWith('alias/aws/')) {
      throw new KmsServiceError(
        'InvalidAliasNameException',
        `Alias name ${JSON.stringify(aliasName)} is invalid: use "alias/" then letters, digits, "/", "_" or "-", not starting "alias/aws/".`,
      )
    }
    assertNotPendingDeletion(target)
    const arn = this.aliasArn(region, aliasName)
    if (this.#aliases.has(arn)) throw new KmsServiceError('AlreadyExistsException', `An alias with the name ${arn} already exists.`)
    const alias: EmulatedAlias = { aliasName, region, targetKeyId: target.keyId, creationDate: nowInSeconds() }
    this.#aliases.set(arn, alias)
    return alias
  }

  /** The alias `aliasName` in `region`; NotFoundException otherwise. */
  alias(region: string, aliasName: string): EmulatedAlias {
    const alias = this.#aliases.get(this.aliasArn(region, aliasName))
    if (alias === undefined) throw notFound(`Alias ${this.aliasArn(region, aliasName)} is not found.`)
    return alias
  }

  /** Point `alias` at another key of its Region (UpdateAlias): as in KMS, a key of the same kind, symmetric or RSA. */
  retargetAlias(alias: EmulatedAlias, target: EmulatedKey): void {
    assertNotPendingDeletion(target)
    const current = this.findKey(alias.region, alias.targetKeyId)
    if (current !== undefined && (current.keySpec === 'SYMMETRIC_DEFAULT') !== (target.keySpec === 'SYMMETRIC_DEFAULT')) {
      throw validation(`${alias.aliasName} points to a ${current.keySpec} key; it cannot move to ${target.arn}, a ${target.keySpec} key.`)
    }
    this.#aliases.set(this.aliasArn(alias.region, alias.aliasName), { ...alias, targetKeyId: target.keyId, lastUpdatedDate: nowInSeconds() })
  }

  deleteAlias(alias: EmulatedAlias): void {
    this.#aliases.delete(this.aliasArn(alias.region, alias.aliasName))
  }

  /** The keys of `region` (replicas there included), oldest first. */
  keysIn(region: string): EmulatedKey[] {
    return [...this.#keys.values()].filter((key) => key.region === region)
  }

  findKey(region: string, keyId: string): EmulatedKey | undefined {
    return this.#keys.get(this.keyArn(region, keyId))
  }

  /** Resolve a key id, key ARN, alias name or alias ARN in `region`; NotFoundException otherwise. */
  resolve(region: string, identifier: string): EmulatedKey {
    let resource = identifier
    if (identifier.startsWith('arn:')) {
      const parts = identifier.split(':')
      if (parts.length !== 6 || parts[1] !== this.partition || parts[2] !== 'kms' || parts[4] !== this.accountId) {
        throw notFound(`Invalid arn ${identifier}.`)
      }
      if (parts[3] !== region) {
        throw notFound(`Key '${identifier}' does not exist: it names Region ${parts[3]}, and this request was sent to ${region}.`)
      }
      resource = (parts[5] as string).startsWith('key/') ? (parts[5] as string).slice('key/'.length) : (parts[5] as string)
    }
    if (resource.startsWith('alias/')) resource = this.alias(region, resource).targetKeyId
    const key = this.findKey(region, resource)
    if (key === undefined) throw notFound(`Key '${this.keyArn(region, resource)}' does not exist.`)
    return key
  }

  /** A multi-Region key's primary and replicas, primary first; just the key for single-Region keys. */
  family(key: EmulatedKey): EmulatedKey[] {
    if (!key.multiRegion) return [key]
    const members = [...this.#keys.values()].filter((other) => other.keyId === key.keyId)
    return members.sort((a, b) => Number(b.primary) - Number(a.primary))
  }

  aliasesIn(region: string): EmulatedAlias[] {
    return [...this.#aliases.values()].filter((alias) => alias.region === region)
  }

  materialOf(key: EmulatedKey): KeyMaterial {
    const material = this.#material.get(key.arn)
    if (material === undefined) throw new KmsServiceError('KMSInternalException', `No key material for ${key.arn}.`, 500)
    return material
  }

  #insert(key: EmulatedKey, material: KeyMaterial): void {
    this.#keys.set(key.arn, key)
    this.#material.set(key.arn, material)
  }

  /** The state file's text. It holds key material, so the file is written readable by its owner only. */
  save(path: string): void {
    const state = {
      format: STATE_FORMAT,
      version: STATE_VERSION,
      keys: [...this.#keys.values()].map((key) => ({
        keyId: key.keyId,
        region: key.region,
        keySpec: key.keySpec,
        description: key.description,
        creationDate: key.creationDate,
        multiRegion: key.multiRegion,
        primary: key.primary,
        materialId: key.materialId,
        state: key.state,
        deletionDate: key.deletionDate,
        pendingWindowInDays: key.pendingWindowInDays,
        material: exportMaterial(this.materialOf(key)),
      })),
      aliases: [...this.#aliases.values()],
    }
    // Write then rename, so a crash mid-write never leaves a half state file for the next start.
    const temporary = `${path}.${process.pid}.tmp`
    try {
      writeFileSync(temporary, JSON.stringify(state, null, 2), { mode: 0o600 })
      renameSync(temporary, path)
    } catch (error) {
      rmSync(temporary, { force: true })
      throw new ConfigurationError(
        `KMS emulator state file ${path} cannot be written (${systemProblem(error)}): its folder must exist and be writable by this process.`,
        { cause: error },
      )
    }
  }

  /** Load `path` if it exists. Keys and aliases get this store's account and partition. */
  load(path: string): void {
    if (!existsSync(path)) return
    let text: string
    try {
      text = readFileSync(path, 'utf8')
    } catch (error) {
      throw new ConfigurationError(`KMS emulator state file ${path} cannot be read (${systemProblem(error)}).`, { cause: error })
    }
    let state: any
    try {
      state = JSON.parse(text)
    } catch (error) {
      throw new ConfigurationError(`KMS emulator state file ${path} is not JSON; delete it to start empty.`, { cause: error })
    }
    if (state?.format !== STATE_FORMAT || state.version !== STATE_VERSION || !Array.isArray(state.keys) || !Array.isArray(state.aliases)) {
      throw new ConfigurationError(`${path} is not a version ${STATE_VERSION} KMS emulator state file; delete it to start empty.`)
    }
    for (const [index, stored] of (state.keys as any[]).entries()) {
      if (typeof stored?.keyId !== 'string' || typeof stored.region !== 'string' || !KEY_SPECS.includes(stored.keySpec)) {
        throw new ConfigurationError(`KMS emulator state file ${path}: key entry ${index} is malformed.`)
      }
      let material: KeyMaterial
      try {
        material = importMaterial(stored.keySpec, String(stored.material))
      } catch (error) {
        // The cause names the failing check only; the material itself is never put in a message.
        throw new ConfigurationError(`KMS emulator state file ${path}: the material of key entry ${index} does not load.`, { cause: error })
      }
      const key: EmulatedKey = {
        keyId: stored.keyId,
        region: stored.region,
        arn: this.keyArn(stored.region, stored.keyId),
        keySpec: stored.keySpec,
        description: String(stored.description ?? ''),
        creationDate: Number(stored.creationDate),
        multiRegion: stored.multiRegion === true,
        primary: stored.primary !== false,
        materialId: String(stored.materialId),
        state: ['Enabled', 'Disabled', 'PendingDeletion'].includes(stored.state) ? stored.state : 'Enabled',
        deletionDate: typeof stored.deletionDate === 'number' ? stored.deletionDate : undefined,
        pendingWindowInDays: typeof stored.pendingWindowInDays === 'number' ? stored.pendingWindowInDays : undefined,
      }
      this.#insert(key, material)
    }
    for (const [index, stored] of (state.aliases as any[]).entries()) {
      if (typeof stored?.aliasName !== 'string' || typeof stored.region !== 'string' || typeof stored.targetKeyId !== 'string') {
        throw new ConfigurationError(`KMS emulator state file ${path}: alias entry ${index} is malformed.`)
      }
      const alias: EmulatedAlias = {
        aliasName: stored.aliasName,
        region: stored.region,
        targetKeyId: stored.targetKeyId,
        creationDate: Number(stored.creationDate),
        lastUpdatedDate: stored.lastUpdatedDate === undefined ? undefined : Number(stored.lastUpdatedDate),
      }
      this.#aliases.set(this.aliasArn(alias.region, alias.aliasName), alias)
    }
  }
}

/** A file system or network error as its code and message (`EISDIR: illegal operation on a directory, read`). */
export function systemProblem(error: unknown): string {
  if (!(error instanceof Error)) return typeof error
  const { code } = error as { code?: unknown }
  return typeof code === 'string' && !error.message.includes(code) ? `${code}: ${error.message}` : error.message
}
