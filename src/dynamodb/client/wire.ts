// DynamoDB's JSON wire format (binary as base64) to and from the attribute values the encryptor works on.
// The client integration works on the request and response bodies, where the low-level client and
// @aws-sdk/lib-dynamodb's document client look the same.
import { fromBase64, toBase64 } from '../../backend/der.js'
import { MalformedItemError } from '../errors.js'
import type { AttributeValue, Item } from '../types.js'

export type WireValue = Record<string, unknown>
export type WireItem = Record<string, WireValue>

export function fromWireValue(value: WireValue): AttributeValue {
  const [type, member] = Object.entries(value)[0] ?? []
  switch (type) {
    case 'B':
      return { B: fromBase64(member as string) }
    case 'BS':
      return { BS: (member as string[]).map(fromBase64) }
    case 'L':
      return { L: (member as WireValue[]).map(fromWireValue) }
    case 'M':
      return { M: fromWireItem(member as WireItem) }
    case 'S':
    case 'N':
    case 'SS':
    case 'NS':
    case 'BOOL':
    case 'NULL':
      return { [type]: member } as AttributeValue
    default:
      throw new MalformedItemError(`DynamoDB returned an attribute value of unknown type ${String(type)}.`)
  }
}

export function toWireValue(value: AttributeValue): WireValue {
  if ('B' in value) return { B: toBase64(value.B) }
  if ('BS' in value) return { BS: value.BS.map(toBase64) }
  if ('L' in value) return { L: value.L.map(toWireValue) }
  if ('M' in value) return { M: toWireItem(value.M) }
  return value as WireValue
}

export function fromWireItem(item: WireItem): Item {
  return Object.fromEntries(Object.entries(item).map(([name, value]) => [name, fromWireValue(value)]))
}

export function toWireItem(item: Item): WireItem {
  return Object.fromEntries(Object.entries(item).map(([name, value]) => [name, toWireValue(value)]))
}
