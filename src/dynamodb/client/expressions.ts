// The top-level attribute names a DynamoDB expression refers to (condition, key condition, filter, projection
// and update expressions), so the client can refuse expressions on encrypted or signed attributes.
// spec: dynamodb-encryption-client/ddb-support.md#testconditionexpression, #testupdateexpression
import { UnsupportedRequestError } from '../errors.js'

const KEYWORDS = new Set(['and', 'or', 'not', 'between', 'in', 'set', 'remove', 'add', 'delete'])
// A name, a #placeholder or a :value, or one character of anything else.
const TOKEN = /#[A-Za-z0-9_]+|:[A-Za-z0-9_]+|[A-Za-z_][A-Za-z0-9_]*|\s+|./gs

/**
 * Top-level attribute names in `expression`: the first element of every document path, with `#placeholders`
 * resolved through `names`. Function names and keywords are not names; `a.b[1].c` names `a`.
 */
export function referencedAttributes(expression: string | undefined, names: Readonly<Record<string, string>> | undefined): Set<string> {
  const found = new Set<string>()
  if (expression === undefined) return found
  const tokens = (expression.match(TOKEN) ?? []).filter((token) => !/^\s+$/.test(token))
  tokens.forEach((token, index) => {
    const previous = tokens[index - 1]
    // Only the first element of a path: not after '.', which starts a nested member.
    if (previous === '.') return
    if (token.startsWith('#')) {
      const name = names?.[token]
      if (name === undefined) throw new UnsupportedRequestError(`The expression uses ${token}, which ExpressionAttributeNames does not define.`)
      found.add(name)
      return
    }
    if (!/^[A-Za-z_]/.test(token)) return
    if (tokens[index + 1] === '(' || KEYWORDS.has(token.toLowerCase())) return
    found.add(token)
  })
  return found
}
