// The encrypted DynamoDB client against DynamoDB on loopback (dynalite, started here): items go in encrypted,
// come back decrypted, raw reads show the stored form, and tampered items fail with typed errors.
import {
  BatchExecuteStatementCommand,
  BatchGetItemCommand,
  BatchWriteItemCommand,
  DeleteItemCommand,
  DynamoDBClient,
  ExecuteStatementCommand,
  type DynamoDBClientConfig,
  ExecuteTransactionCommand,
  GetItemCommand,
  PutItemCommand,
  QueryCommand,
  ScanCommand,
  TransactGetItemsCommand,
  TransactWriteItemsCommand,
  UpdateItemCommand,
  type AttributeValue as SdkAttributeValue,
} from '@aws-sdk/client-dynamodb'
import { AwsSmithyRpcV2CborProtocol, AwsSmithyRpcV2JsonProtocol } from '@aws-sdk/core/protocols'
import { DynamoDBDocumentClient, GetCommand, PutCommand, QueryCommand as DocumentQueryCommand } from '@aws-sdk/lib-dynamodb'
import { Readable } from 'node:stream'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { referencedAttributes } from '../../src/dynamodb/client/expressions.js'
import { transformErrorBody, transformRequest, transformResponse } from '../../src/dynamodb/client/operations.js'
import { fromWireValue, toWireItem } from '../../src/dynamodb/client/wire.js'
import { createEncryptedDynamoDbClient, DynamoDbItemEncryptor, type Item } from '../../src/dynamodb/index.js'
import { buildKmsMrkMultiKeyring, CachingMaterialsManager, defaultKmsClientSupplier, KmsKeyring, LocalMaterialsCache, type KmsClientSupplier } from '../../src/index.js'
import { DynamoDbItemEncryptor as BrowserItemEncryptor } from '../../src/dynamodb/browser.js'
import { startKmsEmulator, type KmsEmulator } from '../../src/testing/index.js'
import { aesKeyring, rejectionOf, thrownBy } from '../helpers/fixtures.js'
import { startDynalite, type LocalDynamoDb } from '../support/dynalite.js'

const TABLE = 'orders'
const PLAIN_TABLE = 'audit-log'
const actions = {
  pk: 'SIGN_ONLY',
  sk: 'SIGN_ONLY',
  card: 'ENCRYPT_AND_SIGN',
  amount: 'ENCRYPT_AND_SIGN',
  tags: 'ENCRYPT_AND_SIGN',
  status: 'SIGN_ONLY',
  note: 'DO_NOTHING',
} as const

function encryptor(keyring = aesKeyring()): DynamoDbItemEncryptor {
  return new DynamoDbItemEncryptor({
    tableName: TABLE,
    partitionKeyName: 'pk',
    sortKeyName: 'sk',
    attributeActionsOnEncrypt: actions,
    allowedUnsignedAttributes: ['note'],
    keyring,
  })
}

function order(pk: string, sk: string, extra: Record<string, SdkAttributeValue> = {}): Record<string, SdkAttributeValue> {
  return {
    pk: { S: pk },
    sk: { S: sk },
    card: { S: `4111-${pk}-${sk}` },
    amount: { N: '12.50' },
    tags: { SS: ['gift', 'priority'] },
    status: { S: 'paid' },
    note: { S: 'leave at the door' },
    ...extra,
  }
}

/** The stored form equals what DynamoDB returns (numbers normalized, sets in any order). */
function normalized(item: Record<string, unknown> | undefined): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  for (const [name, value] of Object.entries(item ?? {}).sort(([a], [b]) => a.localeCompare(b))) {
    const v = value as Record<string, unknown>
    if (v.N !== undefined) out[name] = { N: String(Number(v.N)) }
    else if (Array.isArray(v.SS)) out[name] = { SS: [...(v.SS as string[])].sort() }
    else out[name] = v
  }
  return out
}

