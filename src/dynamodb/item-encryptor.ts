// Encrypt and decrypt one DynamoDB item (spec: dynamodb-encryption-client/encrypt-item.md, decrypt-item.md,
// ddb-item-conversion.md), on top of the structured-encryption core.
import { abortable, abortSignalOption, ownSignal } from '../abort.js'
import { ConfigurationError } from '../errors.js'
import { optionsObject } from '../option-names.js'
import { loadOnce } from '../load-on-demand.js'
import { toBase64 } from '../backend/der.js'
import type { EncryptionContext } from '../types.js'
import { quoteIdentifier } from '../quote.js'
import { TYPE_ID, deserializeAttribute, serializeAttribute } from './attributes/index.js'
import { BASE64_BINARIES, MAX_DEPTH } from './attributes/serialize.js'
import { tableConfig, isUnsigned, type DynamoDbItemEncryptorConfig, type TableConfig } from './config.js'
import { InvalidItemError, MalformedItemError } from './errors.js'
import { decryptStructure, encryptStructure, type ItemBackend, type ParsedHeader, type StructuredField } from './structured/index.js'
import { FOOTER_ATTRIBUTE, HEADER_ATTRIBUTE, RESERVED_PREFIX, type AttributeValue, type CryptoAction, type Item, type ItemCallOptions, type ItemInput, type ObjectMarshallOptions, type ObjectUnmarshallOptions, type Terminal } from './types.js'
import { isBytes } from '../is-bytes.js'

/** An item with what its header says: suite, data keys, contexts and each signed attribute's action. */
export interface ItemWithHeader {
  /** The encrypted item (`encryptItemWithHeader`) or the decrypted one (`decryptItemWithHeader`). */
  readonly item: Item
  /** Undefined when a plaintext policy let a plaintext item through unencrypted. */
  readonly parsedHeader: (ParsedHeader & { readonly attributeActions: Readonly<Record<string, CryptoAction>> }) | undefined
}

/** spec: encrypt-item.md#base-context-value-version-1: base64 of the two type-ID bytes and the serialized value. */
function versionOneValue(terminal: Terminal): string {
  const bytes = new Uint8Array(2 + terminal.value.length)
  bytes[0] = terminal.typeId >> 8
  bytes[1] = terminal.typeId & 0xff
  bytes.set(terminal.value, 2)
  return toBase64(bytes)
}

type KeyRole = 'partition key' | 'sort key'

/** DynamoDB's largest key values, in bytes (of a string's UTF-8 or of binary). */
const KEY_VALUE_MAX_BYTES: Readonly<Record<KeyRole, number>> = { 'partition key': 2048, 'sort key': 1024 }

function keyTerminal(item: Item, name: string, role: KeyRole, errorType: typeof InvalidItemError | typeof MalformedItemError): Terminal {
  const value = item[name]
  if (value === undefined) throw new errorType(`The item has no ${role} attribute ${quoteIdentifier(name)}.`)
  const terminal = errorType === MalformedItemError ? storedAttribute(value, name) : serializeAttribute(value, name)
  // An item to encrypt whose key DynamoDB would refuse is refused before any keyring runs (the PutItem would fail
  // after them); a stored item's key was DynamoDB's to check.
  if (errorType === InvalidItemError) checkKeyValue(terminal, Object.keys(value)[0]!, name, role)
  return terminal
}

/** A stored item's attribute, serialized: a value DynamoDB would not hold is a malformed item, not the caller's error. */
function storedAttribute(value: AttributeValue, name: string): Terminal {
  try {
    return serializeAttribute(value, name)
  } catch (error) {
    if (error instanceof InvalidItemError) throw new MalformedItemError(`The stored item's ${error.message}`, { cause: error })
    throw error
  }
}

