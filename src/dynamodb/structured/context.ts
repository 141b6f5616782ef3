// SIGN_AND_INCLUDE_IN_ENCRYPTION_CONTEXT attributes go into the encryption context, with a legend of their
// types (spec: structured-encryption/encrypt-path-structure.md#create-new-encryption-context-and-cmm and
// #encryption-context-naming; values: dynamodb-encryption-client/encrypt-item.md#base-context-value-version-2).
import { toBase64 } from '../../backend/der.js'
import { compareBytes, utf8, utf8Decoder } from '../../format/bytes.js'
import type { EncryptionContext } from '../../types.js'
import { quoteIdentifier } from '../../quote.js'
import { InvalidItemError, MalformedItemError } from '../errors.js'
import type { Terminal } from '../types.js'

export const ATTRIBUTE_CONTEXT_PREFIX = 'aws-crypto-attr.'
export const LEGEND_CONTEXT_KEY = 'aws-crypto-legend'

const TYPE = { NULL: 0x0000, S: 0x0001, N: 0x0002, BOOL: 0x0004 } as const

/** The context value of one attribute: strings and numbers as they are, null and booleans as words, else base64. */
export function contextValue(terminal: Terminal): string {
  switch (terminal.typeId) {
    case TYPE.S:
    case TYPE.N:
      try {
        return utf8Decoder.decode(terminal.value)
      } catch (error) {
        // Only a stored (changed) item can hold such bytes.
        throw new MalformedItemError('A context attribute of the item is not valid UTF-8.', { cause: error })
      }
    case TYPE.NULL:
      return 'null'
    case TYPE.BOOL:
      return terminal.value[0] === 1 ? 'true' : 'false'
    default: {
      const bytes = new Uint8Array(2 + terminal.value.length)
      bytes[0] = terminal.typeId >>> 8
      bytes[1] = terminal.typeId & 0xff
      bytes.set(terminal.value, 2)
      return toBase64(bytes)
    }
  }
}

function legendCharacter(typeId: number): string {
  if (typeId === TYPE.S) return 'S'
  if (typeId === TYPE.N) return 'N'
  if (typeId === TYPE.NULL || typeId === TYPE.BOOL) return 'L'
  return 'B'
}

/**
 * `context` plus one pair per attribute and the legend, and the keys added (which a required-context manager
 * keeps out of the stored header). Undefined when there is no such attribute (version 1 items).
 */
export function withAttributeContext(
  context: EncryptionContext,
  attributes: readonly { readonly name: string; readonly terminal: Terminal }[],
  errorType: typeof InvalidItemError | typeof MalformedItemError,
): { context: EncryptionContext; addedKeys: string[] } | undefined {
  if (attributes.length === 0) return undefined
  const sorted = [...attributes].sort((a, b) => compareBytes(utf8(a.name), utf8(b.name)))
  const added: [string, string][] = sorted.map(({ name, terminal }) => [ATTRIBUTE_CONTEXT_PREFIX + name, contextValue(terminal)])
  added.push([LEGEND_CONTEXT_KEY, sorted.map(({ terminal }) => legendCharacter(terminal.typeId)).join('')])
  for (const [key] of added) {
    if (Object.prototype.hasOwnProperty.call(context, key)) {
      throw new errorType(`The encryption context already has ${quoteIdentifier(key)}, which a SIGN_AND_INCLUDE_IN_ENCRYPTION_CONTEXT attribute needs.`)
    }
  }
  return { context: { ...context, ...Object.fromEntries(added) }, addedKeys: added.map(([key]) => key) }
}
