// The table configuration of an item encryptor, checked once at construction
// (spec: dynamodb-encryption-client/ddb-table-encryption-config.md, ddb-item-encryptor.md#initialization).
import { asMaterialsManager } from '../cmm/default.js'
import { positiveIntegerOption } from '../encrypt.js'
import { ConfigurationError } from '../errors.js'
import { LONE_SURROGATE_PROBLEM, loneSurrogateAt } from '../format/bytes.js'
import { checkOneSource, optionsObject } from '../option-names.js'
import { quoteIdentifier, quoteValue } from '../quote.js'
import { hex } from '../suites.js'
import type { Keyring, MaterialsManager } from '../types.js'
import { CRYPTO_ACTIONS, RESERVED_PREFIX, type CryptoAction } from './types.js'
import { objectKind } from '../format/context.js'

/** What happens to plaintext items (no `aws_dbe_head`/`aws_dbe_foot`) on read and write, for migrating a table. */
export type PlaintextPolicy =
  | 'FORBID_PLAINTEXT_WRITE_FORBID_PLAINTEXT_READ'
  | 'FORBID_PLAINTEXT_WRITE_ALLOW_PLAINTEXT_READ'
  | 'FORCE_PLAINTEXT_WRITE_ALLOW_PLAINTEXT_READ'

const PLAINTEXT_POLICIES: readonly PlaintextPolicy[] = [
  'FORBID_PLAINTEXT_WRITE_FORBID_PLAINTEXT_READ',
  'FORBID_PLAINTEXT_WRITE_ALLOW_PLAINTEXT_READ',
  'FORCE_PLAINTEXT_WRITE_ALLOW_PLAINTEXT_READ',
]

/** The DBE algorithm suites: 0x6701 adds an ECDSA P-384 signature to the HMAC recipient tags. */
export const DBE_SUITES = [0x6700, 0x6701] as const

/** Configuration of `new DynamoDbItemEncryptor(...)`: the table, its keys, an action per attribute, and the keyring or materials manager. */
export interface DynamoDbItemEncryptorConfig {
  /** The DynamoDB table the items live in. */
  readonly tableName: string
  /**
   * The name bound into every item (default `tableName`). Keep it when a table is restored under a new
   * physical name, so its items still decrypt.
   */
  readonly logicalTableName?: string | undefined
  /** The table's partition key attribute: `SIGN_ONLY` (or `SIGN_AND_INCLUDE_IN_ENCRYPTION_CONTEXT`), bound into every item. */
  readonly partitionKeyName: string
  /** The table's sort key attribute, if it has one; signed and bound as the partition key is. */
  readonly sortKeyName?: string | undefined
  /**
   * The action for every attribute items may have. The keys must be `SIGN_ONLY`, or
   * `SIGN_AND_INCLUDE_IN_ENCRYPTION_CONTEXT` when any attribute uses that action.
   * `DO_NOTHING` attributes must also be allowed unsigned.
   */
  readonly attributeActionsOnEncrypt: Readonly<Record<string, CryptoAction>>
  /** Attributes that are not signed: left out of the footer's signatures on decrypt. */
  readonly allowedUnsignedAttributes?: readonly string[] | undefined
  /** Attributes whose names start with this are not signed. */
  readonly allowedUnsignedAttributePrefix?: string | undefined
  /** Exactly one of `keyring` and `materialsManager`. Pass a caching manager to avoid a KMS call per item. */
  readonly keyring?: Keyring | undefined
  /** The materials manager that wraps and unwraps items' data keys, instead of `keyring` (a caching one, say). */
  readonly materialsManager?: MaterialsManager | undefined
  /** `0x6701` (default: HMAC tags and an ECDSA P-384 signature) or `0x6700` (HMAC tags only, faster). */
  readonly algorithmSuite?: 0x6700 | 0x6701 | undefined
  /** Default `FORBID_PLAINTEXT_WRITE_FORBID_PLAINTEXT_READ`. */
  readonly plaintextPolicy?: PlaintextPolicy | undefined
  /**
   * Refuse items with more wrapped data keys than this (1 to 255), on decrypt before any keyring runs, and on
   * encrypt. None by default. Set it when others can write the table: a KMS keyring tries every wrapped key that
   * names its key ARN, one KMS call each, and an item can carry 255.
   */
  readonly maxEncryptedDataKeys?: number | undefined
}

/** The validated configuration the encryptor works from. */
export interface TableConfig {
  readonly tableName: string
  readonly logicalTableName: string
  readonly partitionKeyName: string
  readonly sortKeyName: string | undefined
  readonly attributeActionsOnEncrypt: Readonly<Record<string, CryptoAction>>
  readonly allowedUnsignedAttributes: readonly string[]
  readonly allowedUnsignedAttributePrefix: string | undefined
  readonly materialsManager: MaterialsManager
  readonly algorithmSuite: 0x6700 | 0x6701 | undefined
  readonly plaintextPolicy: PlaintextPolicy
  readonly maxEncryptedDataKeys: number | undefined
  /** 2 when any attribute is SIGN_AND_INCLUDE_IN_ENCRYPTION_CONTEXT (spec: ddb-table-encryption-config.md#configuration-version). */
  readonly version: 1 | 2
}

