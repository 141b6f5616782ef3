// Apart from quote.ts, which a browser page loads first: only code loaded later lists names.
import { quoteIdentifier } from './quote.js'

/**
 * Several strings for an error message, each as `quoteIdentifier` shows it (or `show`, for values already
 * quoted): the first `max`, then how many more.
 */
export function quoteList(values: Iterable<unknown>, max = 10, show: (value: unknown) => string = quoteIdentifier): string {
  const all = [...values]
  const shown = all.slice(0, max).map((value) => show(value)).join(', ')
  return all.length > max ? `${shown} and ${all.length - max} more` : shown
}
