// The only module that touches @aws-sdk/client-kms at run time, and only through a dynamic import:
// importing kms-envelope loads no AWS SDK code until a KMS keyring makes its first call.
import type {
  DecryptCommandInput,
  EncryptCommandInput,
  GenerateDataKeyCommandInput,
  GetPublicKeyCommandInput,
} from '@aws-sdk/client-kms'
import { ConfigurationError } from '../errors.js'
import { loadOnce } from '../load-on-demand.js'
import type { KmsClientLike } from './kms-client.js'
import { isBytes } from '../is-bytes.js'

type KmsSdk = typeof import('@aws-sdk/client-kms')

/** Load @aws-sdk/client-kms once; a failed load is retried on the next call. */
export const loadKmsSdk: () => Promise<KmsSdk> = /* @__PURE__ */ loadOnce(
  // The `.catch` on the import itself tells esbuild (and tools built on it) that a missing SDK fails here, at run
  // time, instead of failing the build of a page that never calls KMS (one that only encrypts with KmsRsaKeyring).
  () =>
    import('@aws-sdk/client-kms')
      .catch((error: unknown) => {
        throw error
      })
      .then((sdk) => {
        // A bundler told the SDK is absent (webpack's `resolve.fallback: { '@aws-sdk/client-kms': false }`) loads an empty module.
        if (typeof sdk?.KMSClient !== 'function') throw new Error('The module that loaded as @aws-sdk/client-kms has no KMSClient: a bundler left it out.')
        return sdk
      }),
  (error) =>
    // Missing, or installed but failing to load (a bundler that cannot load it, say): the cause tells which.
    new ConfigurationError('The KMS keyrings could not load @aws-sdk/client-kms (see cause), an optional peer dependency: `npm install` it if missing.', {
      cause: error,
    }),
)

// Responses are returned as `unknown`: a caller-supplied client may answer anything, so the keyrings
// check every field they use.

/**
 * The AWS SDK keeps the raw response on an error it could not parse a response into: as `$response.body` (bytes,
 * or text) and `$responseBodyText`, hidden but reachable from our error's `cause`. For GenerateDataKey and
 * Decrypt that raw response can hold the plaintext data key (a body cut short by a proxy, say): its bytes are
 * zeroed and dropped, and an error whose text copy cannot be dropped is replaced by one with its name and message.
 */
function withoutResponseBody(error: unknown): unknown {
  if (typeof error !== 'object' || error === null) return error
  try {
    const response = (error as { $response?: { body?: unknown } }).$response
    if (typeof response === 'object' && response !== null && response.body !== undefined) {
      if (isBytes(response.body)) response.body.fill(0)
      response.body = new Uint8Array(0)
    }
    const text = (error as { $responseBodyText?: unknown }).$responseBodyText
    if (typeof text !== 'string' || !text.includes('Plaintext')) return error
    const { name, message, $metadata } = error as { name?: unknown; message?: unknown; $metadata?: unknown }
    return Object.assign(new Error(String(message)), { name: String(name), $metadata })
  } catch {
    return new Error('The KMS client failed with an error that could not be inspected.')
  }
}

/** The options of a client's `send`: the caller's abort signal, which cancels the request. */
const sendOptions = (signal: AbortSignal | undefined) => (signal === undefined ? undefined : { abortSignal: signal })

async function sendForPlaintext(client: KmsClientLike, command: { readonly input: object }, signal: AbortSignal | undefined): Promise<unknown> {
  try {
    return await client.send(command, sendOptions(signal))
  } catch (error) {
    throw withoutResponseBody(error)
  }
}

export async function sendGenerateDataKey(client: KmsClientLike, input: GenerateDataKeyCommandInput, signal: AbortSignal | undefined): Promise<unknown> {
  const { GenerateDataKeyCommand } = await loadKmsSdk()
  return sendForPlaintext(client, new GenerateDataKeyCommand(input), signal)
}

export async function sendEncrypt(client: KmsClientLike, input: EncryptCommandInput, signal: AbortSignal | undefined): Promise<unknown> {
  const { EncryptCommand } = await loadKmsSdk()
  return client.send(new EncryptCommand(input), sendOptions(signal))
}

export async function sendDecrypt(client: KmsClientLike, input: DecryptCommandInput, signal: AbortSignal | undefined): Promise<unknown> {
  const { DecryptCommand } = await loadKmsSdk()
  return sendForPlaintext(client, new DecryptCommand(input), signal)
}

export async function sendGetPublicKey(client: KmsClientLike, input: GetPublicKeyCommandInput): Promise<unknown> {
  const { GetPublicKeyCommand } = await loadKmsSdk()
  return client.send(new GetPublicKeyCommand(input))
}