describe('encrypted DynamoDB client on dynalite', () => {
  let db: LocalDynamoDb
  let raw: DynamoDBClient
  let client: DynamoDBClient
  beforeAll(async () => {
    db = await startDynalite()
    await db.createTable(TABLE, { name: 'pk', type: 'S' }, { name: 'sk', type: 'S' })
    await db.createTable(PLAIN_TABLE, { name: 'id', type: 'S' })
    raw = db.client()
    client = createEncryptedDynamoDbClient(db.client(), { tables: { [TABLE]: encryptor() } })
  })
  afterAll(async () => {
    raw.destroy()
    client.destroy()
    await db.close()
  })

  it('PutItem stores ciphertext; a raw read sees binary encrypted attributes, readable signed ones and the reserved attributes', async () => {
    await client.send(new PutItemCommand({ TableName: TABLE, Item: order('u1', 'o1') }))
    const stored = (await raw.send(new GetItemCommand({ TableName: TABLE, Key: { pk: { S: 'u1' }, sk: { S: 'o1' } } }))).Item ?? {}
    for (const name of ['card', 'amount', 'tags', 'aws_dbe_head', 'aws_dbe_foot']) expect(stored[name]?.B, name).toBeInstanceOf(Uint8Array)
    expect(Buffer.from(stored.card?.B as Uint8Array).includes(Buffer.from('4111'))).toBe(false)
    expect(stored.status).toEqual({ S: 'paid' })
    expect(stored.note).toEqual({ S: 'leave at the door' })
    expect(stored.pk).toEqual({ S: 'u1' })
  })

  it('GetItem, Query, Scan and BatchGetItem return the original items', async () => {
    await client.send(new PutItemCommand({ TableName: TABLE, Item: order('u2', 'o1') }))
    await client.send(new PutItemCommand({ TableName: TABLE, Item: order('u2', 'o2', { amount: { N: '7' } }) }))
    const got = await client.send(new GetItemCommand({ TableName: TABLE, Key: { pk: { S: 'u2' }, sk: { S: 'o1' } } }))
    expect(normalized(got.Item)).toEqual(normalized(order('u2', 'o1')))
    const queried = await client.send(
      new QueryCommand({ TableName: TABLE, KeyConditionExpression: 'pk = :p', ExpressionAttributeValues: { ':p': { S: 'u2' } } }),
    )
    expect(queried.Items?.map(normalized)).toEqual([normalized(order('u2', 'o1')), normalized(order('u2', 'o2', { amount: { N: '7' } }))])
    const scanned = await client.send(new ScanCommand({ TableName: TABLE, FilterExpression: '#s = :paid', ExpressionAttributeNames: { '#s': 'status' }, ExpressionAttributeValues: { ':paid': { S: 'paid' } } }))
    expect(scanned.Items?.length).toBeGreaterThanOrEqual(3)
    for (const item of scanned.Items ?? []) expect(item.card?.S).toMatch(/^4111-/)
    const batch = await client.send(
      new BatchGetItemCommand({ RequestItems: { [TABLE]: { Keys: [{ pk: { S: 'u2' }, sk: { S: 'o2' } }, { pk: { S: 'u1' }, sk: { S: 'o1' } }] } } }),
    )
    expect(batch.Responses?.[TABLE]?.map((item) => item.card?.S).sort()).toEqual(['4111-u1-o1', '4111-u2-o2'])
    // A count has no items to decrypt.
    const counted = await client.send(new QueryCommand({ TableName: TABLE, KeyConditionExpression: 'pk = :p', ExpressionAttributeValues: { ':p': { S: 'u2' } }, Select: 'COUNT' }))
    expect([counted.Count, counted.Items]).toEqual([2, undefined])
    // A batch over both tables: the other table's items come back as they are stored.
    await client.send(new PutItemCommand({ TableName: PLAIN_TABLE, Item: { id: { S: 'b-plain' }, card: { S: 'visible' } } }))
    const mixed = await client.send(
      new BatchGetItemCommand({ RequestItems: { [TABLE]: { Keys: [{ pk: { S: 'u2' }, sk: { S: 'o1' } }] }, [PLAIN_TABLE]: { Keys: [{ id: { S: 'b-plain' } }] } } }),
    )
    expect(mixed.Responses?.[PLAIN_TABLE]).toEqual([{ id: { S: 'b-plain' }, card: { S: 'visible' } }])
    expect(normalized(mixed.Responses?.[TABLE]?.[0])).toEqual(normalized(order('u2', 'o1')))
  })

  it('BatchWriteItem encrypts puts; DeleteItem returns the decrypted old item; Scan pages decrypt one by one', async () => {
    const puts = ['b1', 'b2', 'b3', 'b4'].map((sk) => ({ PutRequest: { Item: order('batch', sk) } }))
    const written = await client.send(new BatchWriteItemCommand({ RequestItems: { [TABLE]: puts } }))
    expect(written.UnprocessedItems?.[TABLE] ?? []).toEqual([])
    const stored = await raw.send(new GetItemCommand({ TableName: TABLE, Key: { pk: { S: 'batch' }, sk: { S: 'b3' } } }))
    expect(stored.Item?.card?.B).toBeInstanceOf(Uint8Array)
    const deleted = await client.send(new DeleteItemCommand({ TableName: TABLE, Key: { pk: { S: 'batch' }, sk: { S: 'b4' } }, ReturnValues: 'ALL_OLD' }))
    expect(deleted.Attributes?.card).toEqual({ S: '4111-batch-b4' })
    let startKey: Record<string, SdkAttributeValue> | undefined
    let pages = 0
    const cards: string[] = []
    do {
      const page = await client.send(new ScanCommand({ TableName: TABLE, Limit: 2, ExclusiveStartKey: startKey }))
      cards.push(...(page.Items ?? []).map((item) => item.card?.S as string))
      startKey = page.LastEvaluatedKey
      pages++
    } while (startKey !== undefined)
    expect(pages).toBeGreaterThan(2)
    expect(cards.filter((card) => card.startsWith('4111-batch-')).sort()).toEqual(['4111-batch-b1', '4111-batch-b2', '4111-batch-b3'])
  })

  it("works under @aws-sdk/lib-dynamodb's document client", async () => {
    const documents = DynamoDBDocumentClient.from(client)
    await documents.send(new PutCommand({ TableName: TABLE, Item: { pk: 'doc', sk: 'd1', card: '4111-doc', amount: 99.5, tags: new Set(['a']), status: 'new' } }))
    const stored = await raw.send(new GetItemCommand({ TableName: TABLE, Key: { pk: { S: 'doc' }, sk: { S: 'd1' } } }))
    expect(stored.Item?.card?.B).toBeInstanceOf(Uint8Array)
    const got = await documents.send(new GetCommand({ TableName: TABLE, Key: { pk: 'doc', sk: 'd1' } }))
    expect(got.Item).toMatchObject({ pk: 'doc', card: '4111-doc', amount: 99.5, status: 'new' })
    expect(got.Item?.tags).toEqual(new Set(['a']))
    const queried = await documents.send(new DocumentQueryCommand({ TableName: TABLE, KeyConditionExpression: 'pk = :p', ExpressionAttributeValues: { ':p': 'doc' } }))
    expect(queried.Items?.[0]?.card).toBe('4111-doc')
  })

  it('set up again on the same client: the later tables replace the earlier ones, and items are encrypted once', async () => {
    const again = createEncryptedDynamoDbClient(db.client(), { tables: { [TABLE]: encryptor() } })
    expect(createEncryptedDynamoDbClient(again, { tables: { [TABLE]: encryptor(aesKeyring(32, 'key-2', 9)) } })).toBe(again)
    const key = { pk: { S: 'again' }, sk: { S: '1' } }
    await again.send(new PutItemCommand({ TableName: TABLE, Item: order('again', '1') }))
    expect(normalized((await again.send(new GetItemCommand({ TableName: TABLE, Key: key }))).Item)).toEqual(normalized(order('again', '1')))
    // Written under the later keyring alone: the earlier one's client cannot read it.
    expect(await rejectionOf(client.send(new GetItemCommand({ TableName: TABLE, Key: key })))).toMatchObject({ code: 'NO_DECRYPTABLE_KEY' })
    again.destroy()
  })

  it('leaves tables it does not know alone', async () => {
    await client.send(new PutItemCommand({ TableName: PLAIN_TABLE, Item: { id: { S: 'e1' }, card: { S: 'visible' } } }))
    const stored = await raw.send(new GetItemCommand({ TableName: PLAIN_TABLE, Key: { id: { S: 'e1' } } }))
    expect(stored.Item).toEqual({ id: { S: 'e1' }, card: { S: 'visible' } })
  })

  it("leaves tables it does not know alone when a request mentions an encrypted table's name only in a value", async () => {
    // The name in a value makes the client read the request; it must still pass every operation on the other table as it is.
    const id = { S: TABLE }
    const values = { ':v': { S: TABLE } }
    await client.send(new PutItemCommand({ TableName: PLAIN_TABLE, Item: { id, card: { S: TABLE } }, ConditionExpression: 'attribute_not_exists(card)' }))
    await client.send(new UpdateItemCommand({ TableName: PLAIN_TABLE, Key: { id }, UpdateExpression: 'SET card = :v, note = :v', ExpressionAttributeValues: values }))
    const plainItem = { id, card: { S: TABLE }, note: { S: TABLE } }
    expect((await raw.send(new GetItemCommand({ TableName: PLAIN_TABLE, Key: { id } }))).Item).toEqual(plainItem)
    expect((await client.send(new GetItemCommand({ TableName: PLAIN_TABLE, Key: { id }, ProjectionExpression: 'card' }))).Item).toEqual({ card: { S: TABLE } })
    const query = await client.send(new QueryCommand({ TableName: PLAIN_TABLE, KeyConditionExpression: 'id = :v', ExpressionAttributeValues: values, ProjectionExpression: 'id, card' }))
    expect(query.Items).toEqual([{ id, card: { S: TABLE } }])
    const scan = await client.send(new ScanCommand({ TableName: PLAIN_TABLE, FilterExpression: 'card = :v', ExpressionAttributeValues: values }))
    expect(scan.Items).toEqual([plainItem])
    const batch = await client.send(new BatchGetItemCommand({ RequestItems: { [PLAIN_TABLE]: { Keys: [{ id }], ProjectionExpression: 'note' } } }))
    expect(batch.Responses?.[PLAIN_TABLE]).toEqual([{ note: { S: TABLE } }])
    const deleted = await client.send(new DeleteItemCommand({ TableName: PLAIN_TABLE, Key: { id }, ConditionExpression: 'card = :v', ExpressionAttributeValues: values, ReturnValues: 'ALL_OLD' }))
    expect(deleted.Attributes).toEqual(plainItem)
  })

  it('a request that names the table by its ARN, as DynamoDB allows, is encrypted and decrypted as one that names it', async () => {
    const arn = `arn:aws:dynamodb:us-east-1:111122223333:table/${TABLE}`
    // dynalite takes names only: its client's handler puts the name in place of the ARN on the wire, as DynamoDB
    // resolves one. What the encrypted client sees and sends is the ARN.
    const plainClient = db.client()
    const handler = plainClient.config.requestHandler as { handle(request: { body?: unknown; headers: Record<string, string> }, options?: unknown): Promise<unknown> }
    const byArn = createEncryptedDynamoDbClient(
      new DynamoDBClient({
        endpoint: db.endpoint,
        region: 'us-east-1',
        credentials: { accessKeyId: 'AKIDLOCAL', secretAccessKey: 'local' },
        requestHandler: {
          handle: (request: { body?: unknown; headers: Record<string, string> }, options?: unknown) => {
            const body = bodyText(request.body).replaceAll(arn, TABLE)
            return handler.handle({ ...request, body, headers: { ...request.headers, 'content-length': String(Buffer.byteLength(body)) } }, options)
          },
        },
      }),
      { tables: { [TABLE]: encryptor() } },
    )
    try {
      await byArn.send(new PutItemCommand({ TableName: arn, Item: order('arn', 'o1') }))
      await byArn.send(new BatchWriteItemCommand({ RequestItems: { [arn]: [{ PutRequest: { Item: order('arn', 'o2') } }] } }))
      for (const sk of ['o1', 'o2']) {
        const stored = (await raw.send(new GetItemCommand({ TableName: TABLE, Key: { pk: { S: 'arn' }, sk: { S: sk } } }))).Item
        expect(stored?.card?.B, sk).toBeInstanceOf(Uint8Array)
      }
      expect((await byArn.send(new GetItemCommand({ TableName: arn, Key: { pk: { S: 'arn' }, sk: { S: 'o1' } } }))).Item?.card).toEqual({ S: '4111-arn-o1' })
      const queried = await byArn.send(new QueryCommand({ TableName: arn, KeyConditionExpression: 'pk = :p', ExpressionAttributeValues: { ':p': { S: 'arn' } } }))
      expect(queried.Items?.map((item) => item.card?.S)).toEqual(['4111-arn-o1', '4111-arn-o2'])
      const batch = await byArn.send(new BatchGetItemCommand({ RequestItems: { [arn]: { Keys: [{ pk: { S: 'arn' }, sk: { S: 'o2' } }] } } }))
      expect(Object.values(batch.Responses ?? {}).flat().map((item) => item.card?.S)).toEqual(['4111-arn-o2'])
      const update = new UpdateItemCommand({ TableName: arn, Key: { pk: { S: 'arn' }, sk: { S: 'o1' } }, UpdateExpression: 'SET amount = :a', ExpressionAttributeValues: { ':a': { N: '1' } } })
      expect(await rejectionOf(byArn.send(update))).toMatchObject({ code: 'UNSUPPORTED_DYNAMODB_REQUEST', message: expect.stringContaining(`on encrypted table "${TABLE}"`) })
      const deleted = await byArn.send(new DeleteItemCommand({ TableName: arn, Key: { pk: { S: 'arn' }, sk: { S: 'o2' } }, ReturnValues: 'ALL_OLD' }))
      expect(deleted.Attributes?.card).toEqual({ S: '4111-arn-o2' })
    } finally {
      byArn.destroy()
      plainClient.destroy()
    }
  })

  it('UpdateItem with ReturnValues ALL_OLD or ALL_NEW returns the item decrypted and verified', async () => {
    await client.send(new PutItemCommand({ TableName: TABLE, Item: order('u4', 'o1') }))
    const update = (ReturnValues: 'ALL_OLD' | 'ALL_NEW', note: string) =>
      client.send(new UpdateItemCommand({ TableName: TABLE, Key: { pk: { S: 'u4' }, sk: { S: 'o1' } }, UpdateExpression: 'SET note = :n', ExpressionAttributeValues: { ':n': { S: note } }, ReturnValues }))
    const before = await update('ALL_OLD', 'first')
    expect(before.Attributes?.card).toEqual({ S: '4111-u4-o1' })
    expect(before.Attributes?.note).toEqual(order('u4', 'o1').note)
    const after = await update('ALL_NEW', 'second')
    expect(after.Attributes?.card).toEqual({ S: '4111-u4-o1' })
    expect(after.Attributes?.note).toEqual({ S: 'second' })
    expect(after.Attributes?.aws_dbe_head).toBeUndefined()
  })

  it("UpdateItem on a key with no item creates a plaintext item, which reads refuse; attribute_exists(aws_dbe_head) updates only encrypted items", async () => {
    const Key = { pk: { S: 'u9' }, sk: { S: 'new' } }
    const set = { UpdateExpression: 'SET note = :n', ExpressionAttributeValues: { ':n': { S: 'hello' } } }
    const guarded = new UpdateItemCommand({ TableName: TABLE, Key, ...set, ConditionExpression: 'attribute_exists(aws_dbe_head)' })
    expect(await rejectionOf(client.send(guarded))).toMatchObject({ name: 'ConditionalCheckFailedException' })
    expect((await raw.send(new GetItemCommand({ TableName: TABLE, Key }))).Item).toBeUndefined()
    await client.send(new UpdateItemCommand({ TableName: TABLE, Key, ...set }))
    expect(await rejectionOf(client.send(new GetItemCommand({ TableName: TABLE, Key })))).toMatchObject({ code: 'MALFORMED_ITEM' })
    // On an encrypted item, the guarded update goes through.
    await client.send(new PutItemCommand({ TableName: TABLE, Item: order('u9', 'old') }))
    await client.send(new UpdateItemCommand({ TableName: TABLE, Key: { pk: { S: 'u9' }, sk: { S: 'old' } }, ...set, ConditionExpression: 'attribute_exists(aws_dbe_head)' }))
    expect((await client.send(new GetItemCommand({ TableName: TABLE, Key: { pk: { S: 'u9' }, sk: { S: 'old' } } }))).Item?.note).toEqual({ S: 'hello' })
  })

  it('BatchWriteItem: deletes and other tables pass as they are, beside encrypted puts', async () => {
    await client.send(new PutItemCommand({ TableName: TABLE, Item: order('u5', 'gone') }))
    await client.send(
      new BatchWriteItemCommand({
        RequestItems: {
          [TABLE]: [{ DeleteRequest: { Key: { pk: { S: 'u5' }, sk: { S: 'gone' } } } }, { PutRequest: { Item: order('u5', 'new') } }],
          [PLAIN_TABLE]: [{ PutRequest: { Item: { id: { S: 'batch-plain' }, card: { S: 'visible' } } } }],
        },
      }),
    )
    expect((await client.send(new GetItemCommand({ TableName: TABLE, Key: { pk: { S: 'u5' }, sk: { S: 'gone' } } }))).Item).toBeUndefined()
    expect((await client.send(new GetItemCommand({ TableName: TABLE, Key: { pk: { S: 'u5' }, sk: { S: 'new' } } }))).Item?.card).toEqual({ S: '4111-u5-new' })
    expect((await raw.send(new GetItemCommand({ TableName: PLAIN_TABLE, Key: { id: { S: 'batch-plain' } } }))).Item).toEqual({ id: { S: 'batch-plain' }, card: { S: 'visible' } })
  })

  it('UpdateItem may change unsigned attributes only', async () => {
    await client.send(new PutItemCommand({ TableName: TABLE, Item: order('u3', 'o1') }))
    await client.send(
      new UpdateItemCommand({
        TableName: TABLE,
        Key: { pk: { S: 'u3' }, sk: { S: 'o1' } },
        UpdateExpression: 'SET note = :n',
        ExpressionAttributeValues: { ':n': { S: 'ring twice' } },
      }),
    )
    const got = await client.send(new GetItemCommand({ TableName: TABLE, Key: { pk: { S: 'u3' }, sk: { S: 'o1' } } }))
    expect(got.Item?.note).toEqual({ S: 'ring twice' })
    expect(got.Item?.card).toEqual({ S: '4111-u3-o1' })
  })

  const key = { pk: { S: 'u1' }, sk: { S: 'o1' } }
  const on = (operation: string, problem: string) => `${operation} on encrypted table "${TABLE}": ${problem}`
  const encrypted = (what: string) => `${what} uses "card", which is encrypted (ENCRYPT_AND_SIGN); DynamoDB cannot compare ciphertext.`
  const projection = (missing: string) => `ProjectionExpression must include ${missing}: items are verified as a whole.`
  const legacy = (parameter: string) => `${parameter} is not supported; use the expression parameters instead.`
  const partiql = (operation: string) => on(operation, 'PartiQL statements on encrypted tables are not supported; use the item operations.')
  const refused: [string, () => unknown, string][] = [
    [
      'a condition on an encrypted attribute',
      () => new PutItemCommand({ TableName: TABLE, Item: order('r', '1'), ConditionExpression: 'attribute_not_exists(#c)', ExpressionAttributeNames: { '#c': 'card' } }),
      on('PutItem', encrypted('ConditionExpression')),
    ],
    ['the legacy Expected parameter', () => new PutItemCommand({ TableName: TABLE, Item: order('r', '1'), Expected: { pk: { Exists: false } } }), on('PutItem', legacy('Expected'))],
    [
      'a key condition on an encrypted attribute',
      () => new QueryCommand({ TableName: TABLE, KeyConditionExpression: 'pk = :p AND card = :c', ExpressionAttributeValues: { ':p': { S: 'u1' }, ':c': { S: 'x' } } }),
      on('Query', encrypted('KeyConditionExpression')),
    ],
    [
      'a filter on an encrypted attribute',
      () => new ScanCommand({ TableName: TABLE, FilterExpression: 'begins_with(card, :c)', ExpressionAttributeValues: { ':c': { S: '4111' } } }),
      on('Scan', encrypted('FilterExpression')),
    ],
    [
      'an update of a signed attribute',
      () => new UpdateItemCommand({ TableName: TABLE, Key: key, UpdateExpression: 'SET #s = :s', ExpressionAttributeNames: { '#s': 'status' }, ExpressionAttributeValues: { ':s': { S: 'refunded' } } }),
      on('UpdateItem', 'UpdateExpression names "status", which is signed (every attribute but those allowed unsigned): an update may name only unsigned attributes; write the whole item with PutItem instead.'),
    ],
    [
      'an update of an encrypted attribute',
      () => new UpdateItemCommand({ TableName: TABLE, Key: key, UpdateExpression: 'REMOVE card' }),
      on('UpdateItem', 'UpdateExpression names "card", which is signed (every attribute but those allowed unsigned): an update may name only unsigned attributes; write the whole item with PutItem instead.'),
    ],
    [
      'a delete conditioned on an encrypted attribute',
      () => new DeleteItemCommand({ TableName: TABLE, Key: key, ConditionExpression: 'card = :c', ExpressionAttributeValues: { ':c': { S: '4111' } } }),
      on('DeleteItem', encrypted('ConditionExpression')),
    ],
    ['a delete with the legacy Expected parameter', () => new DeleteItemCommand({ TableName: TABLE, Key: key, Expected: { card: { Exists: true } } }), on('DeleteItem', legacy('Expected'))],
    [
      'an update with the legacy AttributeUpdates parameter (it would change signed attributes unseen)',
      () => new UpdateItemCommand({ TableName: TABLE, Key: key, AttributeUpdates: { card: { Action: 'DELETE' } } }),
      on('UpdateItem', legacy('AttributeUpdates')),
    ],
    [
      'an update of an unsigned attribute conditioned on an encrypted one',
      () => new UpdateItemCommand({ TableName: TABLE, Key: key, UpdateExpression: 'SET note = :n', ConditionExpression: 'card = :c', ExpressionAttributeValues: { ':n': { S: 'x' }, ':c': { S: '4111' } } }),
      on('UpdateItem', encrypted('ConditionExpression')),
    ],
    [
      'a query with the legacy KeyConditions parameter',
      () => new QueryCommand({ TableName: TABLE, KeyConditions: { pk: { ComparisonOperator: 'EQ', AttributeValueList: [{ S: 'u1' }] } } }),
      on('Query', legacy('KeyConditions')),
    ],
    ['a scan with the legacy ScanFilter parameter', () => new ScanCommand({ TableName: TABLE, ScanFilter: { card: { ComparisonOperator: 'NOT_NULL' } } }), on('Scan', legacy('ScanFilter'))],
    [
      'a query projecting neither header nor footer',
      () => new QueryCommand({ TableName: TABLE, KeyConditionExpression: 'pk = :p', ExpressionAttributeValues: { ':p': { S: 'u1' } }, ProjectionExpression: 'pk, sk, card, amount, tags, status' }),
      on('Query', projection('"aws_dbe_head", "aws_dbe_foot"')),
    ],
    [
      'a projection without the header',
      () => new GetItemCommand({ TableName: TABLE, Key: key, ProjectionExpression: 'pk, sk, card' }),
      on('GetItem', projection('"aws_dbe_head", "aws_dbe_foot", "amount", "tags", "status"')),
    ],
    [
      'a projection without the footer alone',
      () => new GetItemCommand({ TableName: TABLE, Key: key, ProjectionExpression: 'pk, sk, card, amount, tags, status, aws_dbe_head' }),
      on('GetItem', projection('"aws_dbe_foot"')),
    ],
    [
      'a batch read projecting no signed attribute',
      () => new BatchGetItemCommand({ RequestItems: { [TABLE]: { Keys: [key], ProjectionExpression: 'pk, sk, aws_dbe_head, aws_dbe_foot' } } }),
      on('BatchGetItem', projection('"card", "amount", "tags", "status"')),
    ],
    [
      'a batch read with the legacy AttributesToGet parameter',
      () => new BatchGetItemCommand({ RequestItems: { [PLAIN_TABLE]: { Keys: [{ id: { S: 'x' } }] }, [TABLE]: { Keys: [key], AttributesToGet: ['pk'] } } }),
      on('BatchGetItem', legacy('AttributesToGet')),
    ],
    [
      'a transactional read projecting the keys alone',
      () => new TransactGetItemsCommand({ TransactItems: [{ Get: { TableName: TABLE, Key: key, ProjectionExpression: 'pk, sk' } }] }),
      on('TransactGetItems', projection('"aws_dbe_head", "aws_dbe_foot", "card", "amount", "tags", "status"')),
    ],
    ['PartiQL on an encrypted table', () => new ExecuteStatementCommand({ Statement: `SELECT * FROM "${TABLE}" WHERE pk = 'u1'` }), partiql('ExecuteStatement')],
    [
      'batched PartiQL on an encrypted table',
      () => new BatchExecuteStatementCommand({ Statements: [{ Statement: `SELECT * FROM "${PLAIN_TABLE}"` }, { Statement: `SELECT * FROM "${TABLE}"` }] }),
      partiql('BatchExecuteStatement'),
    ],
    [
      'a PartiQL transaction on an encrypted table',
      () => new ExecuteTransactionCommand({ TransactStatements: [{ Statement: `DELETE FROM "${TABLE}" WHERE pk = 'u1' AND sk = 'o1'` }] }),
      partiql('ExecuteTransaction'),
    ],
    [
      'a #placeholder ExpressionAttributeNames does not define',
      () => new ScanCommand({ TableName: TABLE, FilterExpression: '#s = :s', ExpressionAttributeValues: { ':s': { S: 'x' } } }),
      'The expression uses #s, which ExpressionAttributeNames does not define.',
    ],
  ]
  for (const [what, command, message] of refused) {
    it(`refuses ${what} before sending it`, async () => {
      expect(await rejectionOf(client.send(command() as never))).toMatchObject({ code: 'UNSUPPORTED_DYNAMODB_REQUEST', message })
    })
  }

  it('takes a projection of every signed attribute, the header and the footer, and a condition on a member of an unsigned attribute', async () => {
    await client.send(new PutItemCommand({ TableName: TABLE, Item: order('u4', 'o1', { note: { M: { card: { S: 'a note about the card' } } } }) }))
    const projected = await client.send(
      new GetItemCommand({
        TableName: TABLE,
        Key: { pk: { S: 'u4' }, sk: { S: 'o1' } },
        ProjectionExpression: 'pk, sk, card, amount, tags, #s, aws_dbe_head, aws_dbe_foot',
        ExpressionAttributeNames: { '#s': 'status' }, // a reserved word in DynamoDB
      }),
    )
    expect(projected.Item?.card).toEqual({ S: '4111-u4-o1' })
    expect(projected.Item).not.toHaveProperty('note')
    // note.card is a member of note (unsigned), not the encrypted card.
    await client.send(
      new UpdateItemCommand({
        TableName: TABLE,
        Key: { pk: { S: 'u4' }, sk: { S: 'o1' } },
        UpdateExpression: 'SET note.card = :n',
        ConditionExpression: 'attribute_exists(note.card)',
        ExpressionAttributeValues: { ':n': { S: 'changed' } },
      }),
    )
    const got = await client.send(new GetItemCommand({ TableName: TABLE, Key: { pk: { S: 'u4' }, sk: { S: 'o1' } } }))
    expect(got.Item?.note).toEqual({ M: { card: { S: 'changed' } } })
  })

  it('an update that names a signed attribute anywhere (read into an unsigned one too), or one the actions do not name, says why', async () => {
    const update = (expression: string) =>
      rejectionOf(client.send(new UpdateItemCommand({ TableName: TABLE, Key: { pk: { S: 'u1' }, sk: { S: 'o1' } }, UpdateExpression: expression })))
    for (const [expression, name] of [['SET note = card', 'card'], ['SET note = status', 'status'], ['SET extra = note', 'extra']] as const) {
      const failure = await update(expression)
      expect((failure as Error).message).toBe(
        `UpdateItem on encrypted table "${TABLE}": UpdateExpression names "${name}", which is signed (every attribute but those allowed unsigned): ` +
          'an update may name only unsigned attributes; write the whole item with PutItem instead.',
      )
    }
  })

  it('refuses items that use the reserved attribute prefix', async () => {
    const failure = await rejectionOf(client.send(new PutItemCommand({ TableName: TABLE, Item: { ...order('r', '2'), aws_dbe_head: { B: new Uint8Array(1) } } })))
    expect(failure).toMatchObject({ code: 'INVALID_ITEM', message: 'PutItem on "orders": attribute "aws_dbe_head" uses the reserved prefix "aws_dbe_".' })
  })

  describe('tampering, through a raw client, fails on read with a typed error', () => {
    const key = (pk: string, sk: string) => ({ pk: { S: pk }, sk: { S: sk } })
    const readBack = async (pk: string, sk: string): Promise<string | undefined> => {
      const failure = await rejectionOf(client.send(new GetItemCommand({ TableName: TABLE, Key: key(pk, sk) })))
      return (failure as { code?: string } | undefined)?.code
    }
    const storedItem = async (pk: string, sk: string) => (await raw.send(new GetItemCommand({ TableName: TABLE, Key: key(pk, sk) }))).Item as Record<string, SdkAttributeValue>
    const flipByte = (bytes: Uint8Array, index: number) => {
      const copy = bytes.slice()
      copy[index] = (copy[index] as number) ^ 0x01
      return copy
    }

    it('one byte of an encrypted attribute, of the header, of the footer; a signed attribute; a dropped footer', async () => {
      const noTag = 'ITEM_AUTHENTICATION_FAILED: No recipient tag in the item footer matches: a signed attribute, the header or the footer was changed, or the item was moved.'
      const cases: [string, (item: Record<string, SdkAttributeValue>) => Record<string, SdkAttributeValue>, string][] = [
        ['encrypted byte', (item) => ({ ...item, card: { B: flipByte(item.card?.B as Uint8Array, 5) } }), noTag],
        ['encrypted type byte', (item) => ({ ...item, amount: { B: flipByte(item.amount?.B as Uint8Array, 1) } }), noTag],
        ['header message ID byte', (item) => ({ ...item, aws_dbe_head: { B: flipByte(item.aws_dbe_head?.B as Uint8Array, 5) } }), 'COMMITMENT_MISMATCH: The item header commitment does not match its data key: the header was changed.'],
        ['header legend byte', (item) => ({ ...item, aws_dbe_head: { B: flipByte(item.aws_dbe_head?.B as Uint8Array, 40) } }), "MALFORMED_ITEM: The item header's legend has byte 0x64; only 'e', 's' and 'c' exist."],
        ['footer byte', (item) => ({ ...item, aws_dbe_foot: { B: flipByte(item.aws_dbe_foot?.B as Uint8Array, 3) } }), noTag],
        ['signed attribute', (item) => ({ ...item, status: { S: 'refunded' } }), noTag],
        ['removed signed attribute', ({ status: _status, ...item }) => item, 'ITEM_AUTHENTICATION_FAILED: The item has 5 signed attributes but its header lists 6: a signed attribute was added or removed.'],
        ['added signed attribute', (item) => ({ ...item, discount: { N: '100' } }), 'ITEM_AUTHENTICATION_FAILED: The item has 7 signed attributes but its header lists 6: a signed attribute was added or removed.'],
        ['dropped footer', ({ aws_dbe_foot: _foot, ...item }) => item, 'MALFORMED_ITEM: The item has no aws_dbe_foot attribute: it is not an encrypted item, or it was stripped.'],
      ]
      for (const [index, [what, change, refusal]] of cases.entries()) {
        const sk = `t${index}`
        await client.send(new PutItemCommand({ TableName: TABLE, Item: order('tamper', sk) }))
        await raw.send(new PutItemCommand({ TableName: TABLE, Item: change(await storedItem('tamper', sk)) }))
        const failure = (await rejectionOf(client.send(new GetItemCommand({ TableName: TABLE, Key: key('tamper', sk) })))) as Error & { code: string }
        expect(`${failure.code}: ${failure.message}`, what).toBe(refusal)
      }
    })

    it('encrypted values swapped between two items, and an item copied to another key', async () => {
      await client.send(new PutItemCommand({ TableName: TABLE, Item: order('swap', 'a') }))
      await client.send(new PutItemCommand({ TableName: TABLE, Item: order('swap', 'b') }))
      const a = await storedItem('swap', 'a')
      const b = await storedItem('swap', 'b')
      await raw.send(new PutItemCommand({ TableName: TABLE, Item: { ...a, card: b.card as SdkAttributeValue } }))
      expect(await readBack('swap', 'a')).toBe('ITEM_AUTHENTICATION_FAILED')
      await raw.send(new PutItemCommand({ TableName: TABLE, Item: { ...b, sk: { S: 'moved' } } }))
      expect(await readBack('swap', 'moved')).toMatch(/^(ITEM_AUTHENTICATION_FAILED|NO_DECRYPTABLE_KEY)$/)
      // The untouched item still reads.
      expect((await client.send(new GetItemCommand({ TableName: TABLE, Key: key('swap', 'b') }))).Item?.card).toEqual({ S: '4111-swap-b' })
    })
  })
})

