// What the encrypted client does to each DynamoDB operation's request and response, on the JSON bodies.
// spec: dynamodb-encryption-client/ddb-sdk-integration.md (searchable encryption and legacy items are out of scope)
import { countOf, nounFor } from '../../byte-count.js'
import { quoteIdentifier } from '../../quote.js'
import { quoteList } from '../../quote-list.js'
import { isUnsigned } from '../config.js'
import { InvalidItemError, ItemAuthenticationError, MalformedItemError, UnsupportedRequestError } from '../errors.js'
import { FOOTER_ATTRIBUTE, HEADER_ATTRIBUTE, RESERVED_PREFIX, type CryptoAction, type Item, type ItemCallOptions } from '../types.js'
import { referencedAttributes } from './expressions.js'
import { fromWireItem, toWireItem, type WireItem } from './wire.js'

/** What the client needs of a table's item encryptor (`DynamoDbItemEncryptor` is one). */
export interface TableItemEncryptor {
  /** The table whose requests it handles. */
  readonly tableName: string
  /** The table's partition key attribute (a key condition may name it). */
  readonly partitionKeyName: string
  /** The table's sort key attribute, if any. */
  readonly sortKeyName?: string | undefined
  /** The action for each attribute: expressions on encrypted attributes are refused. */
  readonly attributeActionsOnEncrypt: Readonly<Record<string, CryptoAction>>
  /** Attributes that are not signed: updates may change them. */
  readonly allowedUnsignedAttributes: readonly string[]
  /** Attributes whose names start with this are not signed. */
  readonly allowedUnsignedAttributePrefix?: string | undefined
  /** Encrypts an item before it is written. */
  encryptItem(item: Item, options?: ItemCallOptions): Promise<Item>
  /** Decrypts an item DynamoDB returned. */
  decryptItem(item: Item, options?: ItemCallOptions): Promise<Item>
}

export type Tables = ReadonlyMap<string, TableItemEncryptor>

/** A table's ARN (DynamoDB takes one wherever it takes a table name), the table's name in its first group. */
const TABLE_ARN = /^arn:[^:]*:dynamodb:[^:]*:[^:]*:table\/([^/]+)/

/**
 * The encryptor of the table a request names, by name or by ARN (`arn:aws:dynamodb:…:table/orders`), in any
 * account and Region: a configured table's items are never written in plaintext because the request named the
 * table another way.
 */
function tableNamed(tables: Tables, name: unknown): TableItemEncryptor | undefined {
  if (typeof name !== 'string') return undefined
  const arn = TABLE_ARN.exec(name)
  return tables.get(name) ?? (arn === null ? undefined : tables.get(arn[1] as string))
}

/**
 * The tables' encryptors, each calling with `signal` (the SDK call's `abortSignal`): an aborted DynamoDB call
 * ends at once, and cancels the KMS requests its items' data keys need. Without a signal, the tables as they are.
 */
export function withSignal(tables: Tables, signal: AbortSignal | undefined): Tables {
  if (signal === undefined) return tables
  const options = { signal }
  return new Map(
    [...tables].map(([name, encryptor]): [string, TableItemEncryptor] => [
      name,
      {
        tableName: encryptor.tableName,
        partitionKeyName: encryptor.partitionKeyName,
        sortKeyName: encryptor.sortKeyName,
        attributeActionsOnEncrypt: encryptor.attributeActionsOnEncrypt,
        allowedUnsignedAttributes: encryptor.allowedUnsignedAttributes,
        allowedUnsignedAttributePrefix: encryptor.allowedUnsignedAttributePrefix,
        encryptItem: (item) => encryptor.encryptItem(item, options),
        decryptItem: (item) => encryptor.decryptItem(item, options),
      },
    ]),
  )
}
type Json = Record<string, any>

/** Request-side state a response needs (e.g. the plaintext of items DynamoDB left unprocessed). */
export interface RequestState {
  /** The plaintext of each batch put, by its encrypted header (base64, as sent). */
  readonly originals: Map<string, WireItem>
  readonly transactGetTables: (string | undefined)[]
}