/** A key attribute's value as DynamoDB takes it: a string, number or binary, not empty, of at most its size. */
function checkKeyValue({ typeId, value }: Terminal, type: string, name: string, role: KeyRole): void {
  const what = `The ${role} ${quoteIdentifier(name)}`
  if (typeId !== TYPE_ID.S && typeId !== TYPE_ID.N && typeId !== TYPE_ID.B) {
    throw new InvalidItemError(`${what} is of type ${type}; DynamoDB key attributes are strings (S), numbers (N) or binary (B).`)
  }
  if (value.length === 0) throw new InvalidItemError(`${what} is empty; DynamoDB key values are at least 1 byte.`)
  if (value.length > KEY_VALUE_MAX_BYTES[role]) {
    throw new InvalidItemError(`${what} is ${value.length} bytes; DynamoDB allows at most ${KEY_VALUE_MAX_BYTES[role]} for a ${role}.`)
  }
}

function isPlaintextItem(item: Item): boolean {
  return item[HEADER_ATTRIBUTE] === undefined && item[FOOTER_ATTRIBUTE] === undefined
}

/**
 * What the Node and browser builds' `DynamoDbItemEncryptor` share: each gives it the crypto of its platform (an
 * `ItemBackend`).
 */
export class ItemEncryptorCore {
  /** The configuration as checked, defaults filled in. */
  readonly config: TableConfig
  readonly #backend: ItemBackend

  constructor(options: DynamoDbItemEncryptorConfig, backend: ItemBackend) {
    this.config = tableConfig(options)
    this.#backend = backend
  }

  /** The DynamoDB table the items live in. */
  get tableName(): string {
    return this.config.tableName
  }
  /** The table's partition key attribute. */
  get partitionKeyName(): string {
    return this.config.partitionKeyName
  }
  /** The table's sort key attribute, if it has one. */
  get sortKeyName(): string | undefined {
    return this.config.sortKeyName
  }
  /** The action for each attribute. */
  get attributeActionsOnEncrypt(): Readonly<Record<string, CryptoAction>> {
    return this.config.attributeActionsOnEncrypt
  }
  /** Attributes that are not signed (none by default). */
  get allowedUnsignedAttributes(): readonly string[] {
    return this.config.allowedUnsignedAttributes
  }
  /** Attributes whose names start with this are not signed. */
  get allowedUnsignedAttributePrefix(): string | undefined {
    return this.config.allowedUnsignedAttributePrefix
  }