describe('KMS keyring with the caching materials manager through the client', () => {
  let db: LocalDynamoDb
  let kms: KmsEmulator
  beforeAll(async () => {
    db = await startDynalite()
    await db.createTable(TABLE, { name: 'pk', type: 'S' }, { name: 'sk', type: 'S' })
    kms = await startKmsEmulator({ regions: ['us-east-1'] })
  })
  afterAll(async () => {
    await kms.close()
    await db.close()
  })

  it('re-reading items hits the cache instead of calling KMS', async () => {
    const { arn } = kms.createKey({ region: 'us-east-1' })
    const clientSupplier = defaultKmsClientSupplier({ clientConfig: { endpoint: kms.endpoint, credentials: { accessKeyId: 'AKID', secretAccessKey: 'x' } } })
    const materialsManager = new CachingMaterialsManager({ keyring: new KmsKeyring({ generatorKeyId: arn, clientSupplier }), cache: new LocalMaterialsCache({ capacity: 100 }), maxAge: 60_000 })
    const orders = new DynamoDbItemEncryptor({ tableName: TABLE, partitionKeyName: 'pk', sortKeyName: 'sk', attributeActionsOnEncrypt: actions, allowedUnsignedAttributes: ['note'], materialsManager })
    const client = createEncryptedDynamoDbClient(db.client(), { tables: { [TABLE]: orders } })
    await client.send(new PutItemCommand({ TableName: TABLE, Item: order('k1', 'o1') }))
    kms.resetCalls()
    for (let i = 0; i < 5; i++) {
      const got = await client.send(new GetItemCommand({ TableName: TABLE, Key: { pk: { S: 'k1' }, sk: { S: 'o1' } } }))
      expect(got.Item?.card).toEqual({ S: '4111-k1-o1' })
    }
    expect(kms.calls.filter((call) => call.operation === 'Decrypt')).toHaveLength(1)
    client.destroy()
  })

  it('the browser build (WebCrypto) writes through KMS keyrings what the Node build reads, and the other way round', async () => {
    const { arn } = kms.createKey({ region: 'us-east-1' })
    const mrk = kms.createKey({ region: 'us-east-1', multiRegion: true }).arn
    const clientSupplier = defaultKmsClientSupplier({ clientConfig: { endpoint: kms.endpoint, credentials: { accessKeyId: 'AKID', secretAccessKey: 'x' } } })
    for (const keyring of [new KmsKeyring({ generatorKeyId: arn, clientSupplier }), buildKmsMrkMultiKeyring({ generator: mrk, clientSupplier })]) {
      const config = { tableName: TABLE, partitionKeyName: 'pk', sortKeyName: 'sk', attributeActionsOnEncrypt: actions, allowedUnsignedAttributes: ['note'], keyring }
      const [browser, node] = [new BrowserItemEncryptor(config), new DynamoDbItemEncryptor(config)]
      for (const [writer, reader, sk] of [[browser, node, 'b1'], [node, browser, 'n1']] as const) {
        const written = createEncryptedDynamoDbClient(db.client(), { tables: { [TABLE]: writer } })
        const read = createEncryptedDynamoDbClient(db.client(), { tables: { [TABLE]: reader } })
        await written.send(new PutItemCommand({ TableName: TABLE, Item: order('w1', sk) }))
        const got = await read.send(new GetItemCommand({ TableName: TABLE, Key: { pk: { S: 'w1' }, sk: { S: sk } } }))
        expect(got.Item?.card, sk).toEqual({ S: `4111-w1-${sk}` })
        written.destroy()
        read.destroy()
      }
    }
  })

  it("the SDK call's abortSignal ends a PutItem and a GetItem waiting on KMS at once, and cancels the KMS request", async () => {
    const { arn } = kms.createKey({ region: 'us-east-1' })
    const supplier = defaultKmsClientSupplier({ clientConfig: { endpoint: kms.endpoint, credentials: { accessKeyId: 'AKID', secretAccessKey: 'x' }, maxAttempts: 1 } })
    const sent: Array<Promise<string>> = []
    const recording: KmsClientSupplier = (region) => {
      const inner = supplier(region)
      return {
        send(command, options) {
          const answer = inner.send(command, options)
          sent.push(answer.then(() => 'answered', (error: Error) => error.name))
          return answer
        },
      }
    }
    const orders = new DynamoDbItemEncryptor({
      tableName: TABLE,
      partitionKeyName: 'pk',
      sortKeyName: 'sk',
      attributeActionsOnEncrypt: actions,
      allowedUnsignedAttributes: ['note'],
      keyring: new KmsKeyring({ generatorKeyId: arn, clientSupplier: recording }),
    })
    const client = createEncryptedDynamoDbClient(db.client(), { tables: { [TABLE]: orders } })
    try {
      await client.send(new PutItemCommand({ TableName: TABLE, Item: order('a1', 'o1') }))
      kms.faults.latency(3000)
      const withinASecond = (outcome: Promise<unknown>) =>
        Promise.race([outcome.then(() => 'resolved', (error: { code?: string }) => error.code), new Promise((resolve) => setTimeout(() => resolve('still waiting'), 1000))])
      for (const command of [
        new PutItemCommand({ TableName: TABLE, Item: order('a1', 'o2') }),
        new GetItemCommand({ TableName: TABLE, Key: { pk: { S: 'a1' }, sk: { S: 'o1' } } }),
      ]) {
        sent.length = 0
        const controller = new AbortController()
        const outcome = client.send(command as never, { abortSignal: controller.signal })
        await new Promise((resolve) => setTimeout(resolve, 50))
        controller.abort()
        expect(await withinASecond(outcome)).toBe('ABORTED')
        expect(await Promise.race([sent[0], new Promise((resolve) => setTimeout(() => resolve('still waiting'), 1000))])).toBe('AbortError')
      }
    } finally {
      kms.faults.clear()
      client.destroy()
    }
  })
})

