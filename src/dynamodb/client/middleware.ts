// The encrypted client: two middlewares on an @aws-sdk/client-dynamodb client that rewrite the JSON bodies.
// Working on the wire (after serialization, before deserialization) puts them inside any marshalling layer, so
// the low-level client and @aws-sdk/lib-dynamodb's document client on top of it behave the same.
import { ConfigurationError, EnvelopeError } from '../../errors.js'
import { concatBytes } from '../../format/bytes.js'
import { optionsObject } from '../../option-names.js'
import { quoteIdentifier } from '../../quote.js'
import { MalformedItemError, UnsupportedRequestError } from '../errors.js'
import {
  tableNamePattern,
  transformErrorBody,
  transformRequest,
  transformResponse,
  withSignal,
  type RequestState,
  type TableItemEncryptor,
  type Tables,
} from './operations.js'
import { objectKind } from '../../format/context.js'
import { isBytes } from '../../is-bytes.js'
import { namedErrorMessage } from '../../error-text.js'

const TARGET_PREFIX = 'DynamoDB_20120810.'
const EXCHANGE = Symbol('kms-envelope.dynamodb.exchange')
const encoder = new TextEncoder()
const decoder = new TextDecoder()

interface Exchange {
  readonly operation: string
  readonly input: Record<string, unknown>
  readonly state: RequestState
  /** The tables, calling with the SDK call's abort signal. */
  readonly tables: Tables
}

/**
 * The `abortSignal` the caller gave the SDK call (`client.send(command, { abortSignal })`), which the AWS SDK puts in
 * the handler context since 2025; undefined for an older SDK, and for the SDK's own older AbortSignal, which has no
 * `addEventListener` (that one still cancels the DynamoDB request itself).
 */
function callSignal(context: Record<PropertyKey, unknown>): AbortSignal | undefined {
  const signal = (context.__smithy_context as { abortSignal?: unknown } | undefined)?.abortSignal as Partial<AbortSignal> | undefined
  return typeof signal?.addEventListener === 'function' && typeof signal.aborted === 'boolean' ? (signal as AbortSignal) : undefined
}

interface HttpMessage {
  headers: Record<string, string>
  body?: unknown
  statusCode?: number
}

/** The part of a v3 client this needs: its middleware stack. */
export interface DynamoDbClientLike {
  // `any`: the SDK's own middleware and option types, which this package does not import.
  /** The client's middleware stack, where the encrypting middleware is added. */
  middlewareStack: {
    add(middleware: any, options: any): void
    addRelativeTo(middleware: any, options: any): void
    remove(name: string): boolean
  }
}

/** Options of `createEncryptedDynamoDbClient(...)`: one item encryptor configuration per encrypted table. */
export interface EncryptedClientOptions {
  /**
   * Item encryptors by DynamoDB table name; other tables pass through untouched. A request that names a table by its
   * ARN (`arn:aws:dynamodb:…:table/orders`) is handled as that table.
   */
  readonly tables: Readonly<Record<string, TableItemEncryptor>>
}

function header(message: HttpMessage, name: string): string | undefined {
  const key = Object.keys(message.headers).find((candidate) => candidate.toLowerCase() === name)
  return key === undefined ? undefined : message.headers[key]
}

function setBody(message: HttpMessage, body: Uint8Array | string): void {
  message.body = body
  const length = typeof body === 'string' ? encoder.encode(body).length : body.length
  for (const key of Object.keys(message.headers)) {
    const lower = key.toLowerCase()
    if (lower === 'content-length') message.headers[key] = String(length)
    // The body changed, so a checksum of the original no longer applies.
    if (lower === 'x-amz-crc32') delete message.headers[key]
  }
}

/**
 * The JSON text of a serialized request: a string, bytes, or (newer SDKs) an object whose toString is the JSON.
 * Anything else (an object without a toString of its own, one whose toString fails) is undefined: unreadable.
 */
function requestText(body: unknown): string | undefined {
  if (typeof body === 'string') return body
  if (isBytes(body)) return decoder.decode(body)
  if (typeof body !== 'object' || body === null) return undefined
  try {
    const { toString } = body as { toString?: unknown } // a getter may throw too
    if (typeof toString !== 'function' || toString === Object.prototype.toString) return undefined
    const text: unknown = toString.call(body)
    return typeof text === 'string' ? text : undefined
  } catch {
    return undefined
  }
}

/**
 * The error for a request not in DynamoDB's JSON protocol (awsJson1_0, the AWS SDK's default), such as one of a
 * client made with another `protocol` (RPC v2 CBOR sends the item as CBOR).
 */
