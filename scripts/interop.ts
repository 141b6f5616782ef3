/**
 * Cross-check against an official AWS Encryption SDK, both ways (not part of `npm test`: npm cannot install the
 * other SDKs, so they are built or installed by hand first; README's "Checking against the other official SDKs").
 *
 *   npm run interop:python [-- --python python3]     # pip install aws-encryption-sdk, or PYTHONPATH=<checkout>/src
 *   npm run interop:cli -- --python <venv>/bin/python   # the Python that has aws-encryption-sdk-cli installed
 *   npm run interop:java [-- --classpath <path>]    # or ESDK_JAVA_CLASSPATH: the Java SDK 2.x and its dependencies
 *   npm run interop:c [-- --prefix <dir>]           # or ESDK_C_PREFIX: where the C SDK and aws-c-common are installed
 *
 * For every suite and each keyring the other SDK has a match for (raw AES keys of 128, 192 and 256 bits, raw RSA
 * keys with every padding it has, a multi-keyring of an AES generator and an RSA child; for Python also an AWS KMS
 * key and a KMS multi-Region key on the KMS emulator, which the Python SDK's boto3 client calls too, multi-Region
 * messages decrypting through the key's replica in another Region; for the CLI, whose only keys are AWS KMS keys,
 * those two, one `aws-encryption-cli` process a message), and six messages (empty, one-byte frames, an
 * exact multiple of the frame length, 10,000 bytes, 10,000 bytes that kms-envelope encrypts and decrypts through its
 * streams, and 1,000 bytes that the other SDK writes non-framed) under a context with non-ASCII keys, the raw keys
 * in a non-ASCII key namespace: we encrypt and the other SDK decrypts, then it encrypts the same and we decrypt.
 * Each side checks the plaintext, the context and the suite, and all but the C side the frame length (the C SDK
 * does not report it); kms-envelope also checks that the other SDK's multi-keyring wrapped the data key twice. The
 * Python SDK writes frame lengths that are multiples of 128 only, so its messages use 128 where ours use 1 or 64.
 *
 * The other side is a small program in scripts/interop/, given a folder of tab-separated files: keys.tsv (name,
 * value), context.tsv (base64 key, base64 value) and ours.tsv, one message a line (suite, keyring, label, our frame
 * length, its frame length, base64 plaintext, base64 ciphertext). It writes theirs.tsv in the same columns.
 *
 * With `--save <file>`, a run that passes writes the other SDK's messages of the small shapes (all but the two of
 * 10,000 bytes) into that JSON file, with the raw keys and the KMS emulator's keys, for
 * test/official-sdk-vectors.test.ts (test/fixtures/official-sdks/).
 *
 * Exit status: 0 when every message decrypts on both sides, 1 otherwise, 2 when the other SDK cannot be loaded.
 */
import { execFile, spawn } from 'node:child_process'
import { once } from 'node:events'
import { generateKeyPairSync, randomBytes } from 'node:crypto'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { delimiter, join } from 'node:path'
import { parseArgs, promisify } from 'node:util'

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
import type { SdkVectors } from '../test/helpers/sdk-vectors.js'
import { chunked, readAll } from '../test/helpers/web-streams.js'

const { values } = parseArgs({
  options: {
    sdk: { type: 'string' },
    python: { type: 'string', default: 'python3' },
    classpath: { type: 'string', default: process.env.ESDK_JAVA_CLASSPATH },
    prefix: { type: 'string', default: process.env.ESDK_C_PREFIX },
    save: { type: 'string' },
  },
})

const AES = ['aes-128', 'aes-192', 'aes-256']
const rsa = (...paddings: RsaPadding[]) => paddings.map((padding) => `rsa-${padding}`)
const RAW = [...AES, ...rsa('OAEP-SHA1', 'OAEP-SHA256', 'OAEP-SHA384', 'OAEP-SHA512', 'PKCS1'), 'multi']
const KMS = ['kms', 'kms-mrk']
/** The KMS emulator's Regions: a multi-Region key's, and its replica's. */
const KMS_REGIONS = ['us-east-1', 'eu-west-1']
/** The raw keyrings' key namespace (the provider ID in messages), not ASCII either. */
const NAMESPACE = 'interop ü ✓'
const CONTEXT = { purpose: 'interop', grüße: '世界 \u{1F600}', '\u{FF61}': 'sorts after U+1F600 in UTF-16, before it in UTF-8', '\u{1F600}': 'y' }
/**
 * `stream`: kms-envelope encrypts and decrypts it through `encryptStream` and `decryptStream` (in 1,000-byte pieces)
 * instead of one-shot. `nonFramed`: the other SDK writes it as one non-framed body (kms-envelope writes framed only).
 * `saved`: `--save` keeps the other SDK's messages of that shape.
 */
