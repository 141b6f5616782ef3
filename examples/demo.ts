/**
 * The main demo: encrypt a file's worth of data under an AWS KMS multi-Region key in one Region and
 * decrypt it through the key's replica in another Region, calling only that Region's KMS.
 * Run it with `npm run demo`.
 *
 * By default it runs on the local KMS emulator (kms-envelope/testing), started here on a loopback port.
 * With `KMS_KEY_ARN` set (and normal AWS credentials) it runs against real AWS KMS instead:
 *   KMS_KEY_ARN=arn:aws:kms:us-east-1:...:key/mrk-...  KMS_REPLICA_REGION=eu-west-1  npm run demo
 * (without KMS_REPLICA_REGION, or for a single-Region key, it decrypts in the key's own Region).
 */
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import {
  ConfigurationError,
  decrypt,
  defaultKmsClientSupplier,
  encrypt,
  EnvelopeError,
  formatKmsArn,
  isMultiRegionKey,
  KmsMrkKeyring,
  parseKmsArn,
  type KmsClientSupplier,
  type MessageHeader,
} from '../src/index.js'
import { startKmsEmulator, type KmsEmulator } from '../src/testing/index.js'

interface Setup {
  where: string
  encryptKeyArn: string
  decryptKeyArn: string
  clientSupplier: KmsClientSupplier
  emulator?: KmsEmulator
  /** A setting the demo does not use, and why. */
  note?: string
}

async function setUp(): Promise<Setup> {
  const realKeyArn = process.env.KMS_KEY_ARN
  if (realKeyArn !== undefined && realKeyArn !== '') {
    const arn = parseKmsArn(realKeyArn, 'KMS_KEY_ARN')
    if (arn.resourceType === 'alias') {
      // Checked now: encrypting through an alias works, and only the decrypt after it would fail.
      throw new ConfigurationError(
        `KMS_KEY_ARN names an alias, ${realKeyArn}: the demo also decrypts, and decrypting needs the key ARN the alias ` +
          `points to (\`aws kms describe-key --key-id ${realKeyArn}\` prints it as KeyMetadata.Arn).`,
      )
    }
    const replicaRegion = process.env.KMS_REPLICA_REGION || undefined
    const setup: Setup = { where: 'AWS KMS', encryptKeyArn: realKeyArn, decryptKeyArn: realKeyArn, clientSupplier: defaultKmsClientSupplier() }
    if (replicaRegion !== undefined && isMultiRegionKey(realKeyArn)) setup.decryptKeyArn = formatKmsArn({ ...arn, region: replicaRegion })
    if (replicaRegion !== undefined && !isMultiRegionKey(realKeyArn)) {
      setup.note = `KMS_REPLICA_REGION is not used: ${realKeyArn} is a single-Region key, so the demo decrypts in ${arn.region}.`
    }
    return setup
  }
  const emulator = await startKmsEmulator({ regions: ['us-east-1', 'eu-west-1'] })
  const primary = emulator.createKey({ region: 'us-east-1', multiRegion: true, description: 'kms-envelope demo' })
  const replica = emulator.replicateKey(primary.arn, 'eu-west-1')
  // The emulator does not check signatures; the AWS SDK still wants credentials to sign with.
  const clientSupplier = defaultKmsClientSupplier({
    clientConfig: { endpoint: emulator.endpoint, credentials: { accessKeyId: 'AKIDDEMO', secretAccessKey: 'demo' } },
  })
  return { where: `the local KMS emulator at ${emulator.endpoint}`, encryptKeyArn: primary.arn, decryptKeyArn: replica.arn, clientSupplier, emulator }
}

function printHeader(header: MessageHeader): void {
  console.log(`  suite 0x${header.algorithmSuiteId.toString(16).padStart(4, '0')}, format v${header.version}, ${header.contentType}, frame length ${header.frameLength}`)
  console.log(`  message ID ${Buffer.from(header.messageId).toString('hex')}`)
  for (const [key, value] of Object.entries(header.encryptionContext)) console.log(`  context   ${key} = ${value.length > 40 ? `${value.slice(0, 37)}...` : value}`)
  for (const edk of header.encryptedDataKeys) {
    console.log(`  data key  wrapped by ${edk.providerId} ${new TextDecoder().decode(edk.providerInfo)} (${edk.ciphertext.length} bytes)`)
  }
}

