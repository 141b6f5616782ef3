// Typed reads of one request's JSON fields, failing the way KMS does: a field of the wrong JSON type is a
// SerializationException, a missing or out-of-range value a ValidationException worded like the service's.
import { isStandardBase64 } from '../backend/der.js'
import { serialization, validation } from './kms-errors.js'

/** Real KMS names the member in lower camel case in its validation messages. */
const memberName = (field: string): string => field.charAt(0).toLowerCase() + field.slice(1)

export class RequestInput {
  readonly #fields: Readonly<Record<string, unknown>>

  constructor(fields: Readonly<Record<string, unknown>>) {
    this.#fields = fields
  }

  #value(field: string, required: boolean): unknown {
    const value = this.#fields[field]
    if (value === undefined || value === null) {
      if (required) throw validation(`1 validation error detected: Value null at '${memberName(field)}' failed to satisfy constraint: Member must not be null`)
      return undefined
    }
    return value
  }

  string(field: string, required: true, maxLength?: number): string
  string(field: string, required?: false, maxLength?: number): string | undefined
  string(field: string, required = false, maxLength = 2048): string | undefined {
    const value = this.#value(field, required)
    if (value === undefined) return undefined
    if (typeof value !== 'string') throw serialization(`${field} must be a string.`)
    if (value.length < 1 || value.length > maxLength) {
      throw validation(
        `1 validation error detected: Value at '${memberName(field)}' failed to satisfy constraint: Member must have length between 1 and ${maxLength}`,
      )
    }
    return value
  }

  /** A string that must be one of `values`. */
  choice<T extends string>(field: string, values: readonly T[]): T | undefined {
    const value = this.string(field)
    if (value === undefined || values.includes(value as T)) return value as T | undefined
    throw validation(
      `1 validation error detected: Value '${value}' at '${memberName(field)}' failed to satisfy constraint: Member must satisfy enum value set: [${values.join(', ')}]`,
    )
  }

  /** Base64 bytes, strictly decoded (Node's decoder would silently skip bad characters). */
  blob(field: string, required: true, maxLength: number): Buffer
  blob(field: string, required: false, maxLength: number): Buffer | undefined
  blob(field: string, required: boolean, maxLength: number): Buffer | undefined {
    const value = this.#value(field, required)
    if (value === undefined) return undefined
    if (typeof value !== 'string' || !isStandardBase64(value)) throw serialization(`${field} must be a base64-encoded string.`)
    const bytes = Buffer.from(value, 'base64')
    if (bytes.length < 1 || bytes.length > maxLength) {
      throw validation(
        `1 validation error detected: Value at '${memberName(field)}' failed to satisfy constraint: Member must have length between 1 and ${maxLength}`,
      )
    }
    return bytes
  }

  integer(field: string, min: number, max: number): number | undefined {
    const value = this.#value(field, false)
    if (value === undefined) return undefined
    if (typeof value !== 'number' || !Number.isInteger(value)) throw serialization(`${field} must be an integer.`)
    if (value < min || value > max) {
      const bound = value < min ? `greater than or equal to ${min}` : `less than or equal to ${max}`
      throw validation(`1 validation error detected: Value '${value}' at '${memberName(field)}' failed to satisfy constraint: Member must have value ${bound}`)
    }
    return value
  }

  boolean(field: string): boolean | undefined {
    const value = this.#value(field, false)
    if (value === undefined) return undefined
    if (typeof value !== 'boolean') throw serialization(`${field} must be a boolean.`)
    return value
  }

  /** An encryption context: a JSON object of string values. Absent and empty are the same to KMS. */
  context(field: string): Record<string, string> {
    const value = this.#value(field, false)
    if (value === undefined) return {}
    if (typeof value !== 'object' || Array.isArray(value)) throw serialization(`${field} must be a map of strings.`)
    const entries = Object.entries(value as Record<string, unknown>)
    for (const [key, entry] of entries) {
      if (typeof entry !== 'string') throw serialization(`${field} must be a map of strings.`)
      if (key === '') throw validation(`${field} keys must not be empty.`)
    }
    // fromEntries defines own properties, so a key such as "__proto__" stays a key instead of a prototype.
    return Object.fromEntries(entries) as Record<string, string>
  }

  /** Checked for type only: the emulator has no grants, so it ignores them as KMS ignores unneeded tokens. */
  grantTokens(): void {
    const value = this.#value('GrantTokens', false)
    if (value !== undefined && (!Array.isArray(value) || value.some((token) => typeof token !== 'string'))) {
      throw serialization('GrantTokens must be a list of strings.')
    }
  }

  has(field: string): boolean {
    return this.#fields[field] !== undefined && this.#fields[field] !== null
  }
}