function refuse(table: string, operation: string, message: string): never {
  throw new UnsupportedRequestError(`${operation} on encrypted table ${quoteIdentifier(table)}: ${message}`)
}

function refuseLegacy(input: Json, table: string, operation: string, fields: readonly string[]): void {
  for (const field of fields) {
    if (input[field] !== undefined) refuse(table, operation, `${field} is not supported; use the expression parameters instead.`)
  }
}

function encryptedAttributes(encryptor: TableItemEncryptor): Set<string> {
  return new Set(Object.entries(encryptor.attributeActionsOnEncrypt).filter(([, action]) => action === 'ENCRYPT_AND_SIGN').map(([name]) => name))
}

/** spec: ddb-support.md#testconditionexpression: no operand may be an encrypted attribute. */
function checkCondition(encryptor: TableItemEncryptor, operation: string, expression: string | undefined, names: Json | undefined, what = 'ConditionExpression'): void {
  const encrypted = encryptedAttributes(encryptor)
  for (const name of referencedAttributes(expression, names)) {
    if (encrypted.has(name)) refuse(encryptor.tableName, operation, `${what} uses ${quoteIdentifier(name)}, which is encrypted (ENCRYPT_AND_SIGN); DynamoDB cannot compare ciphertext.`)
  }
}

/** spec: ddb-support.md#testupdateexpression: an update may only touch attributes outside the signatures. */
function checkUpdate(encryptor: TableItemEncryptor, operation: string, expression: string | undefined, names: Json | undefined): void {
  for (const name of referencedAttributes(expression, names)) {
    if (name.startsWith(RESERVED_PREFIX) || !isUnsigned(encryptor, name)) {
      refuse(
        encryptor.tableName,
        operation,
        `UpdateExpression names ${quoteIdentifier(name)}, which is signed (every attribute but those allowed unsigned): ` +
          'an update may name only unsigned attributes; write the whole item with PutItem instead.',
      )
    }
  }
}

/** A projection that leaves out the header, the footer or a signed attribute would make every item fail to decrypt. */
function checkProjection(encryptor: TableItemEncryptor, operation: string, request: Json): void {
  refuseLegacy(request, encryptor.tableName, operation, ['AttributesToGet'])
  if (request.ProjectionExpression === undefined) return
  const projected = referencedAttributes(request.ProjectionExpression, request.ExpressionAttributeNames)
  const needed = [HEADER_ATTRIBUTE, FOOTER_ATTRIBUTE, ...Object.keys(encryptor.attributeActionsOnEncrypt).filter((name) => !isUnsigned(encryptor, name))]
  const missing = needed.filter((name) => !projected.has(name))
  if (missing.length > 0) {
    refuse(encryptor.tableName, operation, `ProjectionExpression must include ${quoteList(missing)}: items are verified as a whole.`)
  }
}

function writable(encryptor: TableItemEncryptor, operation: string, item: WireItem): void {
  for (const name of Object.keys(item)) {
    // spec: ddb-support.md#writable
    if (name.startsWith(RESERVED_PREFIX)) throw new InvalidItemError(`${operation} on ${quoteIdentifier(encryptor.tableName)}: attribute ${quoteIdentifier(name)} uses the reserved prefix "${RESERVED_PREFIX}".`)
  }
}

async function encryptWire(encryptor: TableItemEncryptor, operation: string, item: WireItem): Promise<WireItem> {
  writable(encryptor, operation, item)
  return toWireItem(await encryptor.encryptItem(fromWireItem(item)))
}

async function decryptWire(encryptor: TableItemEncryptor, item: WireItem): Promise<WireItem> {
  return toWireItem(await encryptor.decryptItem(fromWireItem(item)))
}

/**
 * Decrypt an item a Query or Scan returned. Through a secondary index, an item that cannot be verified usually
 * means the index does not project what verification needs, and the plain error (a missing header suggests a
 * plaintext item) would mislead: say so, keeping the error's class and code.
 */
