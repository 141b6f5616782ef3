// DynamoDB JSON (binary as base64) to and from the attribute values the encryptor works on: the wire format of the
// client integration, which works on the request and response bodies, where the low-level client and
// @aws-sdk/lib-dynamodb's document client look the same; and what DynamoDB Streams records (a Lambda event's
// NewImage and OldImage) and the AWS CLI hold (itemFromDynamoDbJson).
import { fromBase64, isStandardBase64, toBase64 } from '../../backend/der.js'
import { objectKind } from '../../format/context.js'
import { isBytes } from '../../is-bytes.js'
import { quoteIdentifier } from '../../quote.js'
import { MAX_DEPTH, serializeAttribute } from '../attributes/serialize.js'
import { InvalidItemError, MalformedItemError } from '../errors.js'
import type { AttributeValue, Item, ItemInput } from '../types.js'

export type WireValue = Record<string, unknown>
export type WireItem = Record<string, WireValue>

/** Which error a value that is not DynamoDB JSON is: MalformedItemError where DynamoDB answered, InvalidItemError for a caller's item. */
type Failure = typeof InvalidItemError | typeof MalformedItemError

const TYPES = 'B, BOOL, BS, L, M, N, NS, NULL, S, SS'

function binary(value: unknown, path: string, Failure: Failure): Uint8Array {
  if (isBytes(value)) return value
  if (typeof value === 'string' && isStandardBase64(value)) return fromBase64(value)
  throw new Failure(`${path} must be base64 text; got ${typeof value === 'string' ? 'text that is not base64' : objectKind(value)}.`)
}

function array(value: unknown, path: string, Failure: Failure): unknown[] {
  if (!Array.isArray(value)) throw new Failure(`${path} must be an array; got ${objectKind(value)}.`)
  return value
}

function members(value: unknown, path: string, Failure: Failure): [string, unknown][] {
  const kind = objectKind(value)
  if (kind !== 'Object') throw new Failure(`${path} must be a plain object; got ${kind}.`)
  return Object.entries(value as object)
}

export function fromWireValue(value: unknown, path = 'attribute', Failure: Failure = MalformedItemError, depth = 0): AttributeValue {
  const entries = members(value, path, Failure)
  if (entries.length !== 1) throw new Failure(`${path} must have exactly one of ${TYPES}; it has ${entries.length}.`)
  const [type, member] = entries[0] as [string, unknown]
  switch (type) {
    case 'B':
      return { B: binary(member, `${path}.B`, Failure) }
    case 'BS':
      return { BS: array(member, `${path}.BS`, Failure).map((entry, index) => binary(entry, `${path}.BS[${index}]`, Failure)) }
    case 'L':
    case 'M': {
      if (depth >= MAX_DEPTH) throw new Failure(`${path} nests lists and maps more than ${MAX_DEPTH} levels deep.`)
      if (type === 'L') return { L: array(member, `${path}.L`, Failure).map((entry, index) => fromWireValue(entry, `${path}.L[${index}]`, Failure, depth + 1)) }
      return { M: Object.fromEntries(members(member, `${path}.M`, Failure).map(([key, entry]) => [key, fromWireValue(entry, `${path}.M.${key}`, Failure, depth + 1)])) }
    }
    case 'S':
    case 'N':
    case 'SS':
    case 'NS':
    case 'BOOL':
    case 'NULL':
      // Their values are checked where the item is serialized, as those of any item are.
      return { [type]: member } as AttributeValue
    default:
      throw new Failure(`${path} has a value of unknown type ${quoteIdentifier(type)}; DynamoDB's are ${TYPES}.`)
  }
}

export function toWireValue(value: AttributeValue): WireValue {
  if ('B' in value) return { B: toBase64(value.B) }
  if ('BS' in value) return { BS: value.BS.map(toBase64) }
  if ('L' in value) return { L: value.L.map(toWireValue) }
  if ('M' in value) return { M: toWireItem(value.M) }
  return value as WireValue
}

export function fromWireItem(item: unknown, Failure: Failure = MalformedItemError): Item {
  return Object.fromEntries(members(item, 'The item', Failure).map(([name, value]) => [name, fromWireValue(value, quoteIdentifier(name), Failure)]))
}

export function toWireItem(item: Item): WireItem {
  return Object.fromEntries(Object.entries(item).map(([name, value]) => [name, toWireValue(value)]))
}

/**
 * An item in DynamoDB JSON, as DynamoDB Streams records (a Lambda event's `NewImage` and `OldImage`) and the AWS
 * CLI hold it, with every B and BS value, at any depth, decoded from base64: what `decryptItem` takes.
 * `InvalidItemError` names the first value that is not DynamoDB JSON.
 *
 * @example
 * ```ts
 * export const handler = async (event: DynamoDBStreamEvent) => {
 *   for (const record of event.Records) {
 *     const item = await orders.decryptItem(itemFromDynamoDbJson(record.dynamodb?.NewImage))
 *   }
 * }
 * ```
 */
export function itemFromDynamoDbJson(image: unknown): Item {
  return fromWireItem(image, InvalidItemError)
}

/**
 * The inverse of `itemFromDynamoDbJson`: an item (an encrypted one, say) in DynamoDB JSON, every B and BS value as
 * base64 text, as the AWS CLI takes it (`aws dynamodb put-item --item file://item.json`). A value DynamoDB would
 * refuse is an `InvalidItemError`, as `encryptItem` reports it.
 *
 * @example
 * ```ts
 * import { writeFile } from 'node:fs/promises'
 * const stored = await orders.encryptItem({ pk: { S: 'order#1' }, total: { N: '42.50' } })
 * await writeFile('item.json', JSON.stringify(itemToDynamoDbJson(stored)))
 * ```
 */
export function itemToDynamoDbJson(item: ItemInput): Record<string, unknown> {
  for (const [name, value] of members(item, 'The item', InvalidItemError)) serializeAttribute(value as AttributeValue, quoteIdentifier(name))
  return toWireItem(item as Item)
}
