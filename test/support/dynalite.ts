// Test support: DynamoDB on loopback (dynalite, in memory), started by the tests themselves.
import type { AddressInfo } from 'node:net'
import { CreateTableCommand, DynamoDBClient, type ScalarAttributeType } from '@aws-sdk/client-dynamodb'
import dynalite from 'dynalite'

export interface LocalDynamoDb {
  readonly endpoint: string
  /** A new low-level client for the local endpoint (static fake credentials, us-east-1). */
  client(): DynamoDBClient
  createTable(name: string, partitionKey: { name: string; type: ScalarAttributeType }, sortKey?: { name: string; type: ScalarAttributeType }): Promise<void>
  close(): Promise<void>
}

export async function startDynalite(): Promise<LocalDynamoDb> {
  const server = dynalite({ createTableMs: 0, deleteTableMs: 0, updateTableMs: 0 })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  const client = () => new DynamoDBClient({ endpoint, region: 'us-east-1', credentials: { accessKeyId: 'AKIDLOCAL', secretAccessKey: 'local' } })
  const admin = client()
  return {
    endpoint,
    client,
    async createTable(name, partitionKey, sortKey) {
      const keys = sortKey === undefined ? [partitionKey] : [partitionKey, sortKey]
      await admin.send(
        new CreateTableCommand({
          TableName: name,
          KeySchema: keys.map((key, index) => ({ AttributeName: key.name, KeyType: index === 0 ? 'HASH' : 'RANGE' })),
          AttributeDefinitions: keys.map((key) => ({ AttributeName: key.name, AttributeType: key.type })),
          BillingMode: 'PAY_PER_REQUEST',
        }),
      )
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  }
}
