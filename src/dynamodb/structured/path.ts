// spec: structured-encryption/header.md#canonical-path. Every DynamoDB field is a top-level attribute, so a
// path is: UTF-8 table name ‖ depth (1, as 8 bytes) ‖ 0x24 '$' ‖ name length (8 bytes) ‖ UTF-8 name.
const encoder = new TextEncoder()

/** A length as 8 big-endian bytes (lengths here stay far below 2^32, so the high half is zero). */
function uint64(value: number): Uint8Array {
  const bytes = new Uint8Array(8)
  bytes[4] = value >>> 24
  bytes[5] = (value >>> 16) & 0xff
  bytes[6] = (value >>> 8) & 0xff
  bytes[7] = value & 0xff
  return bytes
}

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
  const path = new Uint8Array(table.length + 8 + 1 + 8 + name.length)
  path.set(table, 0)
  path.set(uint64(1), table.length)
  path[table.length + 8] = 0x24
  path.set(uint64(name.length), table.length + 9)
  path.set(name, table.length + 17)
  return path
}