describe('transactions (dynalite has none): the request and response transformation', () => {
  const tables = new Map([[TABLE, encryptor()]])
  const plain: Item = { pk: { S: 't' }, sk: { S: '1' }, card: { S: '4111' }, amount: { N: '1' }, tags: { SS: ['x'] }, status: { S: 'new' } }

  it('an item read through an index that does not project what verification needs gets an error that says so', async () => {
    const tables = new Map([[TABLE, encryptor()]])
    const stored = toWireItem(await encryptor().encryptItem(order('u7', 'o1') as Item))
    const keysOnly = { pk: stored.pk, sk: stored.sk, status: stored.status }
    const withoutCard = { ...stored } as Record<string, unknown>
    delete withoutCard.card
    for (const [item, code] of [
      [keysOnly, 'MALFORMED_ITEM'],
      [withoutCard, 'ITEM_AUTHENTICATION_FAILED'],
    ] as const) {
      const input = { TableName: TABLE, IndexName: 'by-status', KeyConditionExpression: '#s = :s', ExpressionAttributeNames: { '#s': 'status' } }
      const error = await rejectionOf(transformResponse('Query', input, { Items: [item] }, tables, await transformRequest('Query', input, tables)))
      expect((error as { code?: string }).code).toBe(code)
      expect((error as Error).message).toContain(
        'Query on "orders" through index "by-status" returned an item that cannot be verified: an index must project aws_dbe_head, aws_dbe_foot and every signed attribute (projection ALL)',
      )
      // Without an index, the error is the item's own.
      const direct = await rejectionOf(transformResponse('Query', { TableName: TABLE }, { Items: [item] }, tables, await transformRequest('Query', { TableName: TABLE }, tables)))
      expect((direct as { code?: string }).code).toBe(code)
      expect((direct as Error).message).not.toContain('index')
    }
  })

  it('an item read through an index that no keyring of the table decrypts keeps its own error: the index is not the cause', async () => {
    const foreign = new DynamoDbItemEncryptor({
      tableName: TABLE,
      partitionKeyName: 'pk',
      sortKeyName: 'sk',
      attributeActionsOnEncrypt: actions,
      allowedUnsignedAttributes: ['note'],
      keyring: aesKeyring(32, 'key-2', 9),
    })
    const item = toWireItem(await foreign.encryptItem(order('u7', 'o2') as Item))
    const input = { TableName: TABLE, IndexName: 'by-status', KeyConditionExpression: '#s = :s', ExpressionAttributeNames: { '#s': 'status' } }
    const error = await rejectionOf(transformResponse('Query', input, { Items: [item] }, tables, await transformRequest('Query', input, tables)))
    expect(error).toMatchObject({ code: 'NO_DECRYPTABLE_KEY' })
    expect((error as Error).message).not.toContain('index')
  })

  it('TransactWriteItems encrypts each Put and TransactGetItems decrypts each response', async () => {
    const input = { TransactItems: [{ Put: { TableName: TABLE, Item: toWireItem(plain) } }, { Delete: { TableName: PLAIN_TABLE, Key: { id: { S: 'x' } } } }] }
    await transformRequest('TransactWriteItems', input, tables)
    const put = input.TransactItems[0]?.Put as { Item: Record<string, Record<string, string>> }
    expect(typeof put.Item.card?.B).toBe('string')
    expect(put.Item.aws_dbe_head).toBeDefined()
    const getInput = { TransactItems: [{ Get: { TableName: TABLE, Key: {} } }, { Get: { TableName: PLAIN_TABLE, Key: {} } }] }
    const state = await transformRequest('TransactGetItems', getInput, tables)
    const output = { Responses: [{ Item: put.Item }, { Item: { id: { S: 'x' } } }] }
    await transformResponse('TransactGetItems', getInput, output, tables, state)
    expect(output.Responses[0]?.Item.card).toEqual({ S: '4111' })
    expect(output.Responses[1]?.Item).toEqual({ id: { S: 'x' } })
  })

  it('BatchWriteItem hands unprocessed puts back as the caller wrote them, ready to retry through the client', async () => {
    const input = { RequestItems: { [TABLE]: [{ PutRequest: { Item: toWireItem(plain) } }, { DeleteRequest: { Key: { pk: { S: 't' } } } }] } }
    const state = await transformRequest('BatchWriteItem', input, tables)
    const sent = input.RequestItems[TABLE]!
    expect(sent[0]?.PutRequest?.Item.aws_dbe_head).toBeDefined()
    // DynamoDB need not list an item's attributes in the order they were sent.
    const reordered = sent.map((request) => (request.PutRequest === undefined ? request : { PutRequest: { Item: Object.fromEntries(Object.entries(request.PutRequest.Item).reverse()) } }))
    expect(JSON.stringify(reordered[0])).not.toBe(JSON.stringify(sent[0]))
    const output = { UnprocessedItems: { [TABLE]: reordered } }
    await transformResponse('BatchWriteItem', input, output, tables, state)
    expect(output.UnprocessedItems[TABLE]?.[0]?.PutRequest?.Item).toEqual(toWireItem(plain))
    expect(output.UnprocessedItems[TABLE]?.[1]).toEqual({ DeleteRequest: { Key: { pk: { S: 't' } } } })
    // A TransactGetItems answer without Responses is left alone.
    const getInput = { TransactItems: [{ Get: { TableName: TABLE, Key: {} } }] }
    const empty = {}
    await transformResponse('TransactGetItems', getInput, empty, tables, await transformRequest('TransactGetItems', getInput, tables))
    expect(empty).toEqual({})
  })

  it("a table's ARN, of any account, Region and partition, stands for its name in every operation and in responses keyed by it", async () => {
    const arns = [`arn:aws:dynamodb:eu-west-1:111122223333:table/${TABLE}`, `arn:aws-cn:dynamodb:cn-north-1:444455556666:table/${TABLE}`]
    for (const arn of arns) {
      const write = { TransactItems: [{ Put: { TableName: arn, Item: toWireItem(plain) } }] }
      await transformRequest('TransactWriteItems', write, tables)
      const put = write.TransactItems[0]?.Put as { Item: Record<string, Record<string, string>> }
      expect(typeof put.Item.card?.B, arn).toBe('string')
      const getInput = { TransactItems: [{ Get: { TableName: arn, Key: {} } }] }
      const transactGet = { Responses: [{ Item: put.Item }] }
      await transformResponse('TransactGetItems', getInput, transactGet, tables, await transformRequest('TransactGetItems', getInput, tables))
      expect(transactGet.Responses[0]?.Item.card, arn).toEqual({ S: '4111' })
      const batchInput = { RequestItems: { [arn]: { Keys: [{}] } } }
      const batch = { Responses: { [arn]: [put.Item] } }
      await transformResponse('BatchGetItem', batchInput, batch, tables, await transformRequest('BatchGetItem', batchInput, tables))
      expect(batch.Responses[arn]?.[0]?.card, arn).toEqual({ S: '4111' })
      const projected = { TableName: arn, Key: {}, ProjectionExpression: 'pk' }
      expect(await rejectionOf(transformRequest('GetItem', projected, tables)), arn).toMatchObject({ code: 'UNSUPPORTED_DYNAMODB_REQUEST' })
      const statement = { Statement: `INSERT INTO "${arn}" VALUE {'pk': 't', 'card': '4111'}` }
      expect(await rejectionOf(transformRequest('ExecuteStatement', statement, tables)), arn).toMatchObject({ code: 'UNSUPPORTED_DYNAMODB_REQUEST' })
    }
    // Another table's ARN, and a name that only ends like the table's, pass as they are.
    for (const other of [`arn:aws:dynamodb:us-east-1:111122223333:table/${PLAIN_TABLE}`, `arn:aws:dynamodb:us-east-1:111122223333:table/x${TABLE}`, `x${TABLE}`]) {
      const input = { TableName: other, Item: toWireItem(plain) }
      await transformRequest('PutItem', input, tables)
      expect(input.Item, other).toEqual(toWireItem(plain))
    }
  })

  it('a transaction answer with more or fewer entries than the request had items is refused: its items cannot be matched to their tables', async () => {
    const stored = toWireItem(await encryptor().encryptItem(plain))
    const forged = { pk: { S: 'f' }, sk: { S: '1' }, card: { S: 'not decrypted' } }
    const getInput = { TransactItems: [{ Get: { TableName: TABLE, Key: {} } }, { Get: { TableName: PLAIN_TABLE, Key: {} } }] }
    for (const Responses of [[{ Item: stored }, {}, { Item: forged }], [{ Item: stored }]]) {
      const state = await transformRequest('TransactGetItems', getInput, tables)
      expect(await rejectionOf(transformResponse('TransactGetItems', getInput, { Responses }, tables, state))).toMatchObject({
        code: 'MALFORMED_ITEM',
        message: `DynamoDB's TransactGetItems response lists ${Responses.length} Responses for the request's 2 items: they cannot be matched to their tables, so none is returned.`,
      })
    }
    const writeInput = { TransactItems: [{ Put: { TableName: TABLE, Item: toWireItem(plain) } }] }
    const cancelled = { __type: 'com.amazonaws.dynamodb.v20120810#TransactionCanceledException', CancellationReasons: [{ Code: 'None' }, { Code: 'ConditionalCheckFailed', Item: forged }] }
    expect(await rejectionOf(transformErrorBody('TransactWriteItems', writeInput, cancelled, tables))).toMatchObject({ code: 'MALFORMED_ITEM' })
    // Transactions on tables the client does not encrypt are left as DynamoDB answered them.
    const plainGet = { TransactItems: [{ Get: { TableName: PLAIN_TABLE, Key: {} } }] }
    const output = { Responses: [{ Item: forged }, {}] }
    await transformResponse('TransactGetItems', plainGet, output, tables, await transformRequest('TransactGetItems', plainGet, tables))
    expect(output.Responses[0]?.Item).toEqual(forged)
  })

  it('PartiQL that names an encrypted table, however it is spelled, is refused; other tables pass', async () => {
    const refused = [
      `INSERT INTO ${TABLE} VALUE {'pk': 't', 'card': '4111'}`,
      `INSERT INTO "${TABLE}" VALUE {'pk': 't', 'card': '4111'}`,
      `UPDATE/**/${TABLE} SET card = '4111' WHERE pk = 't'`,
      `SELECT * FROM "${TABLE}"."by-status"`,
      // Unquoted identifiers are case-insensitive in PartiQL: whether DynamoDB resolves them so, the check does not bet on.
      `INSERT INTO ${TABLE.toUpperCase()} VALUE {'pk': 't', 'card': '4111'}`,
      `DELETE FROM ${TABLE[0]!.toUpperCase()}${TABLE.slice(1)} WHERE pk = 't'`,
    ]
    for (const Statement of refused) {
      expect(await rejectionOf(transformRequest('ExecuteStatement', { Statement }, tables)), Statement).toMatchObject({ code: 'UNSUPPORTED_DYNAMODB_REQUEST' })
    }
    for (const Statement of [`SELECT * FROM "${TABLE}-archive"`, `SELECT * FROM ${TABLE}.v2`, `INSERT INTO x${TABLE} VALUE {'pk': 't'}`, `SELECT * FROM "${PLAIN_TABLE}" WHERE note = '${TABLE}_x'`]) {
      const input = { Statement }
      await transformRequest('ExecuteStatement', input, tables)
      expect(input.Statement).toBe(Statement)
    }
  })

  it('TransactWriteItems refuses updates of signed attributes and conditions on encrypted ones', async () => {
    for (const entry of [
      { Update: { TableName: TABLE, Key: {}, UpdateExpression: 'SET amount = :a' } },
      { ConditionCheck: { TableName: TABLE, Key: {}, ConditionExpression: 'card = :c' } },
      { Delete: { TableName: TABLE, Key: {}, ConditionExpression: 'attribute_exists(tags)' } },
      { Put: { TableName: TABLE, Item: toWireItem(plain) }, Delete: { TableName: TABLE, Key: {} } },
    ]) {
      const failure = await rejectionOf(transformRequest('TransactWriteItems', { TransactItems: [entry] }, tables))
      expect((failure as { code?: string }).code).toBe('UNSUPPORTED_DYNAMODB_REQUEST')
    }
  })
})

