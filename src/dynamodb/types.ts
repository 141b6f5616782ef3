/**
 * Shared vocabulary of the DynamoDB item encryptor (spec: aws-database-encryption-sdk-dynamodb
 * specification/structured-encryption/structures.md and dynamodb-encryption-client/).
 */

/** What happens to one attribute on encrypt (spec: structured-encryption/structures.md#crypto-action). */
export type CryptoAction = 'ENCRYPT_AND_SIGN' | 'SIGN_ONLY' | 'SIGN_AND_INCLUDE_IN_ENCRYPTION_CONTEXT' | 'DO_NOTHING'

/** The crypto actions an item encryptor accepts, in the spec's order. */
export const CRYPTO_ACTIONS: readonly CryptoAction[] = [
  'ENCRYPT_AND_SIGN',
  'SIGN_ONLY',
  'SIGN_AND_INCLUDE_IN_ENCRYPTION_CONTEXT',
  'DO_NOTHING',
]

/**
 * One serialized attribute value: a two-byte type ID and the value bytes
 * (spec: structured-encryption/structures.md#terminal-data, dynamodb-encryption-client/ddb-attribute-serialization.md).
 * An encrypted terminal has type ID 0xFFFF and its value starts with the plaintext's type ID.
 */
export interface Terminal {
  readonly typeId: number
  readonly value: Uint8Array
}

/**
 * A DynamoDB attribute value in the low-level wire shape of `@aws-sdk/client-dynamodb` (exactly one member set), as
 * the item calls return it: assignable to that SDK's own `AttributeValue`, so that an encrypted item goes into a
 * `PutItemCommand` as it is. Declared here so the package's types do not require the AWS SDK.
 */
export type AttributeValue =
  | { readonly S: string }
  | { readonly N: string }
  | { readonly B: Uint8Array }
  | { readonly SS: string[] }
  | { readonly NS: string[] }
  | { readonly BS: Uint8Array[] }
  | { readonly M: Record<string, AttributeValue> }
  | { readonly L: AttributeValue[] }
  | { readonly NULL: boolean }
  | { readonly BOOL: boolean }

/** An item: attribute name to attribute value. */
export type Item = Readonly<Record<string, AttributeValue>>

/**
 * An attribute value as the item calls take it: `AttributeValue` with read-only arrays, or the AWS SDK's own
 * `AttributeValue`, whose union also has a member for a type that SDK did not know (`$unknown`, refused with
 * `INVALID_ITEM`), so that an item read with that SDK's own client goes in as it is.
 */
export type AttributeValueInput =
  | { readonly S: string }
  | { readonly N: string }
  | { readonly B: Uint8Array }
  | { readonly SS: readonly string[] }
  | { readonly NS: readonly string[] }
  | { readonly BS: readonly Uint8Array[] }
  | { readonly M: Readonly<Record<string, AttributeValueInput>> }
  | { readonly L: readonly AttributeValueInput[] }
  | { readonly NULL: boolean }
  | { readonly BOOL: boolean }
  | { readonly $unknown: readonly [string, unknown] }

/** An item as the item calls take it (see `AttributeValueInput`). */
export type ItemInput = Readonly<Record<string, AttributeValueInput>>

/** Options of `encryptItem`, `decryptItem` and their `…WithHeader` forms. */
export interface ItemCallOptions {
  /**
   * Abort the call: it rejects at once with \`ABORTED\`, and the KMS keyrings cancel their requests (see the
   * README's "Aborting a call").
   */
  readonly signal?: AbortSignal | undefined
}

/**
 * `encryptObject`'s options, passed to `marshall` of `@aws-sdk/util-dynamodb` (its `marshallOptions`; that
 * library's own options object is accepted as is). Declared here so the package's types do not require that
 * optional peer dependency. `removeUndefinedValues` defaults to true here.
 */
export interface ObjectMarshallOptions extends ItemCallOptions {
  /** Store empty strings, binaries and sets as `NULL`. */
  readonly convertEmptyValues?: boolean | undefined
  /** Leave out `undefined` values in objects, arrays and sets (default true); false makes them an error. */
  readonly removeUndefinedValues?: boolean | undefined
  /** Store a class instance (a `Date`, say) as a map of its own fields; without this, it is refused. */
  readonly convertClassInstanceToMap?: boolean | undefined
  /** Accept numbers beyond `Number.MAX_SAFE_INTEGER`, which lose precision. */
  readonly allowImpreciseNumbers?: boolean | undefined
}

/**
 * `decryptObject`'s options, passed to `unmarshall` of `@aws-sdk/util-dynamodb` (its `unmarshallOptions`).
 * Declared here so the package's types do not require that optional peer dependency.
 */
export interface ObjectUnmarshallOptions extends ItemCallOptions {
  /** Return numbers as that library's `NumberValue` (true), or through this function, instead of as `number`. */
  readonly wrapNumbers?: boolean | ((value: string) => unknown) | undefined
}

/** The reserved attribute holding the serialized header (spec: structured-encryption/encrypt-path-structure.md#header-field). */
export const HEADER_ATTRIBUTE = 'aws_dbe_head'
/** The reserved attribute holding the serialized footer (spec: structured-encryption/encrypt-path-structure.md#footer-field). */
export const FOOTER_ATTRIBUTE = 'aws_dbe_foot'
/** Attribute names starting with this are reserved for the encryptor (spec: ddb-table-encryption-config.md). */
export const RESERVED_PREFIX = 'aws_dbe_'
