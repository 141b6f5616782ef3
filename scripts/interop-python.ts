/**
 * Cross-check against the official AWS Encryption SDK for Python, both ways (not part of `npm test`: it needs the
 * Python SDK, which npm cannot install).
 *
 *   pip install aws-encryption-sdk        # or PYTHONPATH=<a checkout of aws-encryption-sdk-python>/src
 *   npm run interop:python [-- --python python3]
 *
 * For every suite, raw AES keys of 128, 192 and 256 bits, raw RSA keys with every padding, a multi-keyring (AES
 * generator, RSA child), an AWS KMS key and a KMS multi-Region key (on the KMS emulator, which the Python SDK's
 * boto3 client calls too; multi-Region messages decrypt through the key's replica in another Region), and four
 * messages (empty, one-byte frames, an exact multiple of the frame length, 10,000 bytes, and 10,000 bytes that
 * kms-envelope encrypts and decrypts through its streams) under a context with
 * non-ASCII keys: we encrypt and Python decrypts, then Python encrypts the same and we decrypt. Each side checks
 * the plaintext, the context, the suite and the frame length. The Python SDK writes frame lengths that are
 * multiples of 128 only, so its messages use 128 where ours use 1 or 64.
 *
 * Exit status: 0 when every message decrypts on both sides, 1 otherwise, 2 when the Python SDK cannot be loaded.
 */
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { generateKeyPairSync, randomBytes } from 'node:crypto'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'

import {
  ALGORITHM_SUITE_IDS,
  decrypt,
  decryptStream,
  defaultKmsClientSupplier,
  encrypt,
  encryptStream,
  KmsKeyring,
  KmsMrkKeyring,
  MultiKeyring,
  RawAesKeyring,
  RawRsaKeyring,
  type DecryptStreamOptions,
  type Keyring,
  type MessageHeader,
  type RsaPadding,
} from '../src/index.js'
import { startKmsEmulator, type KmsEmulator } from '../src/testing/index.js'
import { chunked, readAll } from '../test/helpers/web-streams.js'

const { values } = parseArgs({ options: { python: { type: 'string', default: 'python3' } } })
const python = values.python as string

const PADDINGS: readonly RsaPadding[] = ['OAEP-SHA1', 'OAEP-SHA256', 'OAEP-SHA384', 'OAEP-SHA512', 'PKCS1']
const KEYRINGS = ['aes-128', 'aes-192', 'aes-256', ...PADDINGS.map((padding) => `rsa-${padding}`), 'multi', 'kms', 'kms-mrk']
const CONTEXT = { purpose: 'interop', grüße: '世界 \u{1F600}', '\u{FF61}': 'sorts after U+1F600 in UTF-16, before it in UTF-8', '\u{1F600}': 'y' }
/** `stream`: kms-envelope encrypts and decrypts it through `encryptStream` and `decryptStream` (in 1,000-byte pieces) instead of one-shot. */
const MESSAGES: readonly { label: string; plaintext: Uint8Array; frameLength: number; stream?: true }[] = [
  { label: 'empty', plaintext: new Uint8Array(0), frameLength: 4096 },
  { label: 'one-byte frames', plaintext: randomBytes(17), frameLength: 1 },
  { label: 'three whole frames', plaintext: randomBytes(192), frameLength: 64 },
  { label: '10,000 bytes', plaintext: randomBytes(10_000), frameLength: 4096 },
  { label: '10,000 bytes through streams', plaintext: randomBytes(10_000), frameLength: 1024, stream: true },
]
const STREAMED = new Set(MESSAGES.filter((message) => message.stream).map((message) => message.label))
const COMMITTING = new Set([0x0478, 0x0578])
const base64 = (bytes: Uint8Array) => Buffer.from(bytes).toString('base64')

/** One message and what it must decrypt to; `ciphertext` is written by one side, read by the other. */
interface Case {
  suite: number
  keyring: string
  label: string
  frameLength: number
  context: Record<string, string>
  plaintext: string
  ciphertext: string
}

/** `decrypt`, through `decryptStream`. */
async function decryptThroughStream(keyring: Keyring, ciphertext: Uint8Array, options: DecryptStreamOptions): Promise<{ plaintext: Uint8Array; header: MessageHeader }> {
  const stream = decryptStream(keyring, options)
  const plaintext = await readAll(chunked(ciphertext, 1000).pipeThrough(stream))
  return { plaintext, header: await stream.header }
}