/**
 * A request body as text: the client's own rewrites are strings; the AWS SDK's JSON codec sends a Uint8Array that
 * warns (and, it says, will one day throw) when read as a string.
 */
const bodyText = (body: unknown): string => (typeof body === 'string' ? body : new TextDecoder().decode(body as Uint8Array))

/** What a fake DynamoDB answers: a status and a JSON body, sent as bytes unless `form` turns its text into another body. */
interface FakeAnswer {
  status: number
  body: object | string
  headers?: Record<string, string>
  form?: (text: string) => unknown
}

/**
 * An encrypted client of TABLE whose HTTP handler records each request's body (`sent`) and headers (`headers`) and
 * answers attempt n (from 1) with `answer(n)`. `config` adds client options (`protocol`, `maxAttempts`).
 */
function fakeDynamoDb(
  answer: (attempt: number) => FakeAnswer = () => ({ status: 200, body: {} }),
  config: Record<string, unknown> = {},
): { client: DynamoDBClient; sent: string[]; headers: Record<string, string>[] } {
  const sent: string[] = []
  const headers: Record<string, string>[] = []
  const requestHandler = {
    handle: async (request: { body?: unknown; headers: Record<string, string> }) => {
      const { body: sentBody } = request
      sent.push(sentBody instanceof Readable ? (await sentBody.toArray()).map(bodyText).join('') : bodyText(sentBody))
      headers.push({ ...request.headers })
      const { status, body, headers: extra = {}, form = (text: string) => Buffer.from(text) } = answer(sent.length)
      const text = typeof body === 'string' ? body : JSON.stringify(body)
      return { response: { statusCode: status, headers: { 'content-type': 'application/x-amz-json-1.0', ...extra }, body: form(text) } }
    },
  }
  const credentials = { accessKeyId: 'AKIDLOCAL', secretAccessKey: 'local' }
  const plain = new DynamoDBClient({ region: 'us-east-1', requestHandler, maxAttempts: 1, credentials, ...config } as DynamoDBClientConfig)
  return { client: createEncryptedDynamoDbClient(plain, { tables: { [TABLE]: encryptor() } }), sent, headers }
}

