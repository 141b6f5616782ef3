import { AuthenticationError, ConfigurationError, EnvelopeError, MalformedMessageError } from '../errors.js'

/**
 * An item cannot be encrypted as given: an attribute with no crypto action that is not allowed unsigned,
 * a missing or badly typed key attribute, a reserved attribute name, a value DynamoDB itself would refuse.
 */
export class InvalidItemError extends EnvelopeError {
  override readonly code = 'INVALID_ITEM'
}

/**
 * A stored item is not a well-formed encrypted item: `aws_dbe_head` or `aws_dbe_foot` missing or unparsable,
 * an encrypted attribute that is not binary, a header legend that does not match the item's signed attributes.
 */
export class MalformedItemError extends MalformedMessageError {
  override readonly code = 'MALFORMED_ITEM'
}

/**
 * The item failed authentication: no recipient tag matches, a signed or encrypted attribute was changed,
 * added or removed, or the item was moved to another table or key.
 */
export class ItemAuthenticationError extends AuthenticationError {
  override readonly code = 'ITEM_AUTHENTICATION_FAILED'
}

/** A DynamoDB request the encrypted client must not send: e.g. a condition or key expression on an encrypted attribute. */
export class UnsupportedRequestError extends ConfigurationError {
  override readonly code = 'UNSUPPORTED_DYNAMODB_REQUEST'
}