  /** spec: encrypt-item.md#dynamodb-item-base-context */
  #baseContext(item: Item, version: number, errorType: typeof InvalidItemError | typeof MalformedItemError): EncryptionContext {
    const { logicalTableName, partitionKeyName, sortKeyName } = this.config
    const context: EncryptionContext = { 'aws-crypto-table-name': logicalTableName, 'aws-crypto-partition-name': partitionKeyName }
    const partition = keyTerminal(item, partitionKeyName, 'partition key', errorType)
    if (version === 1) context[`aws-crypto-attr.${partitionKeyName}`] = versionOneValue(partition)
    if (sortKeyName !== undefined) {
      const sort = keyTerminal(item, sortKeyName, 'sort key', errorType)
      context['aws-crypto-sort-name'] = sortKeyName
      if (version === 1) context[`aws-crypto-attr.${sortKeyName}`] = versionOneValue(sort)
    }
    return context
  }

  /** Encrypt and sign `item`; see {@link encryptItemWithHeader} for the header. */
  async encryptItem(item: ItemInput, options?: ItemCallOptions): Promise<Item> {
    return (await this.#call('encryptItem', options, (signal) => this.#encrypt(item as Item, signal))).item
  }

  /** As `encryptItem`, also returning the item's parsed header (its suite, message ID, wrapped data keys, encryption context and attribute actions). */
  async encryptItemWithHeader(item: ItemInput, options?: ItemCallOptions): Promise<ItemWithHeader> {
    return this.#call('encryptItemWithHeader', options, (signal) => this.#encrypt(item as Item, signal))
  }

  /** Run `work` under the call's `signal` option, if any (see `abortable`). */
  #call<T>(call: string, options: ItemCallOptions | undefined, work: (signal: AbortSignal | undefined) => Promise<T>): Promise<T> {
    const signal = abortSignalOption(optionsObject(options, call, 'signal').signal)
    return signal === undefined ? work(undefined) : abortable(signal, call, () => work(signal))
  }

  async #encrypt(item: Item, signal: AbortSignal | undefined): Promise<ItemWithHeader> {
    checkItemObject(item, InvalidItemError)
    const config = this.config
    if (config.plaintextPolicy === 'FORCE_PLAINTEXT_WRITE_ALLOW_PLAINTEXT_READ') return { item: { ...item }, parsedHeader: undefined }
    const fields: StructuredField[] = []
    for (const [name, value] of Object.entries(item)) {
      if (name.startsWith(RESERVED_PREFIX)) {
        throw new InvalidItemError(`The item has attribute ${quoteIdentifier(name)}: names starting with "${RESERVED_PREFIX}" are reserved for the encryptor.`)
      }
      // An attribute the actions do not name may still be left alone if it is allowed unsigned.
      const action = config.attributeActionsOnEncrypt[name] ?? (isUnsigned(config, name) ? 'DO_NOTHING' : undefined)
      if (action === undefined) {
        throw new InvalidItemError(
          `The item has attribute ${quoteIdentifier(name)}, which attributeActionsOnEncrypt does not name and which is not allowed unsigned: ` +
            'give it an action, or list it in allowedUnsignedAttributes.',
        )
      }
      fields.push({ name, terminal: serializeAttribute(value, name), action })
    }
    for (const [name, action] of Object.entries(config.attributeActionsOnEncrypt)) {
      if (action === 'SIGN_AND_INCLUDE_IN_ENCRYPTION_CONTEXT' && item[name] === undefined) {
        throw new InvalidItemError(`The item has no attribute ${quoteIdentifier(name)}, which is SIGN_AND_INCLUDE_IN_ENCRYPTION_CONTEXT and so required.`)
      }
    }
    const encryptionContext = this.#baseContext(item, config.version, InvalidItemError)
    const result = await encryptStructure({
      tableName: config.logicalTableName,
      fields,
      materialsManager: config.materialsManager,
      // spec: the base context's keys are required (bound, not stored)
      requiredContextKeys: Object.keys(encryptionContext),
      backend: this.#backend,
      ...(config.algorithmSuite === undefined ? {} : { algorithmSuiteId: config.algorithmSuite }),
      encryptionContext,
      maxEncryptedDataKeys: config.maxEncryptedDataKeys,
      signal,
    })
    // Entries, not assignments: an attribute may be named "__proto__", which an assignment would make the prototype.
    const output: Record<string, AttributeValue> = Object.fromEntries(
      [...result.fields].map(([name, terminal]) => {
        // Encrypted attributes, the header and the footer are binary; the others keep the caller's own value.
        const original = item[name]
        return [name, original === undefined || result.cryptoActions[name] === 'ENCRYPT_AND_SIGN' ? { B: terminal.value } : original]
      }),
    )
    return { item: output, parsedHeader: { ...result.parsedHeader, attributeActions: result.cryptoActions } }
  }

  /**
   * Encrypt a plain JavaScript object (as `@aws-sdk/lib-dynamodb` takes them: strings, numbers, booleans, null,
   * Uint8Array, Set, arrays, objects). Returns the stored item as a plain object too: encrypted attributes and
   * the header and footer are Uint8Array. Needs the optional peer dependency `@aws-sdk/util-dynamodb`.
   */
  async encryptObject(object: Record<string, unknown>, options?: ObjectMarshallOptions): Promise<Record<string, unknown>> {
    const { signal: _taken, ...rest } = options ?? {} // the conversion options, without the signal
    const signal = ownSignal(options) as AbortSignal | undefined
    const { marshall, unmarshall } = await loadMarshalling()
    checkConvertible(object, 'encryptObject', InvalidItemError)
    // An option given as undefined keeps its default, here as everywhere in kms-envelope.
    const marshallOptions = { ...rest, removeUndefinedValues: rest.removeUndefinedValues ?? true } as Parameters<typeof marshall>[1]
    const item = converted(() => marshall(object, marshallOptions) as Item, InvalidItemError, 'encryptObject', 'the object to a DynamoDB item')
    const { item: stored } = await this.#call('encryptObject', { signal }, (checked) => this.#encrypt(item, checked))
    return converted(() => unmarshall(stored as never), InvalidItemError, 'encryptObject', 'the stored item back to an object')
  }

  /** Decrypt a stored item given as a plain object (what the document client returns) back to a plain object. */
  async decryptObject(object: Record<string, unknown>, options?: ObjectUnmarshallOptions): Promise<Record<string, unknown>> {
    const { signal: _taken, ...unmarshallOptions } = options ?? {} // the conversion options, without the signal
    const signal = ownSignal(options) as AbortSignal | undefined
    const { marshall, unmarshall } = await loadMarshalling()
    checkConvertible(object, 'decryptObject', MalformedItemError)
    const item = converted(() => marshall(object, { convertClassInstanceToMap: false }) as Item, MalformedItemError, 'decryptObject', 'the object to a DynamoDB item')
    const { item: decrypted } = await this.#call('decryptObject', { signal }, (checked) => this.#decrypt(item, checked))
    const dropped = protoKeyPath(decrypted, 'item')
    if (dropped !== undefined) {
      throw new InvalidItemError(
        `decryptObject: ${dropped} has a key "__proto__", which @aws-sdk/util-dynamodb would leave out of the object without a word: read it with decryptItem.`,
      )
    }
    return converted(() => unmarshall(decrypted as never, unmarshallOptions as Parameters<typeof unmarshall>[1]), InvalidItemError, 'decryptObject', 'the decrypted item to an object')
  }

  /** Verify and decrypt `item`; fails with a typed error, returning nothing, if any signed attribute changed. */
  async decryptItem(item: ItemInput, options?: ItemCallOptions): Promise<Item> {
    return (await this.#call('decryptItem', options, (signal) => this.#decrypt(item as Item, signal))).item
  }

  /** As `decryptItem`, also returning the item's parsed header (its suite, message ID, wrapped data keys, encryption context and attribute actions). */
  async decryptItemWithHeader(item: ItemInput, options?: ItemCallOptions): Promise<ItemWithHeader> {
    return this.#call('decryptItemWithHeader', options, (signal) => this.#decrypt(item as Item, signal))
  }

  async #decrypt(item: Item, signal: AbortSignal | undefined): Promise<ItemWithHeader> {
    checkItemObject(item, MalformedItemError)
    const config = this.config
    if (isPlaintextItem(item)) {
      if (config.plaintextPolicy !== 'FORBID_PLAINTEXT_WRITE_FORBID_PLAINTEXT_READ') return { item: { ...item }, parsedHeader: undefined }
      throw new MalformedItemError(
        `The item has neither ${HEADER_ATTRIBUTE} nor ${FOOTER_ATTRIBUTE}: it was not encrypted (set a plaintextPolicy that allows plaintext reads while migrating a table).`,
      )
    }
    const header = item[HEADER_ATTRIBUTE]
    if (header === undefined || !('B' in header) || !isBytes(header.B) || header.B.length === 0) {
      const text = header !== undefined && 'B' in header && typeof header.B === 'string'
      throw new MalformedItemError(
        `The item's ${HEADER_ATTRIBUTE} attribute must be a non-empty binary value` +
          (text ? `; it holds a string: ${BASE64_BINARIES}. Convert the item with itemFromDynamoDbJson first (it decodes every B and BS value).` : '.'),
      )
    }
    const version = header.B[0]
    if (version !== 1 && version !== 2) throw new MalformedItemError(`The item's header has version ${version}; versions 1 and 2 exist.`)
    const encryptionContext = this.#baseContext(item, version, MalformedItemError)
    const fields = new Map<string, Terminal>()
    for (const [name, value] of Object.entries(item)) fields.set(name, storedAttribute(value, name))
    const result = await decryptStructure({
      tableName: config.logicalTableName,
      fields,
      authenticate: (name) => (isUnsigned(config, name) ? 'DO_NOT_SIGN' : 'SIGN'),
      materialsManager: config.materialsManager,
      // spec: the base context's keys are required (bound, not stored)
      requiredContextKeys: Object.keys(encryptionContext),
      backend: this.#backend,
      encryptionContext,
      maxEncryptedDataKeys: config.maxEncryptedDataKeys,
      signal,
    })
    // Entries, not assignments: an attribute may be named "__proto__" (see encryptItemWithHeader).
    const output: Record<string, AttributeValue> = Object.fromEntries(
      [...result.fields].map(([name, terminal]) => [
        name,
        result.cryptoActions[name] === 'ENCRYPT_AND_SIGN' ? deserializeAttribute(terminal) : (item[name] as AttributeValue),
      ]),
    )
    return { item: output, parsedHeader: { ...result.parsedHeader, attributeActions: result.cryptoActions } }
  }
}

