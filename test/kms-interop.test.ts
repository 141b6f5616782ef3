/**
 * AWS KMS keyrings against the official AWS Encryption SDK for JavaScript, both ways, through the local KMS
 * emulator: the official `KmsKeyringNode` and its multi-Region-key keyrings use the real @aws-sdk/client-kms
 * pointed at the emulator, as ours do.
 */
import { KMS } from '@aws-sdk/client-kms'
import {
  AwsKmsMrkAwareSymmetricKeyringNode,
  buildClient,
  CommitmentPolicy as OfficialCommitmentPolicy,
  getClient,
  KmsKeyringNode,
  type AlgorithmSuiteIdentifier,
  type KeyringNode,
} from '@aws-crypto/client-node'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  decrypt,
  defaultKmsClientSupplier,
  encrypt,
  KmsDiscoveryKeyring,
  KmsKeyring,
  KmsMrkKeyring,
  type CommitmentPolicy,
  type Keyring,
} from '../src/index.js'
import { startKmsEmulator, type KmsEmulator } from '../src/testing/index.js'

const CREDENTIALS = { accessKeyId: 'AKIDINTEROP', secretAccessKey: 'interop' }
/** 0x0478 and 0x0578 (format v2, committing) and 0x0378 (format v1, signed, not committing). */
const SUITES = [0x0478, 0x0578, 0x0378] as const
const CONTEXT = { tenant: 'acme', 'purpose ü': 'interop ✓' }

const policyFor = (suite: number): CommitmentPolicy =>
  suite === 0x0478 || suite === 0x0578 ? 'REQUIRE_ENCRYPT_REQUIRE_DECRYPT' : 'FORBID_ENCRYPT_ALLOW_DECRYPT'
const decryptPolicyFor = (suite: number): CommitmentPolicy =>
  suite === 0x0478 || suite === 0x0578 ? 'REQUIRE_ENCRYPT_REQUIRE_DECRYPT' : 'REQUIRE_ENCRYPT_ALLOW_DECRYPT'

let kms: KmsEmulator
let keyArn: string
let mrkPrimary: string
let mrkReplica: string
let clientSupplier: ReturnType<typeof defaultKmsClientSupplier>
// The official SDK's client interface predates exactOptionalPropertyTypes; the client class is the same one ours uses.
let officialClientProvider: (region: string) => never

beforeAll(async () => {
  kms = await startKmsEmulator({ regions: ['us-east-1', 'eu-west-1'] })
  keyArn = kms.createKey({ region: 'us-east-1' }).arn
  mrkPrimary = kms.createKey({ region: 'us-east-1', multiRegion: true }).arn
  mrkReplica = kms.replicateKey(mrkPrimary, 'eu-west-1').arn
  const clientConfig = { endpoint: kms.endpoint, credentials: CREDENTIALS }
  clientSupplier = defaultKmsClientSupplier({ clientConfig })
  officialClientProvider = getClient(KMS as never, clientConfig) as unknown as (region: string) => never
})

afterAll(async () => {
  await kms.close()
})

const official = (policy: CommitmentPolicy) => buildClient(OfficialCommitmentPolicy[policy])

async function officialEncrypt(keyring: KeyringNode, suite: number, plaintext: Uint8Array): Promise<Uint8Array> {
  const { result } = await official(policyFor(suite)).encrypt(keyring, plaintext, {
    suiteId: suite as AlgorithmSuiteIdentifier,
    encryptionContext: { ...CONTEXT },
    frameLength: 1024,
  })
  return result
}

async function officialDecrypt(keyring: KeyringNode, suite: number, ciphertext: Uint8Array) {
  const { plaintext, messageHeader } = await official(decryptPolicyFor(suite)).decrypt(keyring, ciphertext)
  return { plaintext, messageHeader }
}

function plaintextOf(size: number): Uint8Array {
  return Uint8Array.from({ length: size }, (_, i) => (i * 31 + size) & 0xff)
}

