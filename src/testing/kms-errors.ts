// The failures the emulator answers with. They never leave the emulator as exceptions: the server turns each
// into the JSON error body and `x-amzn-ErrorType` header that AWS KMS sends, so the unmodified SDK raises the
// same typed exception it would raise against the real service.

/** One KMS error answer: the `__type`, the HTTP status and a message that names no key material. */
export class KmsServiceError extends Error {
  readonly type: string
  readonly status: number

  constructor(type: string, message: string, status = 400) {
    super(message)
    this.name = type
    this.type = type
    this.status = status
  }
}

export const notFound = (message: string): KmsServiceError => new KmsServiceError('NotFoundException', message)
export const validation = (message: string): KmsServiceError => new KmsServiceError('ValidationException', message)
export const invalidState = (message: string): KmsServiceError => new KmsServiceError('KMSInvalidStateException', message)
export const invalidKeyUsage = (message: string): KmsServiceError => new KmsServiceError('InvalidKeyUsageException', message)
export const invalidCiphertext = (): KmsServiceError =>
  // Real KMS says nothing more here; saying which check failed would help an attacker more than a developer.
  new KmsServiceError('InvalidCiphertextException', 'The ciphertext is invalid, was altered, or the encryption context differs.')
export const unsupported = (message: string): KmsServiceError => new KmsServiceError('UnsupportedOperationException', message)
/** A request field of the wrong JSON type: AWS JSON services call this a serialization failure. */
export const serialization = (message: string): KmsServiceError => new KmsServiceError('SerializationException', message)
