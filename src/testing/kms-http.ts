// The KMS JSON 1.1 wire protocol as the emulator speaks it: the caller read from a SigV4 Authorization header,
// a bounded request body, JSON parsing and the response with AWS's headers.
import type { IncomingMessage, ServerResponse } from 'node:http'
import { KmsServiceError, serialization } from './kms-errors.js'

const MAX_BODY_BYTES = 1024 * 1024
/** A body over MAX_BODY_BYTES is read and discarded up to this size so the client gets a clean 413. */
const MAX_DRAINED_BYTES = 16 * MAX_BODY_BYTES
const JSON_CONTENT_TYPE = 'application/x-amz-json-1.1'
export const TARGET_PREFIX = 'TrentService.'
const CREDENTIAL_SCOPE = /Credential=([^/,\s]+)\/(\d{8})\/([^/,\s]+)\/([^/,\s]+)\/aws4_request/

export interface Caller {
  readonly accessKeyId: string
  readonly region: string
}

/** Read the caller from a SigV4 `Authorization` header, failing as AWS front ends do. */
export function callerOf(header: string | undefined): Caller {
  if (header === undefined || header === '') {
    throw new KmsServiceError('MissingAuthenticationTokenException', 'Request is missing Authentication Token')
  }
  const scope = CREDENTIAL_SCOPE.exec(header)
  if (!header.startsWith('AWS4-HMAC-SHA256 ') || scope === null || !header.includes('SignedHeaders=') || !header.includes('Signature=')) {
    throw new KmsServiceError(
      'IncompleteSignatureException',
      "Authorization header requires the AWS4-HMAC-SHA256 scheme with 'Credential=AKID/yyyymmdd/region/kms/aws4_request', 'SignedHeaders' and 'Signature'.",
    )
  }
  const [, accessKeyId, , region, service] = scope as unknown as [string, string, string, string, string]
  if (service !== 'kms') throw new KmsServiceError('InvalidSignatureException', `Credential should be scoped to correct service: 'kms', not '${service}'.`)
  return { accessKeyId, region }
}

export function readBody(request: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    let size = 0
    const tooLarge = new KmsServiceError('ValidationException', `The request body exceeds ${MAX_BODY_BYTES} bytes.`, 413)
    if (Number(request.headers['content-length']) > MAX_DRAINED_BYTES) {
      reject(tooLarge)
      return
    }
    request.on('data', (chunk: Buffer) => {
      size += chunk.length
      if (size <= MAX_BODY_BYTES) chunks.push(chunk)
      else if (size > MAX_DRAINED_BYTES) reject(tooLarge)
    })
    request.on('end', () => (size > MAX_BODY_BYTES ? reject(tooLarge) : resolve(Buffer.concat(chunks))))
    // The connection going before the end of the body ('error' with ECONNRESET "aborted", or 'close') is the
    // client's doing, not the emulator failing. After the end, 'close' settles nothing.
    const cutShort = (): void => reject(new KmsServiceError('ValidationException', 'The request body was cut short.'))
    request.on('error', cutShort)
    request.on('close', cutShort)
  })
}

export function parseJsonObject(body: Buffer): Record<string, unknown> {
  let parsed: unknown
  try {
    parsed = body.length === 0 ? {} : JSON.parse(body.toString('utf8'))
  } catch {
    throw serialization('The request body is not valid JSON.')
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw serialization('The request body must be a JSON object.')
  return parsed as Record<string, unknown>
}

export function send(response: ServerResponse, status: number, body: object, requestId: string, errorType?: string): void {
  if (response.headersSent || response.destroyed) return
  const text = JSON.stringify(body)
  response.writeHead(status, {
    'Content-Type': JSON_CONTENT_TYPE,
    'Content-Length': Buffer.byteLength(text),
    'x-amzn-RequestId': requestId,
    ...(errorType === undefined ? {} : { 'x-amzn-ErrorType': errorType }),
    ...(status === 413 ? { Connection: 'close' } : {}),
  })
  response.end(text)
}