/** Both directions, in `folder`, with KMS on `kms`; returns the exit status. */
async function crossCheck(folder: string, kms: KmsEmulator): Promise<number> {
  const rsa = generateKeyPairSync('rsa', {
    modulusLength: 2048,
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
    publicKeyEncoding: { type: 'spki', format: 'pem' },
  })
  const aes = { 128: randomBytes(16), 192: randomBytes(24), 256: randomBytes(32) }
  const kmsKey = kms.createKey({ region: 'us-east-1' }).arn
  const mrk = kms.createKey({ region: 'us-east-1', multiRegion: true }).arn
  const replica = kms.replicateKey(mrk, 'eu-west-1').arn
  const credentials = { accessKeyId: 'AKIDINTEROP', secretAccessKey: 'interop' } // the emulator does not check signatures
  const clientSupplier = defaultKmsClientSupplier({ clientConfig: { endpoint: kms.endpoint, credentials } })
  writeFileSync(
    join(folder, 'keys.json'),
    JSON.stringify({
      namespace: 'interop',
      rsaPrivate: rsa.privateKey,
      aes: Object.fromEntries(Object.entries(aes).map(([bits, key]) => [bits, key.toString('base64')])),
      kms: { key: kmsKey, mrk, replica },
    }),
  )

  /** The keyring of that name; `decrypting` takes a multi-Region key's replica, in another Region. */
  const keyringFor = (name: string, decrypting = false): Keyring => {
    if (name === 'multi') return new MultiKeyring({ generator: keyringFor('aes-256'), children: [keyringFor('rsa-OAEP-SHA256')] })
    if (name === 'kms') return new KmsKeyring({ generatorKeyId: kmsKey, clientSupplier })
    if (name === 'kms-mrk') return new KmsMrkKeyring({ keyId: decrypting ? replica : mrk, clientSupplier })
    if (name.startsWith('aes-')) return new RawAesKeyring({ keyNamespace: 'interop', keyName: name, wrappingKey: new Uint8Array(aes[Number(name.slice(4)) as 128]) })
    return new RawRsaKeyring({ keyNamespace: 'interop', keyName: name, publicKey: rsa.publicKey, privateKey: rsa.privateKey, padding: name.slice(4) as RsaPadding })
  }

  const ours: Case[] = []
  for (const suite of ALGORITHM_SUITE_IDS) {
    for (const keyring of KEYRINGS) {
      for (const { label, plaintext, frameLength, stream } of MESSAGES) {
        const commitmentPolicy = COMMITTING.has(suite) ? 'REQUIRE_ENCRYPT_REQUIRE_DECRYPT' : 'FORBID_ENCRYPT_ALLOW_DECRYPT'
        const options = { algorithmSuite: suite, frameLength, encryptionContext: CONTEXT, commitmentPolicy } as const
        const ciphertext = stream
          ? await readAll(chunked(plaintext, 1000).pipeThrough(encryptStream(keyringFor(keyring), options)))
          : (await encrypt(keyringFor(keyring), plaintext, options)).ciphertext
        ours.push({ suite, keyring, label, frameLength, context: CONTEXT, plaintext: base64(plaintext), ciphertext: base64(ciphertext) })
      }
    }
  }
  writeFileSync(join(folder, 'ours.json'), JSON.stringify(ours))

  // Not spawnSync: the emulator answers the Python SDK's KMS calls from this process's event loop.
  const child = spawn(python, [new URL('interop_python.py', import.meta.url).pathname, folder], {
    stdio: ['ignore', 'inherit', 'inherit'],
    env: { ...process.env, AWS_ENDPOINT_URL_KMS: kms.endpoint, AWS_ACCESS_KEY_ID: credentials.accessKeyId, AWS_SECRET_ACCESS_KEY: credentials.secretAccessKey },
  })
  const [status, failure] = await Promise.race([once(child, 'close'), once(child, 'error').then(([error]) => [undefined, error as Error])])
  if (status !== 0 && status !== 1) {
    process.stderr.write(`interop-python: ${python} could not run the Python side (${failure?.message ?? `exit ${status}`}).\n`)
    return 2
  }

  const theirs = JSON.parse(readFileSync(join(folder, 'theirs.json'), 'utf8')) as Case[]
  const failures: string[] = []
  for (const c of theirs) {
    const what = `0x${c.suite.toString(16).padStart(4, '0')} ${c.keyring} ${c.label}`
    try {
      const ciphertext = Buffer.from(c.ciphertext, 'base64')
      const options = { commitmentPolicy: 'REQUIRE_ENCRYPT_ALLOW_DECRYPT', encryptionContext: c.context } as const
      const decrypting = STREAMED.has(c.label) ? decryptThroughStream : decrypt
      const { plaintext, header } = await decrypting(keyringFor(c.keyring, true), ciphertext, options)
      const { 'aws-crypto-public-key': _signingKey, ...context } = header.encryptionContext
      const sorted = (pairs: Record<string, string>) => JSON.stringify(Object.entries(pairs).sort())
      if (Buffer.from(plaintext).toString('base64') !== c.plaintext) failures.push(`${what}: another plaintext`)
      else if (sorted(context) !== sorted(c.context)) failures.push(`${what}: another context`)
      else if (header.algorithmSuiteId !== c.suite || header.frameLength !== c.frameLength) failures.push(`${what}: another suite or frame length`)
    } catch (error) {
      failures.push(`${what}: ${error instanceof Error ? `${error.name}: ${error.message}` : String(error)}`)
    }
  }
  process.stdout.write(`kms-envelope decrypted ${theirs.length - failures.length} of the Python SDK's ${theirs.length} messages\n`)
  // Each side decrypts every multi-Region message through the replica, in its Region.
  const replicaDecrypts = kms.callCount({ operation: 'Decrypt', region: 'eu-west-1' })
  const multiRegion = ours.filter((c) => c.keyring === 'kms-mrk').length
  if (replicaDecrypts !== 2 * multiRegion) failures.push(`KMS Decrypt was called ${replicaDecrypts} times in the replica's Region, not ${2 * multiRegion}`)
  for (const failure of failures) process.stdout.write(`  ${failure}\n`)
  return status === 0 && failures.length === 0 && theirs.length === ours.length ? 0 : 1
}

const folder = mkdtempSync(join(tmpdir(), 'kms-envelope-interop-python-'))
const kms = await startKmsEmulator({ regions: ['us-east-1', 'eu-west-1'] })
try {
  process.exitCode = await crossCheck(folder, kms)
} finally {
  await kms.close()
  rmSync(folder, { recursive: true, force: true })
}