describe('BatchWriteItem through the client', () => {
  it("hands back DynamoDB's unprocessed puts as the caller wrote them, whatever order the answer lists their attributes in", async () => {
    const { client, sent } = fakeDynamoDb((attempt) => {
      const request = JSON.parse(sent[attempt - 1]!) as { RequestItems: Record<string, { PutRequest: { Item: Record<string, unknown> } }[]> }
      const item = request.RequestItems[TABLE]![0]!.PutRequest.Item
      return { status: 200, body: { UnprocessedItems: { [TABLE]: [{ PutRequest: { Item: Object.fromEntries(Object.entries(item).reverse()) } }] } } }
    })
    const written = await client.send(new BatchWriteItemCommand({ RequestItems: { [TABLE]: [{ PutRequest: { Item: order('b1', 'o1') } }] } }))
    expect(written.UnprocessedItems?.[TABLE]?.[0]?.PutRequest?.Item).toEqual(order('b1', 'o1'))
  })
})

describe('TransactGetItems through the client', () => {
  it('an answer with more entries than the request had items is refused, not passed on with an undecrypted item', async () => {
    const forged = { pk: { S: 'f' }, sk: { S: '1' }, card: { S: 'not decrypted' } }
    const { client } = fakeDynamoDb(() => ({ status: 200, body: { Responses: [{}, { Item: forged }] } }))
    const get = new TransactGetItemsCommand({ TransactItems: [{ Get: { TableName: TABLE, Key: { pk: { S: 'u1' }, sk: { S: 'o1' } } } }] })
    expect(await rejectionOf(client.send(get))).toMatchObject({ code: 'MALFORMED_ITEM' })
  })
})

describe('PartiQL through the client', () => {
  it('a statement naming an encrypted table in another letter case is refused before it is sent', async () => {
    const { client, sent } = fakeDynamoDb()
    for (const Statement of [`INSERT INTO ${TABLE.toUpperCase()} VALUE {'pk': 'u1', 'sk': 'o1', 'card': '4111'}`, `SELECT * FROM "${TABLE}"`]) {
      expect(await rejectionOf(client.send(new ExecuteStatementCommand({ Statement }))), Statement).toMatchObject({ code: 'UNSUPPORTED_DYNAMODB_REQUEST' })
    }
    expect(sent).toEqual([])
    // One on another table is sent.
    await client.send(new ExecuteStatementCommand({ Statement: `SELECT * FROM "${PLAIN_TABLE}"` }))
    expect(sent).toHaveLength(1)
  })
})

