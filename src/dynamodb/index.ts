/**
 * kms-envelope/dynamodb: attribute-level encryption and signing of DynamoDB items, in the AWS Database
 * Encryption SDK's item format, on node:crypto.
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
import { nodeBackend } from '../backend/node.js'
import { setUpErrorClasses } from '../error-copies.js'
import * as errors from '../errors.js'
import * as itemErrors from './errors.js'
import type { DynamoDbItemEncryptorConfig } from './config.js'
import { ItemEncryptorCore } from './item-encryptor.js'

setUpErrorClasses({ ...errors, ...itemErrors })

/** {@inheritDoc ItemEncryptorCore} */
export class DynamoDbItemEncryptor extends ItemEncryptorCore {
  constructor(config: DynamoDbItemEncryptorConfig) {
    super(config, nodeBackend)
  }
}

export { createEncryptedDynamoDbClient, type DynamoDbClientLike, type EncryptedClientOptions } from './client/middleware.js'
export type { TableItemEncryptor } from './client/operations.js'
export type { DynamoDbItemEncryptorConfig, PlaintextPolicy } from './config.js'
export type { ItemWithHeader } from './item-encryptor.js'
export type { AttributeValue, CryptoAction, Item, ItemCallOptions, ObjectMarshallOptions, ObjectUnmarshallOptions } from './types.js'
export { FOOTER_ATTRIBUTE, HEADER_ATTRIBUTE } from './types.js'
export { InvalidItemError, ItemAuthenticationError, MalformedItemError, UnsupportedRequestError } from './errors.js'