// spec: DynamoDB table names are 3 to 255 of [A-Za-z0-9_.-]
const TABLE_NAME = /^[A-Za-z0-9_.-]{3,255}$/
const MAX_ATTRIBUTE_NAME_BYTES = 65_535
const KEY_NAME_MAX_BYTES = 255

function nameOption(field: string, value: unknown, maxBytes = MAX_ATTRIBUTE_NAME_BYTES): string {
  if (typeof value !== 'string' || value === '') throw new ConfigurationError(`DynamoDbItemEncryptor ${field} must be a non-empty string; got ${quoteValue(value)}.`)
  if (loneSurrogateAt(value) >= 0) throw new ConfigurationError(`DynamoDbItemEncryptor ${field} ${quoteIdentifier(value)} ${LONE_SURROGATE_PROBLEM}.`)
  const length = new TextEncoder().encode(value).length
  if (length > maxBytes) throw new ConfigurationError(`DynamoDbItemEncryptor ${field} is ${length} bytes of UTF-8; at most ${maxBytes} are allowed.`)
  if (value.startsWith(RESERVED_PREFIX)) {
    throw new ConfigurationError(`DynamoDbItemEncryptor ${field} ${quoteIdentifier(value)} uses the reserved prefix "${RESERVED_PREFIX}".`)
  }
  return value
}

/** Whether the decrypt side leaves `name` out of the signatures (spec: decrypt-item.md#signature-scope). */
export function isUnsigned(
  config: { readonly allowedUnsignedAttributes: readonly string[]; readonly allowedUnsignedAttributePrefix?: string | undefined },
  name: string,
): boolean {
  const prefix = config.allowedUnsignedAttributePrefix
  return config.allowedUnsignedAttributes.includes(name) || (prefix !== undefined && name.startsWith(prefix))
}

function actionsOption(value: unknown): Record<string, CryptoAction> {
  const kind = objectKind(value)
  if (kind !== 'Object') {
    throw new ConfigurationError(`DynamoDbItemEncryptor attributeActionsOnEncrypt must be a plain object of attribute name to crypto action; got ${kind}.`)
  }
  const actions: Record<string, CryptoAction> = Object.create(null)
  for (const [name, action] of Object.entries(value as Record<string, unknown>)) {
    nameOption(`attribute name`, name)
    if (!CRYPTO_ACTIONS.includes(action as CryptoAction)) {
      throw new ConfigurationError(`DynamoDbItemEncryptor: attribute ${quoteIdentifier(name)} has action ${String(action)}; use one of ${CRYPTO_ACTIONS.join(', ')}.`)
    }
    actions[name] = action as CryptoAction
  }
  return actions
}

function keyAction(actions: Record<string, CryptoAction>, role: string, name: string, version: 1 | 2): void {
  const expected: CryptoAction = version === 2 ? 'SIGN_AND_INCLUDE_IN_ENCRYPTION_CONTEXT' : 'SIGN_ONLY'
  if (actions[name] !== expected) {
    throw new ConfigurationError(
      `DynamoDbItemEncryptor: the ${role} ${quoteIdentifier(name)} must be ${expected}` +
        (version === 2 ? ' (some attribute is SIGN_AND_INCLUDE_IN_ENCRYPTION_CONTEXT, so keys are too).' : ' (keys are signed, never encrypted).') +
        ` It is ${actions[name] ?? 'missing from attributeActionsOnEncrypt'}.`,
    )
  }
}

function materialsManagerOption(options: DynamoDbItemEncryptorConfig): MaterialsManager {
  const { keyring, materialsManager } = options
  checkOneSource('DynamoDbItemEncryptor', keyring, materialsManager)
  return asMaterialsManager(keyring ?? materialsManager)
}

