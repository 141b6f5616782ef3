/**
 * A materials manager of your own: a tenant policy in front of the default manager.
 * Run it with `npm run example:custom-manager`.
 *
 * Every message must name its tenant in the encryption context, and only listed tenants may encrypt or decrypt.
 * The manager checks the request, adds a pair recording the policy version, and leaves the keys to a
 * DefaultMaterialsManager over a KMS keyring. A refused decrypt is refused before KMS is called. The library
 * checks what a custom manager returns (a data key of the suite's length, encrypted data keys, string context
 * values, the signing key): materials that would make a message no one can decrypt fail with KEYRING_FAILURE.
 * It runs on the local KMS emulator.
 */
import {
  decrypt,
  DefaultMaterialsManager,
  defaultKmsClientSupplier,
  encrypt,
  EncryptionContextMismatchError,
  EnvelopeError,
  KmsKeyring,
  type CompleteDecryptionMaterials,
  type CompleteEncryptionMaterials,
  type CryptoBackend,
  type DecryptionRequest,
  type EncryptionContext,
  type EncryptionRequest,
  type MaterialsManager,
} from '../src/index.js'
import { startKmsEmulator } from '../src/testing/index.js'

const POLICY_VERSION = '2'

class TenantPolicyManager implements MaterialsManager {
  readonly #inner: MaterialsManager
  readonly #tenants: ReadonlySet<string>

  constructor(inner: MaterialsManager, tenants: readonly string[]) {
    this.#inner = inner
    this.#tenants = new Set(tenants)
  }

  async getEncryptionMaterials(request: EncryptionRequest, backend: CryptoBackend): Promise<CompleteEncryptionMaterials> {
    this.#check(request.encryptionContext)
    // Pairs added here are bound to the message like the caller's: the keyring sees them too.
    const encryptionContext = { ...request.encryptionContext, 'policy-version': POLICY_VERSION }
    return this.#inner.getEncryptionMaterials({ ...request, encryptionContext }, backend)
  }

  async getDecryptionMaterials(request: DecryptionRequest, backend: CryptoBackend): Promise<CompleteDecryptionMaterials> {
    // The message's stored context, before any key is unwrapped: a refused tenant costs no KMS call.
    this.#check(request.encryptionContext)
    return this.#inner.getDecryptionMaterials(request, backend)
  }

  #check(context: EncryptionContext): void {
    const tenant = context.tenant
    if (tenant === undefined || !this.#tenants.has(tenant)) {
      // A library error class keeps the failure typed for callers that match on `code`.
      throw new EncryptionContextMismatchError(
        tenant === undefined ? 'The encryption context names no tenant.' : `Tenant "${tenant}" is not allowed here.`,
      )
    }
  }
}

async function main(): Promise<void> {
  const kms = await startKmsEmulator({ regions: ['us-east-1'] })
  try {
    const key = kms.createKey({ region: 'us-east-1', description: 'custom manager example' })
    const clientSupplier = defaultKmsClientSupplier({
      clientConfig: { endpoint: kms.endpoint, credentials: { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'example' } },
    })
    const keyring = new KmsKeyring({ generatorKeyId: key.arn, clientSupplier })
    const writer = new TenantPolicyManager(new DefaultMaterialsManager(keyring), ['acme', 'globex'])
    const reader = new TenantPolicyManager(new DefaultMaterialsManager(keyring), ['acme'])

    const { ciphertext, header } = await encrypt(writer, 'invoice #1001', { encryptionContext: { tenant: 'acme' } })
    console.log(`Encrypted for tenant acme: ${ciphertext.length} bytes; context keys ${Object.keys(header.encryptionContext).join(', ')}`)
    const { plaintext } = await decrypt(reader, ciphertext)
    console.log(`Decrypted by a reader that allows acme: "${new TextDecoder().decode(plaintext)}"`)

    for (const [what, attempt] of [
      ['Encrypting without a tenant', () => encrypt(writer, 'no tenant')],
      ['Encrypting for tenant initech', () => encrypt(writer, 'x', { encryptionContext: { tenant: 'initech' } })],
    ] as const) {
      await attempt().then(
        () => console.log(`${what}: accepted (unexpected)`),
        (error: unknown) => console.log(`${what}: ${(error as EnvelopeError).code}: ${(error as Error).message}`),
      )
    }

    const globex = (await encrypt(writer, 'invoice #2002', { encryptionContext: { tenant: 'globex' } })).ciphertext
    kms.resetCalls()
    const refused = await decrypt(reader, globex).then(
      () => 'accepted (unexpected)',
      (error: unknown) => `${(error as EnvelopeError).code}: ${(error as Error).message}`,
    )
    console.log(`Decrypting globex's message with the acme reader: ${refused} (${kms.calls.length} KMS calls)`)
  } finally {
    await kms.close()
  }
}

await main()