describe('requests the client cannot read are refused, not sent as they are', () => {
  const put = new PutItemCommand({ TableName: TABLE, Item: order('p1', 'o1') })
  it("a client made with another protocol than DynamoDB's JSON one (RPC v2 CBOR or JSON), whose requests it cannot read", async () => {
    for (const [protocol, name] of [
      [AwsSmithyRpcV2CborProtocol, 'rpc-v2-cbor'],
      [AwsSmithyRpcV2JsonProtocol, 'rpc-v2-json'],
    ] as const) {
      const { client, sent } = fakeDynamoDb(undefined, { protocol })
      expect(await rejectionOf(client.send(put)), name).toMatchObject({
        code: 'UNSUPPORTED_DYNAMODB_REQUEST',
        message: `The encrypted DynamoDB client reads requests in DynamoDB's JSON protocol (awsJson1_0, the AWS SDK's default); this one is in "${name}": leave the DynamoDBClient's protocol option unset.`,
      })
      expect(sent, name).toEqual([])
    }
    // The default protocol: the item goes out encrypted.
    const { client, sent } = fakeDynamoDb()
    await client.send(put)
    expect(String(sent[0])).toContain('aws_dbe_head')
    expect(String(sent[0])).not.toContain('4111')
  })

  it("the AWS SDK's own retries resend the bytes encrypted once (a TransactWriteItems ClientRequestToken stays valid); a new send encrypts anew", async () => {
    // The first attempt of each send fails as DynamoDB's 500 does; the SDK retries it.
    const { client, sent } = fakeDynamoDb(
      (attempt) => (attempt % 2 === 1 ? { status: 500, body: { __type: 'com.amazonaws.dynamodb.v20120810#InternalServerError', message: 'retry me' } } : { status: 200, body: {} }),
      { maxAttempts: 2 },
    )
    const transaction = () => new TransactWriteItemsCommand({ ClientRequestToken: 'order-u1-o9', TransactItems: [{ Put: { TableName: TABLE, Item: order('u1', 'o9') } }] })
    await client.send(transaction())
    await client.send(transaction())
    expect(sent).toHaveLength(4)
    expect(sent[0]).toContain('aws_dbe_head')
    expect(sent[0]).not.toContain('4111')
    expect(sent[1]).toBe(sent[0])
    expect(sent[3]).toBe(sent[2])
    // An application's own retry is a new send: its items are encrypted again (a new message ID), so DynamoDB
    // would take the same token with other parameters as a mismatch (README).
    expect(sent[2]).not.toBe(sent[0])
  })

  it('a request whose body another middleware made a stream', async () => {
    const { client, sent } = fakeDynamoDb()
    const bodyAsStream = (next: (args: unknown) => Promise<unknown>) => async (args: unknown) => {
      const request = (args as { request: { body?: unknown } }).request
      request.body = Readable.from([bodyText(request.body)])
      return next(args)
    }
    client.middlewareStack.add(bodyAsStream as never, { step: 'serialize', name: 'bodyAsStream' })
    expect(await rejectionOf(client.send(put))).toMatchObject({
      code: 'UNSUPPORTED_DYNAMODB_REQUEST',
      message:
        "The encrypted DynamoDB client cannot read this PutItem request: its body is of type Readable, not the JSON text or bytes the AWS SDK serializes. A middleware that runs before the client's own (at the build step) changed it: add such middleware at the finalizeRequest step.",
    })
    expect(sent).toEqual([])
    // Where the message says: at finalizeRequest the middleware sees the client's request, encrypted.
    client.middlewareStack.remove('bodyAsStream')
    client.middlewareStack.add(bodyAsStream as never, { step: 'finalizeRequest', name: 'bodyAsStreamLater' })
    await client.send(put)
    expect(sent).toHaveLength(1)
    expect(JSON.parse(sent[0]!).Item.aws_dbe_head).toBeDefined()
    expect(sent[0]).not.toContain('4111')
  })
})

describe('the bodies and headers the client reads and rewrites', () => {
  const key = { pk: { S: 'u5' }, sk: { S: 'o1' } }
  const get = new GetItemCommand({ TableName: TABLE, Key: key })
  const put = new PutItemCommand({ TableName: TABLE, Item: order('u5', 'o1') })
  /** A middleware at the serialize step, after the client's serializer and before the encrypting one: it changes the request. */
  const changingRequest = (client: DynamoDBClient, change: (request: { body?: unknown; headers: Record<string, string> }) => void) => {
    const middleware = (next: (args: unknown) => Promise<unknown>) => async (args: unknown) => {
      change((args as { request: { body?: unknown; headers: Record<string, string> } }).request)
      return next(args)
    }
    client.middlewareStack.add(middleware as never, { step: 'serialize', name: 'changingRequest' })
  }

  it('a response body in any form an HTTP handler gives: bytes, text, a Node stream, chunks of text, a web stream without async iteration', async () => {
    const stored = JSON.stringify({ Item: toWireItem(await encryptor().encryptItem(order('u5', 'o1') as Item)) })
    const halves = (text: string) => [text.slice(0, 100), text.slice(100)]
    const forms: [string, (text: string) => unknown][] = [
      ['bytes', (text) => Buffer.from(text)],
      ['text', (text) => text],
      ['a Node stream of Buffers', (text) => Readable.from(halves(text).map((half) => Buffer.from(half)))],
      ['a Node stream of plain bytes', (text) => Readable.from(halves(text).map((half) => new Uint8Array(Buffer.from(half))))],
      ['chunks of text', (text) => (async function* () { yield* halves(text) })()],
      [
        'a web stream without async iteration (as in Safari)',
        (text) => {
          const stream = new Blob([text]).stream()
          Object.defineProperty(stream, Symbol.asyncIterator, { value: undefined })
          return stream
        },
      ],
    ]
    for (const [name, form] of forms) {
      const { client } = fakeDynamoDb(() => ({ status: 200, body: stored, form }))
      expect(normalized((await client.send(get)).Item), name).toEqual(normalized(order('u5', 'o1')))
    }
    const { client } = fakeDynamoDb(() => ({ status: 200, body: stored, form: () => undefined }))
    expect(await rejectionOf(client.send(get))).toMatchObject({ code: 'MALFORMED_ITEM', message: 'The DynamoDB response body is not JSON.' })
    // JSON, but not of the shape DynamoDB answers: whatever fails on it is reported as a response that could not be decrypted.
    const batch = new BatchGetItemCommand({ RequestItems: { [TABLE]: { Keys: [key] } } })
    const { client: odd } = fakeDynamoDb(() => ({ status: 200, body: { Responses: { [TABLE]: 'items' } } }))
    const failure = await rejectionOf(odd.send(batch))
    expect(failure).toMatchObject({ code: 'MALFORMED_ITEM', message: "DynamoDB's BatchGetItem response could not be decrypted." })
    expect((failure as Error).cause).toBeInstanceOf(TypeError)
  })

  it('a rewritten body carries its own length, and no checksum of the body DynamoDB sent', async () => {
    const stored = JSON.stringify({ Item: toWireItem(await encryptor().encryptItem(order('u5', 'o1') as Item)) })
    const { client, sent, headers } = fakeDynamoDb(() => ({
      status: 200,
      body: stored,
      headers: { 'Content-Length': String(Buffer.byteLength(stored)), 'X-Amz-Crc32': '12345' },
    }))
    // A length set before the encrypting middleware runs would no longer fit the encrypted body: it is set again.
    changingRequest(client, (request) => {
      request.headers['Content-Length'] = String(Buffer.byteLength(bodyText(request.body)))
    })
    const seen: { headers: Record<string, string>; length: number }[] = []
    const observer = (next: (args: unknown) => Promise<{ response: { headers: Record<string, string>; body: Uint8Array } }>) => async (args: unknown) => {
      const result = await next(args)
      seen.push({ headers: { ...result.response.headers }, length: result.response.body.length })
      return result
    }
    client.middlewareStack.addRelativeTo(observer as never, { relation: 'before', toMiddleware: 'kmsEnvelopeDecryptResponse', name: 'observer' })
    // An unsigned value that is not ASCII: the length is in bytes, not characters.
    await client.send(new PutItemCommand({ TableName: TABLE, Item: order('u5', 'o1', { note: { S: 'déposer à la porte' } }) }))
    expect(sent[0]).toContain('déposer')
    expect(headers[0]?.['Content-Length']).toBe(String(Buffer.byteLength(sent[0]!)))
    expect(sent[0]).toContain('aws_dbe_head')
    await client.send(get)
    expect(seen[1]?.headers['Content-Length']).toBe(String(seen[1]?.length))
    expect(seen[1]?.length).toBeLessThan(Buffer.byteLength(stored))
    expect(seen[1]?.headers).not.toHaveProperty('X-Amz-Crc32')
  })

  it('a request body another middleware made text, plain bytes or an object whose text is the JSON is read and encrypted', async () => {
    const forms: [string, (json: string) => unknown][] = [
      ['text', (json) => json],
      ['plain bytes', (json) => new Uint8Array(Buffer.from(json))],
      ['an object whose toString is the JSON', (json) => ({ toString: () => json })],
    ]
    for (const [name, form] of forms) {
      const { client, sent } = fakeDynamoDb()
      changingRequest(client, (request) => {
        request.body = form(bodyText(request.body))
      })
      await client.send(put)
      expect(JSON.parse(sent[0]!).Item.aws_dbe_head, name).toBeDefined()
      expect(sent[0], name).not.toContain('4111')
    }
  })

  it('a request body it cannot read is refused saying what it is, and one without a protocol header says what it reads', async () => {
    const refused = (kind: string) =>
      `The encrypted DynamoDB client cannot read this PutItem request: its body is ${kind}, not the JSON text or bytes the AWS SDK serializes. ` +
      "A middleware that runs before the client's own (at the build step) changed it: add such middleware at the finalizeRequest step."
    const bodies: [unknown, string][] = [
      [undefined, 'missing'],
      [null, 'missing'],
      [42, 'of type number'],
      [{ Item: {} }, 'of type Object'],
      [Object.create(null), 'of type object'],
      [{ toString: () => ({}) }, 'of type Object'],
      [
        {
          toString: () => {
            throw new Error('consumed')
          },
        },
        'of type Object',
      ],
      [
        Object.defineProperty({}, 'toString', {
          get: () => {
            throw new Error('consumed')
          },
        }),
        'of type Object',
      ],
    ]
    for (const [body, kind] of bodies) {
      const { client, sent } = fakeDynamoDb()
      changingRequest(client, (request) => {
        request.body = body
      })
      expect(await rejectionOf(client.send(put)), kind).toMatchObject({ code: 'UNSUPPORTED_DYNAMODB_REQUEST', message: refused(kind) })
      expect(sent).toEqual([])
    }
    const { client, sent } = fakeDynamoDb()
    changingRequest(client, (request) => {
      for (const name of Object.keys(request.headers)) if (/^(x-amz-target|content-type)$/i.test(name)) delete request.headers[name]
    })
    expect(await rejectionOf(client.send(put))).toMatchObject({
      code: 'UNSUPPORTED_DYNAMODB_REQUEST',
      message: "The encrypted DynamoDB client reads requests in DynamoDB's JSON protocol (awsJson1_0, the AWS SDK's default): leave the DynamoDBClient's protocol option unset.",
    })
    expect(sent).toEqual([])
  })

  it("an SDK call's abort signal of the AWS SDK's own older kind (no addEventListener) is left to the SDK", async () => {
    const { client, sent } = fakeDynamoDb()
    await client.send(put, { abortSignal: { aborted: false, onabort: null } as never })
    expect(sent[0]).toContain('aws_dbe_head')
  })

  it("an error response that is not DynamoDB's JSON reaches the caller as the SDK reads it, not as MALFORMED_ITEM", async () => {
    for (const [status, body] of [
      [500, '<html>Bad gateway</html>'],
      [503, ''],
      [300, 'moved'],
      [400, 'null'],
      [400, '42'],
      [400, { __type: 5, message: 'odd' }],
    ] as const) {
      const { client } = fakeDynamoDb(() => ({ status, body }))
      const failure = (await rejectionOf(client.send(get))) as { code?: string; $metadata?: { httpStatusCode?: number } }
      expect(failure.code, `${status} ${JSON.stringify(body)}`).toBeUndefined()
      expect(failure.$metadata?.httpStatusCode, `${status} ${JSON.stringify(body)}`).toBe(status)
    }
  })
})