async function decryptRead(encryptor: TableItemEncryptor, operation: string, indexName: unknown, item: WireItem): Promise<WireItem> {
  if (typeof indexName !== 'string') return decryptWire(encryptor, item)
  try {
    return await decryptWire(encryptor, item)
  } catch (error) {
    if (!(error instanceof MalformedItemError || error instanceof ItemAuthenticationError)) throw error
    const ErrorClass = error instanceof MalformedItemError ? MalformedItemError : ItemAuthenticationError
    throw new ErrorClass(
      `${operation} on ${quoteIdentifier(encryptor.tableName)} through index ${quoteIdentifier(indexName)} returned an item that cannot be verified: ` +
        `an index must project ${HEADER_ATTRIBUTE}, ${FOOTER_ATTRIBUTE} and every signed attribute (projection ALL) for its items to be decrypted. ` +
        `(${error.message})`,
      { cause: error },
    )
  }
}

/** A table name as a regular expression's source: table names are letters, digits, "_", "-" and ".". */
export function tableNamePattern(name: string): string {
  return name.replace(/\./g, '\\.')
}

function checkPartiql(tables: Tables, operation: string, statements: readonly (string | undefined)[]): void {
  for (const statement of statements) {
    for (const table of tables.keys()) {
      // A table name appears in PartiQL as an identifier, possibly quoted: refuse any whole-word mention. In any case:
      // PartiQL's unquoted identifiers are case-insensitive, and whether DynamoDB resolves them so is not documented.
      if (statement !== undefined && new RegExp(`(^|[^A-Za-z0-9_.-])${tableNamePattern(table)}($|[^A-Za-z0-9_.-])`, 'i').test(statement)) {
        refuse(table, operation, 'PartiQL statements on encrypted tables are not supported; use the item operations.')
      }
    }
  }
}

/**
 * An encrypted item's header, as base64 on the wire: unique to each encryption (it holds a random message ID), so it
 * finds a batch's item again whatever order DynamoDB lists its attributes in when it hands the item back unprocessed.
 */
function headerOf(item: Json | undefined): string | undefined {
  const header = (item?.[HEADER_ATTRIBUTE] as Json | undefined)?.B
  return typeof header === 'string' ? header : undefined
}

