/**
 * Cross-check against the official AWS Encryption SDK for Python, both ways (not part of `npm test`: it needs the
 * Python SDK, which npm cannot install).
 *
 *   pip install aws-encryption-sdk        # or PYTHONPATH=<a checkout of aws-encryption-sdk-python>/src
 *   npm run interop:python [-- --python python3]
 *
 * For every suite, raw AES keys of 128, 192 and 256 bits, raw RSA keys with every padding and a multi-keyring
 * (AES generator, RSA child), and four messages (empty, one-byte frames, an exact multiple of the frame length,
 * 10,000 bytes) under a context with non-ASCII keys: we encrypt and Python decrypts, then Python encrypts the same
 * and we decrypt. Each side checks the plaintext, the context, the suite and the frame length. The Python SDK
 * writes frame lengths that are multiples of 128 only, so its messages use 128 where ours use 1 or 64.
 *
 * Exit status: 0 when every message decrypts on both sides, 1 otherwise, 2 when the Python SDK cannot be loaded.
 */
import { spawnSync } from 'node:child_process'
import { generateKeyPairSync, randomBytes } from 'node:crypto'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'

import { ALGORITHM_SUITE_IDS, decrypt, encrypt, MultiKeyring, RawAesKeyring, RawRsaKeyring, type Keyring, type RsaPadding } from '../src/index.js'

const { values } = parseArgs({ options: { python: { type: 'string', default: 'python3' } } })
const python = values.python as string

const PADDINGS: readonly RsaPadding[] = ['OAEP-SHA1', 'OAEP-SHA256', 'OAEP-SHA384', 'OAEP-SHA512', 'PKCS1']
const KEYRINGS = ['aes-128', 'aes-192', 'aes-256', ...PADDINGS.map((padding) => `rsa-${padding}`), 'multi']
const CONTEXT = { purpose: 'interop', grüße: '世界 \u{1F600}', '\u{FF61}': 'sorts after U+1F600 in UTF-16, before it in UTF-8', '\u{1F600}': 'y' }
const MESSAGES: readonly { label: string; plaintext: Uint8Array; frameLength: number }[] = [
  { label: 'empty', plaintext: new Uint8Array(0), frameLength: 4096 },
  { label: 'one-byte frames', plaintext: randomBytes(17), frameLength: 1 },
  { label: 'three whole frames', plaintext: randomBytes(192), frameLength: 64 },
  { label: '10,000 bytes', plaintext: randomBytes(10_000), frameLength: 4096 },
]
const COMMITTING = new Set([0x0478, 0x0578])

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

/** Both directions, in `folder`; returns the exit status. */
async function crossCheck(folder: string): Promise<number> {
  const rsa = generateKeyPairSync('rsa', { modulusLength: 2048, privateKeyEncoding: { type: 'pkcs8', format: 'pem' }, publicKeyEncoding: { type: 'spki', format: 'pem' } })
  const aes = { 128: randomBytes(16), 192: randomBytes(24), 256: randomBytes(32) }
  writeFileSync(join(folder, 'keys.json'), JSON.stringify({ namespace: 'interop', rsaPrivate: rsa.privateKey, aes: Object.fromEntries(Object.entries(aes).map(([bits, key]) => [bits, key.toString('base64')])) }))

  const keyringFor = (name: string): Keyring => {
    if (name === 'multi') return new MultiKeyring({ generator: keyringFor('aes-256'), children: [keyringFor('rsa-OAEP-SHA256')] })
    if (name.startsWith('aes-')) return new RawAesKeyring({ keyNamespace: 'interop', keyName: name, wrappingKey: new Uint8Array(aes[Number(name.slice(4)) as 128]) })
    return new RawRsaKeyring({ keyNamespace: 'interop', keyName: name, publicKey: rsa.publicKey, privateKey: rsa.privateKey, padding: name.slice(4) as RsaPadding })
  }

  const ours: Case[] = []
  for (const suite of ALGORITHM_SUITE_IDS) {
    for (const keyring of KEYRINGS) {
      for (const { label, plaintext, frameLength } of MESSAGES) {
        const commitmentPolicy = COMMITTING.has(suite) ? 'REQUIRE_ENCRYPT_REQUIRE_DECRYPT' : 'FORBID_ENCRYPT_ALLOW_DECRYPT'
        const { ciphertext } = await encrypt(keyringFor(keyring), plaintext, { algorithmSuite: suite, frameLength, encryptionContext: CONTEXT, commitmentPolicy })
        const base64 = (bytes: Uint8Array) => Buffer.from(bytes).toString('base64')
        ours.push({ suite, keyring, label, frameLength, context: CONTEXT, plaintext: base64(plaintext), ciphertext: base64(ciphertext) })
      }
    }
  }
  writeFileSync(join(folder, 'ours.json'), JSON.stringify(ours))

  const run = spawnSync(python, [new URL('interop_python.py', import.meta.url).pathname, folder], { stdio: ['ignore', 'inherit', 'inherit'] })
  if (run.error !== undefined || (run.status !== 0 && run.status !== 1)) {
    process.stderr.write(`interop-python: ${python} could not run the Python side (${run.error?.message ?? `exit ${run.status}`}).\n`)
    return 2
  }

  const theirs = JSON.parse(readFileSync(join(folder, 'theirs.json'), 'utf8')) as Case[]
  const failures: string[] = []
  for (const c of theirs) {
    const what = `0x${c.suite.toString(16).padStart(4, '0')} ${c.keyring} ${c.label}`
    try {
      const { plaintext, header } = await decrypt(keyringFor(c.keyring), Buffer.from(c.ciphertext, 'base64'), {
        commitmentPolicy: 'REQUIRE_ENCRYPT_ALLOW_DECRYPT',
        encryptionContext: c.context,
      })
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
  for (const failure of failures) process.stdout.write(`  ${failure}\n`)
  return run.status === 0 && failures.length === 0 && theirs.length === ours.length ? 0 : 1
}

const folder = mkdtempSync(join(tmpdir(), 'kms-envelope-interop-python-'))
try {
  process.exitCode = await crossCheck(folder)
} finally {
  rmSync(folder, { recursive: true, force: true })
}
