// How an error message shows a value it did not expect: quoted and cut short, or by its type only, so a hostile
// or secret input neither floods logs nor appears in them whole.

const MAX_SHOWN = 120

/** Quote a caller or message string for an error message, cut short so a hostile input cannot flood logs. */
export function quoteIdentifier(value: unknown): string {
  if (typeof value !== 'string') return value === null ? 'null' : typeof value
  return JSON.stringify(value.length > MAX_SHOWN ? `${value.slice(0, MAX_SHOWN)}…` : value)
}

/** A caller's option value for an error message: a number as it is, a string quoted (cut short), else its type. */
export function quoteValue(value: unknown): string {
  return typeof value === 'number' ? String(value) : quoteIdentifier(value)
}