function unreadable(request: HttpMessage): UnsupportedRequestError {
  const protocol = header(request, 'smithy-protocol') ?? header(request, 'content-type')
  return new UnsupportedRequestError(
    "The encrypted DynamoDB client reads requests in DynamoDB's JSON protocol (awsJson1_0, the AWS SDK's default)" +
      `${protocol === undefined ? '' : `; this one is in ${quoteIdentifier(protocol)}`}: leave the DynamoDBClient's protocol option unset.`,
  )
}

/** The error for a request in DynamoDB's JSON protocol whose body is not its JSON text (a stream, say). */
function unreadableBody(operation: string, body: unknown): UnsupportedRequestError {
  const type = typeof body === 'object' && body !== null ? ((body as object).constructor?.name ?? 'object') : typeof body
  const kind = body === undefined || body === null ? 'missing' : `of type ${type}`
  return new UnsupportedRequestError(
    `The encrypted DynamoDB client cannot read this ${operation} request: its body is ${kind}, not the JSON text or bytes the AWS SDK ` +
      "serializes. A middleware that runs before the client's own (at the build step) changed it: add such middleware at the finalizeRequest step.",
  )
}

async function readBody(body: unknown): Promise<Uint8Array> {
  if (isBytes(body)) return body
  if (typeof body === 'string') return encoder.encode(body)
  if (typeof (body as AsyncIterable<Uint8Array>)?.[Symbol.asyncIterator] === 'function') {
    const chunks: Uint8Array[] = []
    for await (const chunk of body as AsyncIterable<Uint8Array | string>) chunks.push(typeof chunk === 'string' ? encoder.encode(chunk) : chunk)
    return concatBytes(chunks)
  }
  if (typeof (body as ReadableStream)?.getReader === 'function') return new Uint8Array(await new Response(body as ReadableStream).arrayBuffer())
  return new Uint8Array(0)
}

/**
 * A 400 response whose error carries items of encrypted tables (ReturnValuesOnConditionCheckFailure ALL_OLD) has
 * them decrypted before the SDK turns it into its exception. A body that is not such JSON is put back as it was.
 */
async function decryptErrorItems(response: HttpMessage, exchange: Exchange, tables: Tables): Promise<void> {
  const body = await readBody(response.body)
  response.body = body // the same bytes, read once: its length and checksum still hold
  let parsed: unknown
  try {
    parsed = JSON.parse(decoder.decode(body))
  } catch {
    return
  }
  if (typeof parsed !== 'object' || parsed === null) return
  if (await transformErrorBody(exchange.operation, exchange.input, parsed as Record<string, unknown>, tables)) {
    setBody(response, encoder.encode(JSON.stringify(parsed)))
  }
}

function parseJson(text: string, what: string): Record<string, unknown> {
  try {
    return JSON.parse(text) as Record<string, unknown>
  } catch (error) {
    throw new MalformedItemError(`The DynamoDB ${what} body is not JSON.`, { cause: error })
  }
}

/**
 * Make `client` encrypt and decrypt items of the configured tables transparently: PutItem, BatchWriteItem and
 * TransactWriteItems encrypt; GetItem, Query, Scan, BatchGetItem, TransactGetItems (and returned old items)
 * decrypt; requests that cannot work on encrypted attributes (conditions or key conditions on encrypted
 * attributes, updates of signed attributes, PartiQL on encrypted tables) fail with `UnsupportedRequestError`
 * before anything is sent, as does every request of a client made with another `protocol` than DynamoDB's JSON
 * one. Returns the same client, changed in place; calling it again replaces the tables.
 *
 * @example
 * ```ts
 * const client = createEncryptedDynamoDbClient(new DynamoDBClient({}), { tables: { orders: ordersEncryptor } })
 * await client.send(new PutItemCommand({ TableName: 'orders', Item: { pk: { S: 'u1' }, card: { S: '4111…' } } }))
 * const documents = DynamoDBDocumentClient.from(client) // plain objects, encrypted the same way
 * ```
 */