/** Check and transform a request body in place; returns what the response needs. */
export async function transformRequest(operation: string, input: Json, tables: Tables): Promise<RequestState> {
  const state: RequestState = { originals: new Map(), transactGetTables: [] }
  const table = (name: unknown) => tableNamed(tables, name)
  const single = table(input.TableName)
  switch (operation) {
    case 'PutItem':
      if (single === undefined) break
      refuseLegacy(input, single.tableName, operation, ['Expected', 'ConditionalOperator'])
      checkCondition(single, operation, input.ConditionExpression, input.ExpressionAttributeNames)
      input.Item = await encryptWire(single, operation, input.Item ?? {})
      break
    case 'UpdateItem':
      if (single === undefined) break
      refuseLegacy(input, single.tableName, operation, ['Expected', 'AttributeUpdates', 'ConditionalOperator'])
      checkUpdate(single, operation, input.UpdateExpression, input.ExpressionAttributeNames)
      checkCondition(single, operation, input.ConditionExpression, input.ExpressionAttributeNames)
      break
    case 'DeleteItem':
      if (single === undefined) break
      refuseLegacy(input, single.tableName, operation, ['Expected', 'ConditionalOperator'])
      checkCondition(single, operation, input.ConditionExpression, input.ExpressionAttributeNames)
      break
    case 'GetItem':
      if (single !== undefined) checkProjection(single, operation, input)
      break
    case 'Query':
    case 'Scan':
      if (single === undefined) break
      refuseLegacy(input, single.tableName, operation, ['KeyConditions', 'QueryFilter', 'ScanFilter', 'ConditionalOperator'])
      checkCondition(single, operation, input.KeyConditionExpression, input.ExpressionAttributeNames, 'KeyConditionExpression')
      checkCondition(single, operation, input.FilterExpression, input.ExpressionAttributeNames, 'FilterExpression')
      checkProjection(single, operation, input)
      break
    case 'BatchGetItem':
      for (const [name, request] of Object.entries((input.RequestItems ?? {}) as Json)) {
        const encryptor = table(name)
        if (encryptor !== undefined) checkProjection(encryptor, operation, request)
      }
      break
    case 'BatchWriteItem':
      for (const [name, requests] of Object.entries((input.RequestItems ?? {}) as Record<string, Json[]>)) {
        const encryptor = table(name)
        if (encryptor === undefined) continue
        for (const request of requests) {
          if (request.PutRequest === undefined) continue
          const original = request.PutRequest.Item ?? {}
          request.PutRequest.Item = await encryptWire(encryptor, operation, original)
          const header = headerOf(request.PutRequest.Item)
          if (header !== undefined) state.originals.set(header, original)
        }
      }
      break
    case 'TransactWriteItems':
      for (const action of (input.TransactItems ?? []) as Json[]) {
        const kinds = ['Put', 'Update', 'Delete', 'ConditionCheck'].filter((kind) => action[kind] !== undefined)
        if (kinds.length !== 1) throw new UnsupportedRequestError('TransactWriteItems: every entry needs exactly one of Put, Update, Delete and ConditionCheck.')
        const kind = kinds[0] as string
        const request = action[kind] as Json
        const encryptor = table(request.TableName)
        if (encryptor === undefined) continue
        checkCondition(encryptor, `${operation} ${kind}`, request.ConditionExpression, request.ExpressionAttributeNames)
        if (kind === 'Update') checkUpdate(encryptor, `${operation} Update`, request.UpdateExpression, request.ExpressionAttributeNames)
        if (kind === 'Put') request.Item = await encryptWire(encryptor, `${operation} Put`, request.Item ?? {})
      }
      break
    case 'TransactGetItems':
      for (const entry of (input.TransactItems ?? []) as Json[]) {
        const encryptor = table(entry.Get?.TableName)
        if (encryptor !== undefined) checkProjection(encryptor, operation, entry.Get)
        state.transactGetTables.push(encryptor?.tableName)
      }
      break
    case 'ExecuteStatement':
      checkPartiql(tables, operation, [input.Statement])
      break
    case 'BatchExecuteStatement':
    case 'ExecuteTransaction':
      checkPartiql(tables, operation, ((input.Statements ?? input.TransactStatements ?? []) as Json[]).map((entry) => entry.Statement))
      break
  }
  return state
}

