/**
 * kms-envelope/dynamodb: attribute-level encryption and signing of DynamoDB items, in the AWS Database
 * Encryption SDK's item format, on node:crypto (the `browser` and `react-native` conditions get browser.ts, on
 * WebCrypto).
 *
 * @example
 * ```ts
 * import { DynamoDbItemEncryptor, createEncryptedDynamoDbClient } from 'kms-envelope/dynamodb'
 * const orders = new DynamoDbItemEncryptor({
 *   tableName: 'orders', partitionKeyName: 'pk',
 *   attributeActionsOnEncrypt: { pk: 'SIGN_ONLY', card: 'ENCRYPT_AND_SIGN', note: 'DO_NOTHING' },
 *   allowedUnsignedAttributes: ['note'],
 *   keyring,
 * })
 * const client = createEncryptedDynamoDbClient(new DynamoDBClient({}), { tables: { orders } })
 * ```
 */
import { setUpErrorClasses } from '../error-copies.js'
import * as errors from '../errors.js'
import * as itemErrors from './errors.js'
import type { DynamoDbItemEncryptorConfig } from './config.js'
import { ItemEncryptorCore } from './item-encryptor.js'
import { nodeItemBackend } from './node-backend.js'

setUpErrorClasses({ ...errors, ...itemErrors })

/**
 * Encrypts and signs DynamoDB items attribute by attribute for one table, in the AWS Database Encryption SDK's
 * item format: `ENCRYPT_AND_SIGN` attributes become binary ciphertext, `SIGN_ONLY` ones stay readable, and
 * `aws_dbe_head`/`aws_dbe_foot` carry the wrapped data keys and the signatures.
 *
 * @example
 * ```ts
 * import { DynamoDbItemEncryptor } from 'kms-envelope/dynamodb'
 * const encryptor = new DynamoDbItemEncryptor({
 *   tableName: 'orders', partitionKeyName: 'pk', sortKeyName: 'sk',
 *   attributeActionsOnEncrypt: { pk: 'SIGN_ONLY', sk: 'SIGN_ONLY', card: 'ENCRYPT_AND_SIGN', status: 'SIGN_ONLY' },
 *   keyring,
 * })
 * const stored = await encryptor.encryptItem({ pk: { S: 'u1' }, sk: { S: 'o1' }, card: { S: '4111…' }, status: { S: 'paid' } })
 * const item = await encryptor.decryptItem(stored)
 * ```
 */
export class DynamoDbItemEncryptor extends ItemEncryptorCore {
  constructor(config: DynamoDbItemEncryptorConfig) {
    super(config, nodeItemBackend)
  }
}

export * from './exports.js'
