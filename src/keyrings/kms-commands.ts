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

type KmsSdk = typeof import('@aws-sdk/client-kms')

/** Load @aws-sdk/client-kms once; a failed load is retried on the next call. */
export const loadKmsSdk: () => Promise<KmsSdk> = /* @__PURE__ */ loadOnce(
  () => import('@aws-sdk/client-kms'),
  (error) =>
    // Missing, or installed but failing to load (a bundler that cannot load it, say): the cause tells which.
    new ConfigurationError('The KMS keyrings could not load @aws-sdk/client-kms (see cause), an optional peer dependency: `npm install` it if missing.', {
      cause: error,
    }),
)

// Responses are returned as `unknown`: a caller-supplied client may answer anything, so the keyrings
// check every field they use.

export async function sendGenerateDataKey(client: KmsClientLike, input: GenerateDataKeyCommandInput): Promise<unknown> {
  const { GenerateDataKeyCommand } = await loadKmsSdk()
  return client.send(new GenerateDataKeyCommand(input))
}

export async function sendEncrypt(client: KmsClientLike, input: EncryptCommandInput): Promise<unknown> {
  const { EncryptCommand } = await loadKmsSdk()
  return client.send(new EncryptCommand(input))
}

export async function sendDecrypt(client: KmsClientLike, input: DecryptCommandInput): Promise<unknown> {
  const { DecryptCommand } = await loadKmsSdk()
  return client.send(new DecryptCommand(input))
}

export async function sendGetPublicKey(client: KmsClientLike, input: GetPublicKeyCommandInput): Promise<unknown> {
  const { GetPublicKeyCommand } = await loadKmsSdk()
  return client.send(new GetPublicKeyCommand(input))
}