/** `@aws-sdk/util-dynamodb` (an optional peer dependency), loaded on first use. */
const loadMarshalling = /* @__PURE__ */ loadOnce(
  // The `.catch` on the import itself: an application bundled with esbuild that never calls encryptObject builds
  // without the package installed (see kms-commands.ts).
  () =>
    import('@aws-sdk/util-dynamodb')
      .catch((error: unknown) => {
        throw error
      })
      .then((module) => {
        // A bundler told the package is absent (webpack's `resolve.fallback: { '@aws-sdk/util-dynamodb': false }`)
        // loads an empty module, whose missing marshall would otherwise fail as if the object could not be converted.
        if (typeof module?.marshall !== 'function' || typeof module.unmarshall !== 'function') {
          throw new Error('The module that loaded as @aws-sdk/util-dynamodb has no marshall and unmarshall: a bundler left it out.')
        }
        return module
      }),
  (error) =>
    new ConfigurationError('encryptObject/decryptObject could not load @aws-sdk/util-dynamodb (see cause), an optional peer dependency: `npm install` it if missing.', {
      cause: error,
    }),
)

/**
 * Why `@aws-sdk/util-dynamodb` refused a conversion, from its message, in words that do not quote the value: its own
 * messages do (a number, a date), and the value may be an attribute meant to be encrypted, or one just decrypted.
 */
