import { ConfigurationError } from './errors.js'
import { objectKind } from './format/context.js'
import { quoteIdentifier } from './quote.js'

/** The names in a list written `'a, b, c'`. */
type Listed<S extends string> = S extends `${infer Head}, ${infer Rest}` ? Head | Listed<Rest> : S

/** `S` when it lists exactly the options of `T`, else never: an options interface and its list cannot drift apart. */
export type ExactList<S extends string, T> = [Listed<S>] extends [keyof T] ? ([keyof T] extends [Listed<S>] ? S : never) : never

/**
 * An options argument (undefined or null mean none), refused when it names an option that `where` does not
 * take. `names` lists the ones it takes (`'a, b, c'`; the compiler checks it against the options type). A
 * misspelt option would otherwise be ignored, and some are checks that would then silently not run: decrypt's
 * `encryptionContext`, a discovery keyring's `discoveryFilter`, a stream's `unsignedOnly`.
 *
 * Returns the options' own properties on an object with no prototype: read from the caller's object, an option
 * it does not set would come from `Object.prototype`, where a prototype-polluting bug elsewhere in the
 * application could set `commitmentPolicy`, a multi-keyring's `generator` or a table's `plaintextPolicy`.
 */
export function optionsObject<T extends object, S extends string>(options: T | null | undefined, where: string, names: S & ExactList<S, T>): T {
  if (options != null) {
    // A Map's entries are not its own properties: read as an object, it would pass as no options at all.
    const kind = objectKind(options)
    if (kind !== 'Object') throw new ConfigurationError(`${where} options must be a plain object; got ${kind}.`)
    const given = Object.keys(options)
    if (given.length > 0) {
      const taken = names.split(', ')
      for (const name of given) if (!taken.includes(name)) throw new ConfigurationError(`${where} has no option ${quoteIdentifier(name)}; it takes ${names}.`)
    }
  }
  return { __proto__: null, ...options } as T
}

/** A materials manager's options take exactly one of keyring and materialsManager: say which way they do not. */
export function checkOneSource(where: string, keyring: unknown, materialsManager: unknown): void {
  if ((keyring === undefined) === (materialsManager === undefined)) {
    throw new ConfigurationError(`${where} needs exactly one of keyring or materialsManager; got ${keyring === undefined ? 'neither' : 'both'}.`)
  }
}