function callsByRegion(emulator: KmsEmulator): string {
  const counts = new Map<string, number>()
  for (const call of emulator.calls) {
    const label = `${call.operation} in ${call.region}`
    counts.set(label, (counts.get(label) ?? 0) + 1)
  }
  return [...counts].map(([label, n]) => `${label} x${n}`).join(', ') || 'none'
}

async function main(): Promise<void> {
  const setup = await setUp()
  try {
    console.log(`Using ${setup.where}.`)
    console.log(`  encrypt with ${setup.encryptKeyArn}`)
    console.log(`  decrypt with ${setup.decryptKeyArn}`)
    if (setup.note !== undefined) console.log(`  ${setup.note}`)

    // A file's worth of data: this project's README.
    const file = fileURLToPath(new URL('../README.md', import.meta.url))
    const data = readFileSync(file)
    const encryptionContext = { purpose: 'kms-envelope demo', file: 'README.md' }

    const encryptKeyring = new KmsMrkKeyring({ keyId: setup.encryptKeyArn, clientSupplier: setup.clientSupplier })
    const { ciphertext, header } = await encrypt(encryptKeyring, data, { encryptionContext })
    console.log(`\nEncrypted ${data.length} bytes of README.md into a ${ciphertext.length}-byte message:`)
    printHeader(header)
    if (setup.emulator) {
      console.log(`  KMS calls: ${callsByRegion(setup.emulator)}`)
      setup.emulator.resetCalls()
    }

    // Decrypt in the other Region: the replica unwraps the data key; the primary's Region is not called.
    const decryptKeyring = new KmsMrkKeyring({ keyId: setup.decryptKeyArn, clientSupplier: setup.clientSupplier })
    const { plaintext } = await decrypt(decryptKeyring, ciphertext, { encryptionContext })
    const same = Buffer.compare(Buffer.from(plaintext), data) === 0
    console.log(`\nDecrypted with the key in ${parseKmsArn(setup.decryptKeyArn).region}: ${plaintext.length} bytes, ${same ? 'identical to' : 'DIFFERENT FROM'} the file.`)
    if (setup.emulator) console.log(`  KMS calls: ${callsByRegion(setup.emulator)}`)
    console.log(`  first line: ${new TextDecoder().decode(plaintext).split('\n')[0]}`)

    // The encryption context is checked on decrypt: a different expectation is refused.
    try {
      await decrypt(decryptKeyring, ciphertext, { encryptionContext: { purpose: 'something else' } })
      console.log('\nUnexpected: a different encryption context was accepted.')
      process.exitCode = 1
    } catch (error) {
      const { code, message } = error as { code?: string; message: string }
      console.log(`\nDecrypt expecting another context is refused: ${code}: ${message}`)
    }
    if (!same) process.exitCode = 1
  } finally {
    await setup.emulator?.close()
  }
}

main().catch((error: unknown) => {
  process.exitCode = 1
  // kms-envelope's errors say what went wrong in their message: print that, not a stack trace.
  if (!(error instanceof EnvelopeError)) {
    console.error(error)
    return
  }
  console.error(`The demo failed: ${error.code}: ${error.message}`)
  if (process.env.KMS_KEY_ARN) {
    const replicaRegion = process.env.KMS_REPLICA_REGION
    const replica = replicaRegion ? ` and a replica of it in KMS_REPLICA_REGION (${replicaRegion})` : ''
    console.error(
      `With KMS_KEY_ARN set, the demo runs on real AWS KMS: it needs a key ARN (arn:aws:kms:<region>:<account>:key/<id>)${replica}, and AWS ` +
        'credentials allowed to use that key (AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY). Unset KMS_KEY_ARN to run on the local emulator.',
    )
  }
})