function conversionReason(error: unknown): string {
  const message = error instanceof Error ? String(error.message) : ''
  if (/SAFE_INTEGER|BigInt|imprecise number/.test(message)) {
    return "a number JavaScript cannot hold exactly (pass a BigInt or @aws-sdk/lib-dynamodb's NumberValue; to read one, the option wrapNumbers: true)"
  }
  if (/^Special numeric value/.test(message)) return 'NaN or an infinite number, which DynamoDB cannot store'
  if (/non-empty set/.test(message)) return 'an empty Set (or pass the option convertEmptyValues: true)'
  if (/removeUndefinedValues/.test(message)) return 'undefined in an object, array or Set (encryptObject drops such values unless its option removeUndefinedValues is false)'
  if (/^Unsupported type passed|^Only Number Set|Symbol/.test(message)) {
    return 'a value of a type it does not take: a Symbol, a Date, a class instance (or pass the option convertClassInstanceToMap: true), or a Set of other values than numbers, strings or binaries'
  }
  return 'a value it does not take'
}

/**
 * `convert` (a call of `@aws-sdk/util-dynamodb`'s `marshall` or `unmarshall`), its failure an `errorType` that says
 * why without its message, which quotes the value, and without it as the cause, which logs print too.
 */
function converted<T>(convert: () => T, errorType: typeof InvalidItemError | typeof MalformedItemError, method: string, what: string): T {
  try {
    return convert()
  } catch (error) {
    throw new errorType(`${method}: @aws-sdk/util-dynamodb cannot convert ${what}: ${conversionReason(error)}. (Its own message is left out: it quotes the value.)`)
  }
}

