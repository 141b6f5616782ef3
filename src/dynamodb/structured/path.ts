// spec: structured-encryption/header.md#canonical-path. Every DynamoDB field is a top-level attribute, so a
// path is: UTF-8 table name ‖ depth (1, as 8 bytes) ‖ 0x24 '$' ‖ name length (8 bytes) ‖ UTF-8 name.
import { setUint32At } from '../../format/bytes.js'

const encoder = new TextEncoder()

/**
 * Paths already made, by table and attribute name: a table's items repeat their attribute names. Read only
 * (they are AAD and hashed, never written to), and bounded, since stored items choose the names decrypt sees.
 */
const remembered = new Map<string, Map<string, Uint8Array>>()
const MAX_TABLES = 64
const MAX_NAMES = 1024

export function canonicalPath(tableName: string, attributeName: string): Uint8Array {
  let table = remembered.get(tableName)
  if (table === undefined) {
    if (remembered.size >= MAX_TABLES) remembered.clear()
    table = new Map()
    remembered.set(tableName, table)
  }
  let path = table.get(attributeName)
  if (path === undefined) {
    if (table.size >= MAX_NAMES) table.clear()
    path = makePath(tableName, attributeName)
    table.set(attributeName, path)
  }
  return path
}

/** Tests only: how many tables, and the most names of one table, `canonicalPath` holds. */
export function rememberedPaths(): { tables: number; mostNames: number } {
  return { tables: remembered.size, mostNames: Math.max(0, ...[...remembered.values()].map((names) => names.size)) }
}

function makePath(tableName: string, attributeName: string): Uint8Array {
  const table = encoder.encode(tableName)
  const name = encoder.encode(attributeName)
  // 8-byte big-endian integers; these stay far below 2^32, so their first four bytes are zero (as allocated).
  const path = new Uint8Array(table.length + 8 + 1 + 8 + name.length)
  path.set(table, 0)
  setUint32At(path, table.length + 4, 1)
  path[table.length + 8] = 0x24
  setUint32At(path, table.length + 13, name.length)
  path.set(name, table.length + 17)
  return path
}
