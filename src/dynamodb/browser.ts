/**
 * kms-envelope/dynamodb for browsers, Workers and React Native (its `browser` and `react-native` conditions): the
 * same API as the Node build, on WebCrypto (with @noble, loaded on demand, where there is no `crypto.subtle`).
 * Items cross between it and the Node build both ways, and it reads the official SDKs' items.
 */
import { setUpErrorClasses } from '../error-copies.js'
import * as errors from '../errors.js'
import * as itemErrors from './errors.js'
import type { DynamoDbItemEncryptorConfig } from './config.js'
import { ItemEncryptorCore } from './item-encryptor.js'
import { webItemBackend } from './web-backend.js'

setUpErrorClasses({ ...errors, ...itemErrors })

/**
 * Encrypts and signs DynamoDB items attribute by attribute for one table, as the Node build's
 * `DynamoDbItemEncryptor` does, on WebCrypto.
 *
 * @example
 * ```ts
 * import { RawAesKeyring } from 'kms-envelope'
 * import { DynamoDbItemEncryptor } from 'kms-envelope/dynamodb'
 * const notes = new DynamoDbItemEncryptor({
 *   tableName: 'notes', partitionKeyName: 'pk',
 *   attributeActionsOnEncrypt: { pk: 'SIGN_ONLY', body: 'ENCRYPT_AND_SIGN' },
 *   keyring,
 * })
 * const stored = await notes.encryptItem({ pk: { S: 'n1' }, body: { S: 'remember the milk' } })
 * ```
 */
export class DynamoDbItemEncryptor extends ItemEncryptorCore {
  constructor(config: DynamoDbItemEncryptorConfig) {
    super(config, webItemBackend)
  }
}

export * from './exports.js'