describe('errors that carry items (ReturnValuesOnConditionCheckFailure ALL_OLD; dynalite returns none): through the client', () => {
  /** An encrypted client whose HTTP handler answers every request with `status` and the JSON `body`. */
  const answering = (status: number, body: object | string): DynamoDBClient => fakeDynamoDb(() => ({ status, body })).client
  const conditionFailed = (item: unknown) => ({
    __type: 'com.amazonaws.dynamodb.v20120810#ConditionalCheckFailedException',
    message: 'The conditional request failed',
    Item: item,
  })
  const put = (table = TABLE) =>
    new PutItemCommand({ TableName: table, Item: order('u9', 'o1'), ConditionExpression: 'attribute_not_exists(pk)', ReturnValuesOnConditionCheckFailure: 'ALL_OLD' })

  it('a ConditionalCheckFailedException carries the stored item decrypted, and a tampered one fails verification', async () => {
    const stored = toWireItem(await encryptor().encryptItem(order('u9', 'o1', { status: { S: 'shipped' } }) as Item))
    const failure = (await rejectionOf(answering(400, conditionFailed(stored)).send(put()))) as { name: string; Item?: Record<string, unknown> }
    expect(failure.name).toBe('ConditionalCheckFailedException')
    expect(normalized(failure.Item)).toEqual(normalized(order('u9', 'o1', { status: { S: 'shipped' } })))
    const tampered = { ...stored, status: { S: 'refunded' } }
    const refused = await rejectionOf(answering(400, conditionFailed(tampered)).send(put()))
    expect((refused as { code?: string }).code).toBe('ITEM_AUTHENTICATION_FAILED')
    // Another table's item, or an error body that is not JSON, reaches the caller as DynamoDB sent it.
    const byArn = (await rejectionOf(answering(400, conditionFailed(tampered)).send(put(`arn:aws:dynamodb:us-east-1:111122223333:table/${TABLE}`)))) as { code?: string }
    expect(byArn.code).toBe('ITEM_AUTHENTICATION_FAILED')
    const other = (await rejectionOf(answering(400, conditionFailed({ id: { S: 'x' } })).send(put(PLAIN_TABLE)))) as { Item?: unknown }
    expect(other.Item).toEqual({ id: { S: 'x' } })
    const garbled = (await rejectionOf(answering(400, 'not json').send(put()))) as { name: string }
    expect(garbled.name).not.toBe('ConditionalCheckFailedException')
    // A request on another table that mentions this one's name in a value is read, and its error item still left alone.
    const mentioning = new PutItemCommand({
      TableName: PLAIN_TABLE,
      Item: { id: { S: 'x' }, note: { S: TABLE } },
      ConditionExpression: 'attribute_not_exists(id)',
      ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
    })
    const plain = (await rejectionOf(answering(400, conditionFailed({ id: { S: 'x' }, note: { S: TABLE } })).send(mentioning))) as { name: string; Item?: unknown }
    expect([plain.name, plain.Item]).toEqual(['ConditionalCheckFailedException', { id: { S: 'x' }, note: { S: TABLE } }])
  })

  it('a successful response that cannot be read or decrypted is MALFORMED_ITEM: not JSON, an attribute of unknown type, an item that is null, a binary that is not base64, nesting without end', async () => {
    const get = new GetItemCommand({ TableName: TABLE, Key: { pk: { S: 'u9' }, sk: { S: 'o1' } } })
    // Written out: JSON.stringify itself would overflow the stack on it.
    const deep = `{"Item":{"pk":{"S":"u9"},"card":${'{"L":['.repeat(50_000)}{"S":"x"}${']}'.repeat(50_000)}}}`
    const answers: [string | object, RegExp][] = [
      ['not json', /^The DynamoDB response body is not JSON\.$/],
      [{ Item: { pk: { S: 'u9' }, card: { X: '1' } } }, /^"card" has a value of unknown type "X"/],
      [{ Item: null }, /^The item must be a plain object; got Null\.$/],
      [{ Item: { pk: { S: 'u9' }, card: { B: 'not base64' } } }, /^"card"\.B must be base64 text; got text that is not base64\.$/],
      [deep, /^"card"(\.L\[0\]){32} nests lists and maps more than 32 levels deep\.$/],
    ]
    for (const [body, message] of answers) {
      expect(await rejectionOf(answering(200, body).send(get)), String(message)).toMatchObject({ code: 'MALFORMED_ITEM', message: expect.stringMatching(message) })
    }
  })

  it("an expression's attributes: the first element of each path, placeholders resolved; function names and keywords are none", () => {
    const expression = 'attribute_exists(card) AND size(note) > :n OR contains(#t, :v) AND a.b[1].c = :x AND NOT begins_with(#s.x, :p)'
    expect([...referencedAttributes(expression, { '#t': 'tags', '#s': 'status' })].sort()).toEqual(['a', 'card', 'note', 'status', 'tags'])
    expect([...referencedAttributes('SET note = if_not_exists(note, :d), tags = list_append(tags, :t) REMOVE old', undefined)].sort()).toEqual(['note', 'old', 'tags'])
    // An attribute may bear a function's name: used as a name, it is one.
    expect([...referencedAttributes('size(size) > :n', undefined)]).toEqual(['size'])
    expect([...referencedAttributes(undefined, undefined)]).toEqual([])
    expect(thrownBy(() => referencedAttributes('#missing = :v', {}))).toMatchObject({
      code: 'UNSUPPORTED_DYNAMODB_REQUEST',
      message: 'The expression uses #missing, which ExpressionAttributeNames does not define.',
    })
  })

  it('a wire value of unknown type, or of none, is MALFORMED_ITEM where it is read', () => {
    for (const value of [{ X: '1' }, {}]) expect(thrownBy(() => fromWireValue(value)), JSON.stringify(value)).toMatchObject({ code: 'MALFORMED_ITEM' })
    expect(fromWireValue({ B: 'AQI=' })).toEqual({ B: Uint8Array.of(1, 2) })
  })

  it('UpdateItem returning a signed attribute with UPDATED_NEW is refused (updates may touch unsigned attributes only)', async () => {
    const update = (ReturnValues: 'UPDATED_NEW' | 'NONE') =>
      new UpdateItemCommand({
        TableName: TABLE,
        Key: { pk: { S: 'u9' }, sk: { S: 'o1' } },
        UpdateExpression: 'SET note = :n',
        ExpressionAttributeValues: { ':n': { S: 'x' } },
        ReturnValues,
      })
    expect((await answering(200, { Attributes: { note: { S: 'x' } } }).send(update('UPDATED_NEW'))).Attributes).toEqual({ note: { S: 'x' } })
    const failure = await rejectionOf(answering(200, { Attributes: { note: { S: 'x' }, status: { S: 'paid' } } }).send(update('UPDATED_NEW')))
    expect(failure).toMatchObject({ code: 'UNSUPPORTED_DYNAMODB_REQUEST', message: `UpdateItem on encrypted table "${TABLE}" returned signed attribute "status".` })
    const two = await rejectionOf(answering(200, { Attributes: { status: { S: 'paid' }, card: { S: 'x' } } }).send(update('UPDATED_NEW')))
    expect(two).toMatchObject({ code: 'UNSUPPORTED_DYNAMODB_REQUEST', message: `UpdateItem on encrypted table "${TABLE}" returned signed attributes "status", "card".` })
  })

  it('a TransactionCanceledException carries each cancelled entry of an encrypted table decrypted', async () => {
    const stored = toWireItem(await encryptor().encryptItem(order('u9', 'o2') as Item))
    const body = {
      __type: 'com.amazonaws.dynamodb.v20120810#TransactionCanceledException',
      message: 'Transaction cancelled',
      CancellationReasons: [
        { Code: 'ConditionalCheckFailed', Message: 'The conditional request failed', Item: stored },
        { Code: 'None' },
        { Code: 'ConditionalCheckFailed', Item: { id: { S: 'x' } } },
      ],
    }
    const command = new TransactWriteItemsCommand({
      TransactItems: [
        { Put: { TableName: TABLE, Item: order('u9', 'o2'), ConditionExpression: 'attribute_not_exists(pk)', ReturnValuesOnConditionCheckFailure: 'ALL_OLD' } },
        { Delete: { TableName: TABLE, Key: { pk: { S: 'u9' }, sk: { S: 'o3' } } } },
        { ConditionCheck: { TableName: PLAIN_TABLE, Key: { id: { S: 'x' } }, ConditionExpression: 'attribute_not_exists(id)', ReturnValuesOnConditionCheckFailure: 'ALL_OLD' } },
      ],
    })
    const failure = (await rejectionOf(answering(400, body).send(command))) as { name: string; CancellationReasons?: { Code?: string; Item?: Record<string, unknown> }[] }
    expect(failure.name).toBe('TransactionCanceledException')
    expect(normalized(failure.CancellationReasons?.[0]?.Item)).toEqual(normalized(order('u9', 'o2')))
    expect(failure.CancellationReasons?.[1]).toEqual({ Code: 'None' })
    expect(failure.CancellationReasons?.[2]?.Item).toEqual({ id: { S: 'x' } })
  })
})