/** Check every option and derive the configuration version; throws ConfigurationError naming the bad option. */
export function tableConfig(given: DynamoDbItemEncryptorConfig): TableConfig {
  if (typeof given !== 'object' || given === null) throw new ConfigurationError('DynamoDbItemEncryptor needs a configuration object.')
  const options = optionsObject(
    given,
    'DynamoDbItemEncryptor',
    'tableName, logicalTableName, partitionKeyName, sortKeyName, attributeActionsOnEncrypt, allowedUnsignedAttributes, allowedUnsignedAttributePrefix, keyring, materialsManager, algorithmSuite, plaintextPolicy, maxEncryptedDataKeys',
  )
  const tableName = options.tableName
  if (typeof tableName !== 'string' || !TABLE_NAME.test(tableName)) {
    throw new ConfigurationError(`DynamoDbItemEncryptor tableName must be a DynamoDB table name, 3 to 255 characters of A-Z a-z 0-9 _ . -; got ${quoteValue(tableName)}.`)
  }
  const logicalTableName = options.logicalTableName === undefined ? tableName : nameOption('logicalTableName', options.logicalTableName)
  const partitionKeyName = nameOption('partitionKeyName', options.partitionKeyName, KEY_NAME_MAX_BYTES)
  const sortKeyName = options.sortKeyName === undefined ? undefined : nameOption('sortKeyName', options.sortKeyName, KEY_NAME_MAX_BYTES)
  if (sortKeyName === partitionKeyName) throw new ConfigurationError('DynamoDbItemEncryptor sortKeyName must differ from partitionKeyName.')
  const actions = actionsOption(options.attributeActionsOnEncrypt)
  const version = Object.values(actions).includes('SIGN_AND_INCLUDE_IN_ENCRYPTION_CONTEXT') ? 2 : 1
  keyAction(actions, 'partition key', partitionKeyName, version)
  if (sortKeyName !== undefined) keyAction(actions, 'sort key', sortKeyName, version)

  const unsigned = options.allowedUnsignedAttributes ?? []
  if (!Array.isArray(unsigned)) {
    throw new ConfigurationError(`DynamoDbItemEncryptor allowedUnsignedAttributes must be an array of attribute names; got ${quoteValue(unsigned)}.`)
  }
  for (const name of unsigned) nameOption('allowedUnsignedAttributes entry', name)
  const prefix = options.allowedUnsignedAttributePrefix
  if (prefix !== undefined && (typeof prefix !== 'string' || prefix === '')) {
    throw new ConfigurationError(`DynamoDbItemEncryptor allowedUnsignedAttributePrefix must be a non-empty string; got ${quoteValue(prefix)}.`)
  }
  if (prefix !== undefined && (prefix.startsWith(RESERVED_PREFIX) || RESERVED_PREFIX.startsWith(prefix))) {
    throw new ConfigurationError(`DynamoDbItemEncryptor allowedUnsignedAttributePrefix must not overlap the reserved prefix "${RESERVED_PREFIX}".`)
  }
  const scope = { allowedUnsignedAttributes: unsigned as string[], allowedUnsignedAttributePrefix: prefix }
  // An attribute the writer signs but the reader would not check (or the reverse) could never decrypt.
  for (const [name, action] of Object.entries(actions)) {
    if (action === 'DO_NOTHING' && !isUnsigned(scope, name)) {
      throw new ConfigurationError(
        `DynamoDbItemEncryptor: attribute ${quoteIdentifier(name)} is DO_NOTHING, so it must also be in allowedUnsignedAttributes or start with allowedUnsignedAttributePrefix.`,
      )
    }
    if (action !== 'DO_NOTHING' && isUnsigned(scope, name)) {
      throw new ConfigurationError(
        `DynamoDbItemEncryptor: attribute ${quoteIdentifier(name)} is ${action} but allowed unsigned; signed attributes must not be in allowedUnsignedAttributes or match allowedUnsignedAttributePrefix.`,
      )
    }
  }

  const algorithmSuite = options.algorithmSuite
  if (algorithmSuite !== undefined && !(DBE_SUITES as readonly number[]).includes(algorithmSuite)) {
    const given = typeof algorithmSuite === 'number' ? hex(algorithmSuite) : quoteValue(algorithmSuite)
    throw new ConfigurationError(`DynamoDbItemEncryptor algorithmSuite must be 0x6700 or 0x6701 (the DynamoDB item suites); got ${given}.`)
  }
  const plaintextPolicy = options.plaintextPolicy ?? 'FORBID_PLAINTEXT_WRITE_FORBID_PLAINTEXT_READ'
  if (!PLAINTEXT_POLICIES.includes(plaintextPolicy)) {
    throw new ConfigurationError(`DynamoDbItemEncryptor plaintextPolicy must be one of ${PLAINTEXT_POLICIES.join(', ')}; got ${quoteValue(plaintextPolicy)}.`)
  }
  return Object.freeze({
    tableName,
    logicalTableName,
    partitionKeyName,
    sortKeyName,
    attributeActionsOnEncrypt: Object.freeze(actions),
    allowedUnsignedAttributes: Object.freeze([...unsigned]),
    allowedUnsignedAttributePrefix: prefix,
    materialsManager: materialsManagerOption(options),
    algorithmSuite,
    plaintextPolicy,
    // An item header counts its data keys in one byte.
    maxEncryptedDataKeys: positiveIntegerOption('DynamoDbItemEncryptor maxEncryptedDataKeys', options.maxEncryptedDataKeys, 255),
    version,
  })
}