const MESSAGES: readonly { label: string; plaintext: Uint8Array; frameLength: number; stream?: true; nonFramed?: true; saved?: true }[] = [
  { label: 'empty', plaintext: new Uint8Array(0), frameLength: 4096, saved: true },
  { label: 'one-byte frames', plaintext: randomBytes(17), frameLength: 1, saved: true },
  { label: 'three whole frames', plaintext: randomBytes(192), frameLength: 64, saved: true },
  { label: '10,000 bytes', plaintext: randomBytes(10_000), frameLength: 4096 },
  { label: '10,000 bytes through streams', plaintext: randomBytes(10_000), frameLength: 1024, stream: true },
  { label: '1,000 bytes, non-framed from the other SDK', plaintext: randomBytes(1000), frameLength: 4096, nonFramed: true, saved: true },
]
const STREAMED = new Set(MESSAGES.filter((message) => message.stream).map((message) => message.label))
const COMMITTING = new Set([0x0478, 0x0578])
const HERE = new URL('interop/', import.meta.url).pathname
const run = promisify(execFile)

/** How to run the other side: its command, or why it cannot run. */
type Launch = { command: string; args: string[] } | { failure: string }

/** One official SDK: the keyrings it has a match for, the frame length it writes for ours, and how to start its side. */
interface Peer {
  name: string
  keyrings: readonly string[]
  frameLengthFor(ours: number): number
  prepare(folder: string): Promise<Launch>
}

/** `command args`, run to its end; what it printed when it failed. */
const build = (command: string, args: string[]): Promise<string | undefined> =>
  run(command, args, { maxBuffer: 1 << 24 }).then(
    () => undefined,
    (error: { stderr?: string; message: string }) => `${command} failed: ${(error.stderr || error.message).trim().slice(0, 2000)}`,
  )

/** The Python SDK writes frame lengths that are multiples of 128 only. */
const pythonFrameLength = (ours: number) => (ours % 128 === 0 ? ours : 128)

const PEERS: Record<string, Peer> = {
  python: {
    name: 'the Python SDK',
    keyrings: [...RAW, ...KMS],
    frameLengthFor: pythonFrameLength,
    prepare: async () => ({ command: values.python as string, args: [join(HERE, 'python.py')] }),
  },
  cli: {
    name: 'the AWS Encryption CLI',
    keyrings: KMS, // its only keys are AWS KMS keys; it writes through the Python SDK
    frameLengthFor: pythonFrameLength,
    prepare: async () => ({ command: values.python as string, args: [join(HERE, 'cli.py')] }),
  },
  java: {
    name: 'the Java SDK',
    keyrings: RAW, // its KMS master keys need the AWS SDK for Java
    frameLengthFor: (ours) => ours,
    async prepare(folder) {
      if (!values.classpath) return { failure: 'give the Java SDK 2.x and its dependencies with --classpath or ESDK_JAVA_CLASSPATH.' }
      const failure = await build('javac', ['-nowarn', '-d', join(folder, 'classes'), '-cp', values.classpath, join(HERE, 'Interop.java')])
      return failure ? { failure } : { command: 'java', args: ['-cp', `${join(folder, 'classes')}${delimiter}${values.classpath}`, 'Interop'] }
    },
  },
  c: {
    name: 'the C SDK',
    keyrings: [...AES, ...rsa('OAEP-SHA1', 'OAEP-SHA256', 'PKCS1'), 'multi'], // it has no OAEP with SHA-384 or SHA-512
    frameLengthFor: (ours) => ours,
    async prepare(folder) {
      if (!values.prefix) return { failure: 'give the folder the C SDK and aws-c-common are installed in with --prefix or ESDK_C_PREFIX.' }
      const [include, lib, program] = [join(values.prefix, 'include'), join(values.prefix, 'lib'), join(folder, 'interop-c')]
      const libraries = ['-laws-encryption-sdk', '-laws-c-common', '-lcrypto']
      const failure = await build('cc', ['-O1', '-o', program, join(HERE, 'interop.c'), `-I${include}`, `-L${lib}`, `-Wl,-rpath,${lib}`, ...libraries])
      return failure ? { failure } : { command: program, args: [] }
    },
  },
}

/** One message and what it must decrypt to; `ciphertext` is written by one side, read by the other. */
interface Case {
  suite: number
  keyring: string
  label: string
  frameLength: number
  peerFrameLength: number
  plaintext: string
  ciphertext: string
}

const base64 = (bytes: Uint8Array | string) => Buffer.from(bytes).toString('base64')
const writeLines = (path: string, rows: readonly (readonly (string | number)[])[]) => writeFileSync(path, rows.map((row) => `${row.join('\t')}\n`).join(''))
const writeCases = (path: string, cases: readonly Case[]) =>
  writeLines(path, cases.map((c) => [c.suite, c.keyring, c.label, c.frameLength, c.peerFrameLength, c.plaintext, c.ciphertext]))
