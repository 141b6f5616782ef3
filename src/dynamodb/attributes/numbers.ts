// DynamoDB numbers are strings; the item format signs and encrypts them in the form DynamoDB itself stores.
// spec: dynamodb-encryption-client/ddb-attribute-serialization.md#number ("normalized in the same way as
// DynamoDB normalizes numbers"): plain decimal notation, no exponent, no leading zeros, no trailing zeros after
// the point, no "+", "0" for zero; at most 38 significant digits; magnitude from 1E-130 to below 1E+126.
import { countOf } from '../../byte-count.js'
import { InvalidItemError } from '../errors.js'

const NUMBER = /^([+-]?)(\d*)(?:\.(\d*))?(?:[eE]([+-]?\d+))?$/
const MAX_DIGITS = 38
// With the value written as 0.d1d2… × 10^E (d1 ≠ 0): DynamoDB stores -129 <= E <= 126.
const MIN_EXPONENT = -129
const MAX_EXPONENT = 126
// Longer inputs are refused before any work (DynamoDB's own numbers are far shorter).
const MAX_INPUT_LENGTH = 1024

/** The DynamoDB form of number `text`; InvalidItemError (naming `what`) when DynamoDB would refuse it. */
export function normalizeNumber(text: string, what = 'A number'): string {
  const match = typeof text === 'string' && text.length <= MAX_INPUT_LENGTH ? NUMBER.exec(text) : null
  const [, sign = '', whole = '', fraction = '', exponentText = '0'] = match ?? []
  if (match === null || whole.length + fraction.length === 0 || exponentText.replace(/^[+-]?0*/, '').length > 6) {
    // The value itself stays out of the message, which logs keep: an attribute may be a secret (a card number
    // written with spaces, say).
    const given = typeof text === 'string' ? countOf(text.length, 'character') : `a ${typeof text}`
    throw new InvalidItemError(`${what} is not a DynamoDB number, such as -12.5 or 1.5E+3; got ${given} (the value is not shown: it may be secret).`)
  }
  const allDigits = whole + fraction
  const firstNonZero = allDigits.search(/[1-9]/)
  if (firstNonZero === -1) return '0'
  const digits = allDigits.slice(firstNonZero).replace(/0+$/, '')
  // Position of the decimal point relative to the first significant digit.
  const exponent = whole.length - firstNonZero + Number(exponentText)
  if (digits.length > MAX_DIGITS) throw new InvalidItemError(`${what} has more than ${MAX_DIGITS} significant digits, which DynamoDB cannot store.`)
  if (exponent < MIN_EXPONENT || exponent > MAX_EXPONENT) {
    throw new InvalidItemError(`${what} is outside DynamoDB's number range (magnitude 1E-130 to 9.99…E+125).`)
  }
  let plain: string
  if (exponent <= 0) plain = `0.${'0'.repeat(-exponent)}${digits}`
  else if (exponent >= digits.length) plain = digits + '0'.repeat(exponent - digits.length)
  else plain = `${digits.slice(0, exponent)}.${digits.slice(exponent)}`
  return sign === '-' ? `-${plain}` : plain
}