export function createEncryptedDynamoDbClient<Client extends DynamoDbClientLike>(client: Client, options: EncryptedClientOptions): Client {
  const stack: Partial<DynamoDbClientLike['middlewareStack']> | undefined = client?.middlewareStack
  if (typeof stack?.add !== 'function' || typeof stack.addRelativeTo !== 'function' || typeof stack.remove !== 'function') {
    throw new ConfigurationError('createEncryptedDynamoDbClient needs an @aws-sdk/client-dynamodb client.')
  }
  const given: unknown = optionsObject(options, 'createEncryptedDynamoDbClient', 'tables').tables
  // A Map's entries are not its own properties: read as an object it would name no table, and every item would
  // be written in plaintext. So would no table at all.
  const kind = objectKind(given)
  if (kind !== 'Object') {
    throw new ConfigurationError(`createEncryptedDynamoDbClient tables must be a plain object of table name to DynamoDbItemEncryptor; got ${kind}.`)
  }
  const tables: Tables = new Map(Object.entries(given as Record<string, TableItemEncryptor>))
  if (tables.size === 0) throw new ConfigurationError('createEncryptedDynamoDbClient tables names no table, so the client would encrypt nothing.')
  for (const [name, encryptor] of tables) {
    if (typeof encryptor?.encryptItem !== 'function' || typeof encryptor.decryptItem !== 'function') {
      throw new ConfigurationError(`createEncryptedDynamoDbClient: tables[${quoteIdentifier(name)}] must be a DynamoDbItemEncryptor.`)
    }
    if (encryptor.tableName !== name) {
      throw new ConfigurationError(`createEncryptedDynamoDbClient: tables[${quoteIdentifier(name)}] is the encryptor of table ${quoteIdentifier(encryptor.tableName)}.`)
    }
  }
  // A case-insensitive search reads the body without a lowered copy of it.
  const mentions = [...tables.keys()].map((name) => new RegExp(tableNamePattern(name), 'i'))
  try {
    stack.remove('kmsEnvelopeEncryptRequest')
    stack.remove('kmsEnvelopeDecryptResponse')
    stack.add(
      (next: (args: unknown) => Promise<unknown>, context: Record<PropertyKey, unknown>) =>
        async (args: { request: HttpMessage }) => {
          const target = header(args.request, 'x-amz-target')
          const body = requestText(args.request.body)
          // A request this cannot read might write a configured table's items: refused, not sent in plaintext.
          if (!target?.startsWith(TARGET_PREFIX)) throw unreadable(args.request)
          if (body === undefined) throw unreadableBody(target.slice(TARGET_PREFIX.length), args.request.body)
          // Requests that name no configured table (as a JSON string or inside a PartiQL statement, in any letter
          // case: see checkPartiql) pass untouched.
          if (mentions.some((mention) => mention.test(body))) {
            const operation = target.slice(TARGET_PREFIX.length)
            const input = parseJson(body, 'request')
            const signalled = withSignal(tables, callSignal(context))
            const state = await transformRequest(operation, input, signalled)
            setBody(args.request, JSON.stringify(input))
            context[EXCHANGE] = { operation, input, state, tables: signalled } satisfies Exchange
          }
          return next(args)
        },
      { step: 'build', priority: 'high', name: 'kmsEnvelopeEncryptRequest', override: true },
    )
    stack.addRelativeTo(
      (next: (args: unknown) => Promise<{ response: HttpMessage }>, context: Record<PropertyKey, unknown>) =>
        async (args: unknown) => {
          const result = await next(args)
          const exchange = context[EXCHANGE] as Exchange | undefined
          const status = result.response.statusCode ?? 200
          if (exchange === undefined) return result
          if (status === 400) await decryptErrorItems(result.response, exchange, exchange.tables)
          if (status < 200 || status >= 300) return result
          const body = await readBody(result.response.body)
          const output = parseJson(decoder.decode(body), 'response')
          try {
            await transformResponse(exchange.operation, exchange.input, output, exchange.tables, exchange.state)
          } catch (error) {
            if (error instanceof EnvelopeError) throw error
            throw new MalformedItemError(`DynamoDB's ${exchange.operation} response could not be decrypted.`, { cause: error })
          }
          setBody(result.response, encoder.encode(JSON.stringify(output)))
          return result
        },
      { relation: 'after', toMiddleware: 'deserializerMiddleware', name: 'kmsEnvelopeDecryptResponse', override: true },
    )
  } catch (error) {
    // What was added stays: a client that goes on being used after this error must not write plaintext.
    throw new ConfigurationError(
      `createEncryptedDynamoDbClient could not add its middleware to the client (${namedErrorMessage(error)}): it needs an ` +
        "@aws-sdk/client-dynamodb client. DAX's client takes no middleware: encrypt and decrypt its items with the table's DynamoDbItemEncryptor.",
      { cause: error },
    )
  }
  return client
}
