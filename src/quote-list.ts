// Apart from quote.ts, which a browser page loads first: only code loaded later lists names.
import { quoteIdentifier } from './quote.js'

/** Several strings for an error message, each as `quoteIdentifier` shows it: the first `max`, then how many more. */
export function quoteList(values: Iterable<unknown>, max = 10): string {
  const all = [...values]
  const shown = all.slice(0, max).map((value) => quoteIdentifier(value)).join(', ')
  return all.length > max ? `${shown} and ${all.length - max} more` : shown
}