/** Decrypt what a response returns for encrypted tables. */
export async function transformResponse(operation: string, input: Json, output: Json, tables: Tables, state: RequestState): Promise<void> {
  const single = tableNamed(tables, input.TableName)
  switch (operation) {
    case 'GetItem':
      if (single !== undefined && output.Item !== undefined) output.Item = await decryptWire(single, output.Item)
      break
    case 'PutItem':
    case 'DeleteItem':
      if (single !== undefined && output.Attributes !== undefined) output.Attributes = await decryptWire(single, output.Attributes)
      break
    case 'UpdateItem':
      if (single === undefined || output.Attributes === undefined) break
      if (input.ReturnValues === 'ALL_OLD' || input.ReturnValues === 'ALL_NEW') {
        output.Attributes = await decryptWire(single, output.Attributes)
      } else {
        // spec: UPDATED_* may only return attributes outside the signatures (updates touch no others)
        const signed = Object.keys(output.Attributes).filter((name) => !isUnsigned(single, name))
        if (signed.length > 0) throw new UnsupportedRequestError(`UpdateItem on encrypted table ${quoteIdentifier(single.tableName)} returned signed ${nounFor(signed.length, 'attribute')} ${quoteList(signed)}.`)
      }
      break
    case 'Query':
    case 'Scan':
      if (single !== undefined && Array.isArray(output.Items)) {
        output.Items = await Promise.all(output.Items.map((item: WireItem) => decryptRead(single, operation, input.IndexName, item)))
      }
      break
    case 'BatchGetItem':
      for (const [name, items] of Object.entries((output.Responses ?? {}) as Record<string, WireItem[]>)) {
        const encryptor = tableNamed(tables, name)
        if (encryptor !== undefined) output.Responses[name] = await Promise.all(items.map((item) => decryptWire(encryptor, item)))
      }
      break
    case 'BatchWriteItem':
      // spec: unprocessed puts are handed back in their plaintext form, ready to be retried through this client
      for (const requests of Object.values((output.UnprocessedItems ?? {}) as Record<string, Json[]>)) {
        for (const request of requests) {
          const header = headerOf(request.PutRequest?.Item)
          const original = header === undefined ? undefined : state.originals.get(header)
          if (original !== undefined) request.PutRequest.Item = original
        }
      }
      break
    case 'TransactGetItems':
      if (!Array.isArray(output.Responses)) break
      if (state.transactGetTables.some((name) => name !== undefined)) checkOnePerEntry(operation, 'Responses', output.Responses.length, state.transactGetTables.length)
      output.Responses = await Promise.all(
        output.Responses.map(async (response: Json, index: number) => {
          const encryptor = tables.get(state.transactGetTables[index] ?? '')
          return encryptor === undefined || response.Item === undefined ? response : { ...response, Item: await decryptWire(encryptor, response.Item) }
        }),
      )
      break
  }
}

/**
 * DynamoDB answers a transaction with one entry per requested item, in the request's order: that order is all that
 * says which table an entry's item is from. A list of another length cannot be matched, and an item it carries
 * could be one of an encrypted table passed on undecrypted, so it is refused.
 */
function checkOnePerEntry(operation: string, list: string, count: number, requested: number): void {
  if (count !== requested) {
    throw new MalformedItemError(
      `DynamoDB's ${operation} response lists ${count} ${list} for the request's ${countOf(requested, 'item')}: they cannot be matched to their tables, so none is returned.`,
    )
  }
}

/**
 * The items an error response carries for requests with ReturnValuesOnConditionCheckFailure ALL_OLD: the stored
 * item in a ConditionalCheckFailedException, and in a TransactionCanceledException one per cancelled entry. Those of
 * encrypted tables are decrypted and verified like any read, so the error never shows ciphertext, nor signed values
 * that were not checked. Returns whether the body changed.
 */
export async function transformErrorBody(operation: string, input: Json, body: Json, tables: Tables): Promise<boolean> {
  const type = typeof body.__type === 'string' ? body.__type.slice(body.__type.lastIndexOf('#') + 1) : ''
  if (type === 'ConditionalCheckFailedException' && body.Item !== undefined && ['PutItem', 'UpdateItem', 'DeleteItem'].includes(operation)) {
    const encryptor = tableNamed(tables, input.TableName)
    if (encryptor === undefined) return false
    body.Item = await decryptWire(encryptor, body.Item)
    return true
  }
  if (type === 'TransactionCanceledException' && operation === 'TransactWriteItems' && Array.isArray(body.CancellationReasons)) {
    const actions = (input.TransactItems ?? []) as Json[]
    const tableOf = (action: Json | undefined) => tableNamed(tables, ((action?.Put ?? action?.Update ?? action?.Delete ?? action?.ConditionCheck ?? {}) as Json).TableName)
    if (actions.some((action) => tableOf(action) !== undefined)) checkOnePerEntry(operation, 'CancellationReasons', body.CancellationReasons.length, actions.length)
    let changed = false
    body.CancellationReasons = await Promise.all(
      body.CancellationReasons.map(async (reason: Json, index: number) => {
        const encryptor = tableOf(actions[index])
        if (encryptor === undefined || reason?.Item === undefined) return reason
        changed = true
        return { ...reason, Item: await decryptWire(encryptor, reason.Item) }
      }),
    )
    return changed
  }
  return false
}
