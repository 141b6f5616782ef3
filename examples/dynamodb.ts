/**
 * DynamoDB items encrypted and signed attribute by attribute. Run it with `npm run example:dynamodb`.
 *
 * It starts DynamoDB on loopback (dynalite, a development dependency) and the local KMS emulator, writes an
 * order through the encrypted client, shows what DynamoDB stores, reads it back (also as a DynamoDB Streams record
 * gives it to a Lambda function), and shows that a changed stored attribute is caught. With a real table, pass your own `DynamoDBClient` and `KmsKeyring` instead.
 */
import type { AddressInfo } from 'node:net'
import { CreateTableCommand, DynamoDBClient, GetItemCommand, PutItemCommand } from '@aws-sdk/client-dynamodb'
import dynalite from 'dynalite'
import { CachingMaterialsManager, defaultKmsClientSupplier, EnvelopeError, KmsKeyring, LocalMaterialsCache } from '../src/index.js'
import { createEncryptedDynamoDbClient, DynamoDbItemEncryptor, itemFromDynamoDbJson, itemToDynamoDbJson } from '../src/dynamodb/index.js'
import { startKmsEmulator } from '../src/testing/index.js'

const TABLE = 'orders'
const credentials = { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'example' }

function show(label: string, item: Record<string, unknown> | undefined): void {
  const text = JSON.stringify(item, (_, value) => (value instanceof Uint8Array ? `<${value.length} bytes>` : value))
  console.log(`${label}\n  ${text}\n`)
}

async function main(): Promise<void> {
  const kms = await startKmsEmulator({ regions: ['us-east-1'] })
  const server = dynalite({ createTableMs: 0 })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  const raw = new DynamoDBClient({ endpoint, region: 'us-east-1', credentials })
  try {
    await raw.send(
      new CreateTableCommand({
        TableName: TABLE,
        KeySchema: [{ AttributeName: 'customer', KeyType: 'HASH' }, { AttributeName: 'order', KeyType: 'RANGE' }],
        AttributeDefinitions: [{ AttributeName: 'customer', AttributeType: 'S' }, { AttributeName: 'order', AttributeType: 'S' }],
        BillingMode: 'PAY_PER_REQUEST',
      }),
    )
    const { arn } = kms.createKey({ region: 'us-east-1' })
    const keyring = new KmsKeyring({ generatorKeyId: arn, clientSupplier: defaultKmsClientSupplier({ clientConfig: { endpoint: kms.endpoint, credentials } }) })
    const orders = new DynamoDbItemEncryptor({
      tableName: TABLE,
      partitionKeyName: 'customer',
      sortKeyName: 'order',
      attributeActionsOnEncrypt: { customer: 'SIGN_ONLY', order: 'SIGN_ONLY', card: 'ENCRYPT_AND_SIGN', address: 'ENCRYPT_AND_SIGN', total: 'SIGN_ONLY', note: 'DO_NOTHING' },
      allowedUnsignedAttributes: ['note'],
      // Re-reading the same item reuses its data key instead of calling KMS again.
      materialsManager: new CachingMaterialsManager({ keyring, cache: new LocalMaterialsCache({ capacity: 1000 }), maxAge: 5 * 60_000 }),
    })
    const client = createEncryptedDynamoDbClient(new DynamoDBClient({ endpoint, region: 'us-east-1', credentials }), { tables: { [TABLE]: orders } })

    const key = { customer: { S: 'c-42' }, order: { S: '2026-001' } }
    const item = { ...key, card: { S: '4111 1111 1111 1111' }, address: { M: { city: { S: 'Lisbon' } } }, total: { N: '99.90' }, note: { S: 'gift' } }
    show('Written through the encrypted client:', item)
    await client.send(new PutItemCommand({ TableName: TABLE, Item: item }))

    const stored = (await raw.send(new GetItemCommand({ TableName: TABLE, Key: key }))).Item ?? {}
    show('What DynamoDB stores (a plain client):', stored)
    show('Read through the encrypted client:', (await client.send(new GetItemCommand({ TableName: TABLE, Key: key }))).Item)

    // A Lambda function on the table's stream gets the new item in DynamoDB JSON, binaries as base64 text.
    const record = JSON.parse(JSON.stringify({ eventName: 'INSERT', dynamodb: { Keys: key, NewImage: itemToDynamoDbJson(stored) } }))
    show("Decrypted from a stream record's NewImage:", await orders.decryptItem(itemFromDynamoDbJson(record.dynamodb.NewImage)))

    // Someone with write access to the table changes a signed attribute.
    await raw.send(new PutItemCommand({ TableName: TABLE, Item: { ...stored, total: { N: '0.01' } } }))
    try {
      await client.send(new GetItemCommand({ TableName: TABLE, Key: key }))
      throw new Error('the changed item was accepted')
    } catch (error) {
      if (!(error instanceof EnvelopeError)) throw error
      console.log(`After changing "total" in the table, reading fails: ${error.code}\n  ${error.message}`)
    }
    console.log(`\nKMS calls: ${kms.callCount({ operation: 'GenerateDataKey' })} GenerateDataKey, ${kms.callCount({ operation: 'Decrypt' })} Decrypt`)
    client.destroy()
  } finally {
    raw.destroy()
    await new Promise<void>((resolve) => server.close(() => resolve()))
    await kms.close()
  }
}

main().catch((error) => {
  console.error(error)
  process.exitCode = 1
})