/**
 * Refuse a plain object @aws-sdk/util-dynamodb would convert wrongly: one holding what it leaves out of an item
 * without a word (in its objects, arrays, Sets and Maps: a function, or a key "__proto__", a legal attribute
 * name), and, before its recursion overflows the stack, lists and maps nested deeper than DynamoDB takes or an
 * object that holds itself. `errorType` is the error of those two.
 */
function checkConvertible(object: unknown, method: string, errorType: typeof InvalidItemError | typeof MalformedItemError): void {
  const silently = `which @aws-sdk/util-dynamodb would leave out of the item without a word`
  const checked = new Set<object>() // a value held twice (not a cycle) is walked once
  const enclosing = new Map<object, string>()
  // `level` counts lists and maps: the item is level 0, an attribute's list or map level 1.
  const walk = (value: unknown, path: string, level: number): void => {
    if (typeof value === 'function') throw new InvalidItemError(`${method}: ${path} is a function, ${silently}.`)
    if (typeof value !== 'object' || value === null || ArrayBuffer.isView(value) || checked.has(value)) return
    const holder = enclosing.get(value)
    if (holder !== undefined) throw new errorType(`${method}: ${path} is ${holder}, which holds it: an item cannot contain itself.`)
    const isSet = value instanceof Set
    if (!isSet && level > MAX_DEPTH) throw new errorType(`${method}: ${path} nests lists and maps more than ${MAX_DEPTH} levels deep, which DynamoDB refuses.`)
    if (value instanceof Map ? value.has('__proto__') : !isSet && Object.prototype.hasOwnProperty.call(value, '__proto__')) {
      throw new InvalidItemError(`${method}: ${path} has a key "__proto__", ${silently}.`)
    }
    enclosing.set(value, path)
    const entries = value instanceof Map || isSet ? [...value.entries()] : Object.entries(value)
    for (const [key, inner] of entries) walk(inner, isSet ? `${path} (a Set member)` : `${path}.${String(key)}`, isSet ? level : level + 1)
    enclosing.delete(value)
    checked.add(value)
  }
  walk(object, 'object', 0)
}

/** Where a DynamoDB item (its attribute names, and the keys of its maps at any depth) has a key "__proto__". */
function protoKeyPath(item: Item, path: string): string | undefined {
  if (Object.prototype.hasOwnProperty.call(item, '__proto__')) return path
  for (const [name, value] of Object.entries(item)) {
    const found = protoKeyInValue(value, `${path}.${name}`)
    if (found !== undefined) return found
  }
  return undefined
}

function protoKeyInValue(value: AttributeValue, path: string): string | undefined {
  if ('M' in value && value.M !== undefined) return protoKeyPath(value.M, `${path}.M`)
  if ('L' in value && value.L !== undefined) {
    for (const [index, entry] of value.L.entries()) {
      const found = protoKeyInValue(entry, `${path}.L[${index}]`)
      if (found !== undefined) return found
    }
  }
  return undefined
}

function checkItemObject(item: unknown, errorType: typeof InvalidItemError | typeof MalformedItemError): void {
  if (typeof item !== 'object' || item === null || Array.isArray(item)) {
    throw new errorType('An item must be an object of attribute name to DynamoDB attribute value ({ S: ... }, { N: ... }, ...).')
  }
}