describe.each(SUITES)('KMS keyrings and the official SDK, suite %s', (suite) => {
  const sizes = [0, 1, 1024, 5000]

  it('ours (KmsKeyring) encrypts, the official KmsKeyringNode decrypts', async () => {
    const ours: Keyring = new KmsKeyring({ generatorKeyId: keyArn, clientSupplier })
    const theirs = new KmsKeyringNode({ keyIds: [keyArn], clientProvider: officialClientProvider })
    for (const size of sizes) {
      const plaintext = plaintextOf(size)
      const { ciphertext, header } = await encrypt(ours, plaintext, {
        algorithmSuite: suite,
        commitmentPolicy: policyFor(suite),
        encryptionContext: CONTEXT,
        frameLength: 1024,
      })
      expect(header.encryptedDataKeys.map((edk) => edk.providerId)).toEqual(['aws-kms'])
      const { plaintext: decrypted, messageHeader } = await officialDecrypt(theirs, suite, ciphertext)
      expect(Buffer.from(decrypted).equals(Buffer.from(plaintext)), `size ${size}`).toBe(true)
      expect(messageHeader.suiteId).toBe(suite)
      expect(messageHeader.encryptionContext).toMatchObject(CONTEXT)
    }
  })

  it('the official KmsKeyringNode encrypts, ours (KmsKeyring and KmsDiscoveryKeyring) decrypts', async () => {
    const theirs = new KmsKeyringNode({ generatorKeyId: keyArn, clientProvider: officialClientProvider })
    const strict = new KmsKeyring({ keyIds: [keyArn], clientSupplier })
    const discovery = new KmsDiscoveryKeyring({ clientSupplier, discoveryFilter: { partition: 'aws', accountIds: [kms.accountId] } })
    for (const size of sizes) {
      const plaintext = plaintextOf(size)
      const ciphertext = await officialEncrypt(theirs, suite, plaintext)
      for (const keyring of [strict, discovery]) {
        const { plaintext: decrypted, header } = await decrypt(keyring, ciphertext, {
          commitmentPolicy: decryptPolicyFor(suite),
          encryptionContext: CONTEXT,
        })
        expect(Buffer.from(decrypted).equals(Buffer.from(plaintext)), `size ${size}`).toBe(true)
        expect(header.algorithmSuiteId).toBe(suite)
        expect(new TextDecoder().decode(header.encryptedDataKeys[0]?.providerInfo)).toBe(keyArn)
      }
    }
  })

  it('multi-Region keys: each side encrypts in us-east-1 and the other decrypts through the eu-west-1 replica', async () => {
    const plaintext = plaintextOf(3000)
    const oursPrimary = new KmsMrkKeyring({ keyId: mrkPrimary, clientSupplier })
    const oursReplica = new KmsMrkKeyring({ keyId: mrkReplica, clientSupplier })
    const theirsPrimary = new AwsKmsMrkAwareSymmetricKeyringNode({
      keyId: mrkPrimary,
      client: officialClientProvider('us-east-1'),
    })
    const theirsReplica = new AwsKmsMrkAwareSymmetricKeyringNode({
      keyId: mrkReplica,
      client: officialClientProvider('eu-west-1'),
    })

    const { ciphertext: fromOurs } = await encrypt(oursPrimary, plaintext, {
      algorithmSuite: suite,
      commitmentPolicy: policyFor(suite),
      encryptionContext: CONTEXT,
    })
    kms.resetCalls()
    const { plaintext: byTheirs } = await officialDecrypt(theirsReplica, suite, fromOurs)
    expect(Buffer.from(byTheirs).equals(Buffer.from(plaintext))).toBe(true)
    expect(kms.callCount({ region: 'us-east-1' })).toBe(0)

    const fromTheirs = await officialEncrypt(theirsPrimary, suite, plaintext)
    kms.resetCalls()
    const { plaintext: byOurs } = await decrypt(oursReplica, fromTheirs, { commitmentPolicy: decryptPolicyFor(suite) })
    expect(Buffer.from(byOurs).equals(Buffer.from(plaintext))).toBe(true)
    expect(kms.callCount({ region: 'us-east-1' })).toBe(0)
    expect(kms.callCount({ region: 'eu-west-1', operation: 'Decrypt' })).toBe(1)
  })

  it('a message from the official SDK under another context fails our expected-context check before any KMS call', async () => {
    const theirs = new KmsKeyringNode({ generatorKeyId: keyArn, clientProvider: officialClientProvider })
    const ciphertext = await officialEncrypt(theirs, suite, plaintextOf(10))
    kms.resetCalls()
    const strict = new KmsKeyring({ keyIds: [keyArn], clientSupplier })
    await expect(
      decrypt(strict, ciphertext, { commitmentPolicy: decryptPolicyFor(suite), encryptionContext: { tenant: 'someone else' } }),
    ).rejects.toMatchObject({ code: 'ENCRYPTION_CONTEXT_MISMATCH' })
    expect(kms.calls.length).toBe(0)
  })
})
