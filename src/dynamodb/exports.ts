// What kms-envelope/dynamodb exports besides DynamoDbItemEncryptor, the same in its Node and browser builds.
export { createEncryptedDynamoDbClient, type DynamoDbClientLike, type EncryptedClientOptions } from './client/middleware.js'
export { itemFromDynamoDbJson, itemToDynamoDbJson } from './client/wire.js'
export type { TableItemEncryptor } from './client/operations.js'
export type { DynamoDbItemEncryptorConfig, PlaintextPolicy } from './config.js'
export type { ItemWithHeader } from './item-encryptor.js'
export type { AttributeValue, AttributeValueInput, CryptoAction, Item, ItemCallOptions, ItemInput, ObjectMarshallOptions, ObjectUnmarshallOptions } from './types.js'
export { FOOTER_ATTRIBUTE, HEADER_ATTRIBUTE } from './types.js'
export { InvalidItemError, ItemAuthenticationError, MalformedItemError, UnsupportedRequestError } from './errors.js'