const readCases = (path: string): Case[] =>
  readFileSync(path, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((line) => {
      const fields = line.split('\t')
      if (fields.length !== 7) throw new Error(`${path} has a line of ${fields.length} columns, not 7`)
      const [suite, keyring, label, frameLength, peerFrameLength, plaintext, ciphertext] = fields as [string, string, string, string, string, string, string]
      return { suite: Number(suite), keyring, label, frameLength: Number(frameLength), peerFrameLength: Number(peerFrameLength), plaintext, ciphertext }
    })

/** `decrypt`, through `decryptStream`. */
async function decryptThroughStream(keyring: Keyring, ciphertext: Uint8Array, options: DecryptStreamOptions): Promise<{ plaintext: Uint8Array; header: MessageHeader }> {
  const stream = decryptStream(keyring, options)
  const plaintext = await readAll(chunked(ciphertext, 1000).pipeThrough(stream))
  return { plaintext, header: await stream.header }
}

/** Both directions with `peer`, in `folder`, with KMS on `kms`; returns the exit status. */
async function crossCheck(peer: Peer, folder: string, kms: KmsEmulator): Promise<number> {
  const launch = await peer.prepare(folder)
  if ('failure' in launch) {
    process.stderr.write(`interop: cannot run ${peer.name}'s side: ${launch.failure}\n`)
    return 2
  }
  const rsaPair = generateKeyPairSync('rsa', {
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
  writeLines(join(folder, 'keys.tsv'), [
    ['namespace', NAMESPACE],
    ...Object.entries(aes).map(([bits, key]) => [`aes-${bits}`, base64(key)]),
    ['rsa-private', base64(rsaPair.privateKey)],
    ['rsa-public', base64(rsaPair.publicKey)],
    ['kms-key', kmsKey],
    ['kms-mrk', mrk],
    ['kms-replica', replica],
  ])
  writeLines(join(folder, 'context.tsv'), Object.entries(CONTEXT).map(([key, value]) => [base64(key), base64(value)]))

  /** The keyring of that name; `decrypting` takes a multi-Region key's replica, in another Region. */
  const keyringFor = (name: string, decrypting = false): Keyring => {
    if (name === 'multi') return new MultiKeyring({ generator: keyringFor('aes-256'), children: [keyringFor('rsa-OAEP-SHA256')] })
    if (name === 'kms') return new KmsKeyring({ generatorKeyId: kmsKey, clientSupplier })
    if (name === 'kms-mrk') return new KmsMrkKeyring({ keyId: decrypting ? replica : mrk, clientSupplier })
    if (name.startsWith('aes-')) return new RawAesKeyring({ keyNamespace: NAMESPACE, keyName: name, wrappingKey: new Uint8Array(aes[Number(name.slice(4)) as 128]) })
    const { publicKey, privateKey } = rsaPair
    return new RawRsaKeyring({ keyNamespace: NAMESPACE, keyName: name, publicKey, privateKey, padding: name.slice(4) as RsaPadding })
  }

  const ours: Case[] = []
  for (const suite of ALGORITHM_SUITE_IDS) {
    for (const keyring of peer.keyrings) {
      for (const { label, plaintext, frameLength, stream, nonFramed } of MESSAGES) {
        const commitmentPolicy = COMMITTING.has(suite) ? 'REQUIRE_ENCRYPT_REQUIRE_DECRYPT' : 'FORBID_ENCRYPT_ALLOW_DECRYPT'
        const options = { algorithmSuite: suite, frameLength, encryptionContext: CONTEXT, commitmentPolicy } as const
        const ciphertext = stream
          ? await readAll(chunked(plaintext, 1000).pipeThrough(encryptStream(keyringFor(keyring), options)))
          : (await encrypt(keyringFor(keyring), plaintext, options)).ciphertext
        const peerFrameLength = nonFramed ? 0 : peer.frameLengthFor(frameLength)
        ours.push({ suite, keyring, label, frameLength, peerFrameLength, plaintext: base64(plaintext), ciphertext: base64(ciphertext) })
      }
    }
  }
  writeCases(join(folder, 'ours.tsv'), ours)

  // Not spawnSync: the emulator answers the Python SDK's KMS calls from this process's event loop.
  const child = spawn(launch.command, [...launch.args, folder], {
    stdio: ['ignore', 'inherit', 'inherit'],
    env: { ...process.env, AWS_ENDPOINT_URL_KMS: kms.endpoint, AWS_ACCESS_KEY_ID: credentials.accessKeyId, AWS_SECRET_ACCESS_KEY: credentials.secretAccessKey },
  })
  const [status, failure] = await Promise.race([once(child, 'close'), once(child, 'error').then(([error]) => [undefined, error as Error])])
  if (status !== 0 && status !== 1) {
    process.stderr.write(`interop: ${launch.command} could not run ${peer.name}'s side (${failure?.message ?? `exit ${status}`}).\n`)
    return 2
  }

  const theirs = readCases(join(folder, 'theirs.tsv'))
  const failures: string[] = []
  for (const c of theirs) {
    const what = `0x${c.suite.toString(16).padStart(4, '0')} ${c.keyring} ${c.label}`
    try {
      const ciphertext = Buffer.from(c.ciphertext, 'base64')
      const options = { commitmentPolicy: 'REQUIRE_ENCRYPT_ALLOW_DECRYPT', encryptionContext: CONTEXT } as const
      const decrypting = STREAMED.has(c.label) ? decryptThroughStream : decrypt
      const { plaintext, header } = await decrypting(keyringFor(c.keyring, true), ciphertext, options)
      const { 'aws-crypto-public-key': _signingKey, ...context } = header.encryptionContext
      const sorted = (pairs: Record<string, string>) => JSON.stringify(Object.entries(pairs).sort())
      const contentType = c.peerFrameLength === 0 ? 'non-framed' : 'framed'
      if (base64(plaintext) !== c.plaintext) failures.push(`${what}: another plaintext`)
      else if (sorted(context) !== sorted(CONTEXT)) failures.push(`${what}: another context`)
      else if (header.algorithmSuiteId !== c.suite || header.frameLength !== c.peerFrameLength || header.contentType !== contentType) {
        failures.push(`${what}: another suite, frame length or content type`)
      } else if (header.encryptedDataKeys.length !== (c.keyring === 'multi' ? 2 : 1)) {
        failures.push(`${what}: ${header.encryptedDataKeys.length} encrypted data keys`) // a multi-keyring's message has one per keyring
      }
    } catch (error) {
      failures.push(`${what}: ${error instanceof Error ? `${error.name}: ${error.message}` : String(error)}`)
    }
  }
  const writer = readFileSync(join(folder, 'writer.txt'), 'utf8')
  process.stdout.write(`kms-envelope decrypted ${theirs.length - failures.length} of ${writer}'s ${theirs.length} messages\n`)
  // Each side decrypts every multi-Region message through the replica, in its Region.
  const replicaDecrypts = kms.callCount({ operation: 'Decrypt', region: 'eu-west-1' })
  const multiRegion = ours.filter((c) => c.keyring === 'kms-mrk').length
  if (replicaDecrypts !== 2 * multiRegion) failures.push(`KMS Decrypt was called ${replicaDecrypts} times in the replica's Region, not ${2 * multiRegion}`)
  for (const failure of failures) process.stdout.write(`  ${failure}\n`)
  const passed = status === 0 && failures.length === 0 && theirs.length === ours.length
  if (passed && values.save) {
    const saved = MESSAGES.filter((message) => message.saved)
    const rawKeys = { ...Object.fromEntries(Object.entries(aes).map(([bits, key]) => [`aes-${bits}`, base64(key)])), 'rsa-private': rsaPair.privateKey }
    const vectors: SdkVectors = {
      writer,
      namespace: NAMESPACE,
      keys: peer.keyrings.some((keyring) => RAW.includes(keyring)) ? rawKeys : {},
      // The emulator's keys, as its statePath file holds them: the tests start one from them.
      ...(peer.keyrings.some((keyring) => KMS.includes(keyring))
        ? { kms: { regions: KMS_REGIONS, state: JSON.parse(readFileSync(join(folder, 'kms-state.json'), 'utf8')), key: kmsKey, mrk, replica } }
        : {}),
      context: CONTEXT,
      plaintexts: Object.fromEntries(saved.map(({ label, plaintext }) => [label, base64(plaintext)])),
      messages: theirs
        .filter((c) => saved.some(({ label }) => label === c.label))
        .map((c) => ({ suite: c.suite, keyring: c.keyring, shape: c.label, frameLength: c.peerFrameLength, ciphertext: c.ciphertext })),
    }
    writeFileSync(values.save, `${JSON.stringify(vectors, null, 1)}\n`)
    process.stdout.write(`saved ${vectors.messages.length} of ${writer}'s messages in ${values.save}\n`)
  }
  return passed ? 0 : 1
}

const peer = PEERS[values.sdk ?? '']
if (!peer) {
  process.stderr.write(`interop: --sdk must be one of ${Object.keys(PEERS).join(', ')}.\n`)
  process.exit(2)
}
const folder = mkdtempSync(join(tmpdir(), `kms-envelope-interop-${values.sdk}-`))
// The emulator keeps its keys in the folder, for --save.
const kms = await startKmsEmulator({ regions: KMS_REGIONS, statePath: join(folder, 'kms-state.json') })
try {
  process.exitCode = await crossCheck(peer, folder, kms)
} finally {
  await kms.close()
  rmSync(folder, { recursive: true, force: true })
}
