/**
 * The official AWS Encryption SDK for JavaScript (`@aws-crypto/client-node`) as the reference side of the
 * interoperability tests in `test/interop.test.ts`.
 *
 * Everything here is the official SDK's half: shared key material, official keyrings built from a small keyring
 * description (the test builds our keyrings from the same description), encrypt/decrypt wrappers that return a
 * header summary in our library's shape, and decryption of RSA PKCS1 v1.5 messages in a child Node process
 * (see `official-pkcs1-child.mjs`).
 */
import { spawn } from 'node:child_process'
import { constants, generateKeyPairSync, privateDecrypt, randomBytes } from 'node:crypto'
import { fileURLToPath } from 'node:url'
import {
  buildClient,
  CommitmentPolicy as OfficialCommitmentPolicy,
  MultiKeyringNode,
  RawAesKeyringNode,
  RawAesWrappingSuiteIdentifier,
  RawRsaKeyringNode,
  type AlgorithmSuiteIdentifier,
  type KeyringNode,
} from '@aws-crypto/client-node'
import { CHILD_TIMEOUT } from './fixtures.js'

export type Policy = 'REQUIRE_ENCRYPT_REQUIRE_DECRYPT' | 'REQUIRE_ENCRYPT_ALLOW_DECRYPT' | 'FORBID_ENCRYPT_ALLOW_DECRYPT'
export type RsaPadding = 'OAEP-SHA1' | 'OAEP-SHA256' | 'OAEP-SHA384' | 'OAEP-SHA512' | 'PKCS1'
export type AesBits = 128 | 192 | 256

/** A keyring both implementations can build with the same key material, namespace and name. */
export type KeyringSpec =
  | { readonly kind: 'aes'; readonly bits: AesBits }
  | { readonly kind: 'rsa'; readonly padding: RsaPadding }
  | { readonly kind: 'multi'; readonly generator: KeyringSpec; readonly children: readonly KeyringSpec[] }

/** Non-ASCII on purpose: provider IDs and raw AES key names are UTF-8 in the header and the AES key info. */
export const KEY_NAMESPACE = 'kms-envelope interop ü'

export const ALL_SUITES = [
  0x0014, 0x0046, 0x0078, 0x0114, 0x0146, 0x0178, 0x0214, 0x0346, 0x0378, 0x0478, 0x0578,
] as const
const COMMITTING = new Set<number>([0x0478, 0x0578])
const SIGNING = new Set<number>([0x0214, 0x0346, 0x0378, 0x0578])
export const PUBLIC_KEY_CONTEXT_KEY = 'aws-crypto-public-key'

export const isCommitting = (suite: number): boolean => COMMITTING.has(suite)
export const isSigning = (suite: number): boolean => SIGNING.has(suite)
export const hex16 = (suite: number): string => `0x${suite.toString(16).padStart(4, '0')}`

/** The policy under which `suite` may be encrypted. */
export const encryptPolicyFor = (suite: number): Policy =>
  isCommitting(suite) ? 'REQUIRE_ENCRYPT_REQUIRE_DECRYPT' : 'FORBID_ENCRYPT_ALLOW_DECRYPT'
/** The strictest policy under which `suite` may be decrypted. */
export const decryptPolicyFor = (suite: number): Policy =>
  isCommitting(suite) ? 'REQUIRE_ENCRYPT_REQUIRE_DECRYPT' : 'REQUIRE_ENCRYPT_ALLOW_DECRYPT'

// ---------------------------------------------------------------------------------------------------------------
// Key material: generated once per test run and shared by both implementations.

const AES_KEYS: Readonly<Record<AesBits, Uint8Array>> = {
  128: new Uint8Array(randomBytes(16)),
  192: new Uint8Array(randomBytes(24)),
  256: new Uint8Array(randomBytes(32)),
}
/**
 * A fresh copy of the AES wrapping key of this size. Always hand keyrings a copy: the official `RawAesKeyringNode`
 * zeroes the `unencryptedMasterKey` buffer it is given, which would silently turn a shared key into all zeros.
 */
export const aesKey = (bits: AesBits): Uint8Array => new Uint8Array(AES_KEYS[bits])

export interface RsaPem {
  readonly publicKey: string
  readonly privateKey: string
}
let rsaPem: RsaPem | undefined
/** One 2048-bit RSA key pair (PEM: SPKI public, PKCS#8 private), generated on first use. */
export function rsaKeyPair(): RsaPem {
  rsaPem ??= generateKeyPairSync('rsa', {
    modulusLength: 2048,
    publicKeyEncoding: { type: 'spki', format: 'pem' },
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
  })
  return rsaPem
}

/** Key name used on both sides; equal names are what lets each side find its encrypted data key. */
export function keyNameOf(spec: Exclude<KeyringSpec, { kind: 'multi' }>): string {
  return spec.kind === 'aes' ? `aes-${spec.bits}-ключ` : `rsa-${spec.padding.toLowerCase()}`
}

export function describeSpec(spec: KeyringSpec): string {
  if (spec.kind !== 'multi') return keyNameOf(spec)
  return `multi(generator ${describeSpec(spec.generator)}, children ${spec.children.map(describeSpec).join(' + ')})`
}

export function usesPkcs1(spec: KeyringSpec): boolean {
  if (spec.kind === 'rsa') return spec.padding === 'PKCS1'
  if (spec.kind === 'aes') return false
  return usesPkcs1(spec.generator) || spec.children.some(usesPkcs1)
}

// ---------------------------------------------------------------------------------------------------------------
// Official keyrings.

const AES_WRAPPING = {
  128: RawAesWrappingSuiteIdentifier.AES128_GCM_IV12_TAG16_NO_PADDING,
  192: RawAesWrappingSuiteIdentifier.AES192_GCM_IV12_TAG16_NO_PADDING,
  256: RawAesWrappingSuiteIdentifier.AES256_GCM_IV12_TAG16_NO_PADDING,
} as const

const RSA_PADDING: Readonly<Record<RsaPadding, { padding: number; oaepHash?: 'sha1' | 'sha256' | 'sha384' | 'sha512' }>> = {
  'OAEP-SHA1': { padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha1' },
  'OAEP-SHA256': { padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256' },
  'OAEP-SHA384': { padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha384' },
  'OAEP-SHA512': { padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha512' },
  PKCS1: { padding: constants.RSA_PKCS1_PADDING },
}

export interface OfficialKeyringOptions {
  /**
   * Order of the encryption context in the raw AES keyring's AAD. `true` (default here) is the spec's UTF-8 byte
   * order; `false` is the official SDK's own default, which sorts keys with `localeCompare`.
   */
  readonly utf8Sorting?: boolean
}

export function officialKeyring(spec: KeyringSpec, options: OfficialKeyringOptions = {}): KeyringNode {
  switch (spec.kind) {
    case 'aes':
      return new RawAesKeyringNode({
        keyNamespace: KEY_NAMESPACE,
        keyName: keyNameOf(spec),
        unencryptedMasterKey: aesKey(spec.bits),
        wrappingSuite: AES_WRAPPING[spec.bits],
        utf8Sorting: options.utf8Sorting ?? true,
      })
    case 'rsa': {
      const { padding, oaepHash } = RSA_PADDING[spec.padding]
      return new RawRsaKeyringNode({
        keyNamespace: KEY_NAMESPACE,
        keyName: keyNameOf(spec),
        rsaKey: rsaKeyPair(),
        padding,
        ...(oaepHash === undefined ? {} : { oaepHash }),
      })
    }
    case 'multi':
      return new MultiKeyringNode({
        generator: officialKeyring(spec.generator, options),
        children: spec.children.map((child) => officialKeyring(child, options)),
      })
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Results in our library's header shape, so both directions are checked with the same assertions.

export interface HeaderSummary {
  readonly version: number
  readonly algorithmSuiteId: number
  readonly messageId: Uint8Array
  readonly encryptionContext: Record<string, string>
  readonly encryptedDataKeys: readonly { providerId: string; providerInfo: Uint8Array; ciphertext: Uint8Array }[]
  readonly contentType: 'framed' | 'non-framed'
  readonly frameLength: number
}

interface OfficialHeaderLike {
  readonly version: number
  readonly suiteId: number
  readonly messageId: Uint8Array
  readonly encryptionContext: Readonly<Record<string, string>>
  readonly encryptedDataKeys: ReadonlyArray<{
    readonly providerId: string
    readonly providerInfo: string
    readonly rawInfo?: Uint8Array
    readonly encryptedDataKey: Uint8Array
  }>
  readonly contentType: number
  readonly frameLength: number
}

const copyBytes = (bytes: Uint8Array): Uint8Array => new Uint8Array(bytes)

function summarize(header: OfficialHeaderLike): HeaderSummary {
  return {
    version: header.version,
    algorithmSuiteId: header.suiteId,
    messageId: copyBytes(header.messageId),
    encryptionContext: { ...header.encryptionContext },
    encryptedDataKeys: header.encryptedDataKeys.map((edk) => ({
      providerId: edk.providerId,
      providerInfo: copyBytes(edk.rawInfo ?? new TextEncoder().encode(edk.providerInfo)),
      ciphertext: copyBytes(edk.encryptedDataKey),
    })),
    // Official ContentType: NO_FRAMING = 1, FRAMED_DATA = 2.
    contentType: header.contentType === 2 ? 'framed' : 'non-framed',
    frameLength: header.frameLength,
  }
}

export interface OfficialEncryptOptions {
  readonly suiteId: number
  readonly encryptionContext?: Record<string, string>
  readonly frameLength?: number
  readonly commitmentPolicy?: Policy
  readonly maxEncryptedDataKeys?: number
}

export async function officialEncrypt(
  keyring: KeyringNode,
  plaintext: Uint8Array | string,
  options: OfficialEncryptOptions,
): Promise<{ ciphertext: Uint8Array; header: HeaderSummary }> {
  const client = buildClient({
    commitmentPolicy: OfficialCommitmentPolicy[options.commitmentPolicy ?? encryptPolicyFor(options.suiteId)],
    maxEncryptedDataKeys: options.maxEncryptedDataKeys ?? false,
  })
  const { result, messageHeader } = await client.encrypt(keyring, plaintext, {
    suiteId: options.suiteId as AlgorithmSuiteIdentifier,
    ...(options.encryptionContext === undefined ? {} : { encryptionContext: options.encryptionContext }),
    ...(options.frameLength === undefined ? {} : { frameLength: options.frameLength }),
  })
  return { ciphertext: copyBytes(result), header: summarize(messageHeader) }
}

export interface OfficialDecryptOptions {
  readonly commitmentPolicy: Policy
  readonly maxEncryptedDataKeys?: number
}

export async function officialDecrypt(
  keyring: KeyringNode,
  ciphertext: Uint8Array,
  options: OfficialDecryptOptions,
): Promise<{ plaintext: Uint8Array; header: HeaderSummary }> {
  const client = buildClient({
    commitmentPolicy: OfficialCommitmentPolicy[options.commitmentPolicy],
    maxEncryptedDataKeys: options.maxEncryptedDataKeys ?? false,
  })
  const { plaintext, messageHeader } = await client.decrypt(keyring, ciphertext)
  return { plaintext: copyBytes(plaintext), header: summarize(messageHeader) }
}

// ---------------------------------------------------------------------------------------------------------------
// PKCS1 v1.5 decryption in a child process.
//
// Node 20 (>= 20.11) refuses RSA_PKCS1_PADDING in crypto.privateDecrypt (CVE-2023-46809, Marvin attack) unless
// the process was started with --security-revert=CVE-2023-46809, which NODE_OPTIONS does not accept. The official
// RSA keyring calls privateDecrypt directly, so it can only decrypt PKCS1 data keys in such a process. Node 22 and
// later allow it again on an OpenSSL that rejects bad padding implicitly (3.2 and later), and know no such revert.

let pkcs1Options: readonly string[] | undefined
/** The options a child Node needs for PKCS1 privateDecrypt: the revert where this Node refuses it, else none. */
export function pkcs1NodeOptions(): readonly string[] {
  if (pkcs1Options === undefined) {
    let refused = false
    try {
      privateDecrypt({ key: rsaKeyPair().privateKey, padding: constants.RSA_PKCS1_PADDING }, Buffer.alloc(256, 1))
    } catch (error) {
      refused = (error as { code?: string }).code === 'ERR_INVALID_ARG_VALUE'
    }
    pkcs1Options = refused ? ['--security-revert=CVE-2023-46809'] : []
  }
  return pkcs1Options
}

/** JSON form of a keyring with its key material, as read by `official-pkcs1-child.mjs`. */
export type WireKeyring =
  | { kind: 'aes'; keyNamespace: string; keyName: string; bits: AesBits; key: string /* base64 */ }
  | {
      kind: 'rsa'
      keyNamespace: string
      keyName: string
      padding: RsaPadding
      publicKey: string
      privateKey: string
    }
  | { kind: 'multi'; generator: WireKeyring; children: WireKeyring[] }

export function toWire(spec: KeyringSpec): WireKeyring {
  switch (spec.kind) {
    case 'aes':
      return {
        kind: 'aes',
        keyNamespace: KEY_NAMESPACE,
        keyName: keyNameOf(spec),
        bits: spec.bits,
        key: Buffer.from(AES_KEYS[spec.bits]).toString('base64'),
      }
    case 'rsa':
      return { kind: 'rsa', keyNamespace: KEY_NAMESPACE, keyName: keyNameOf(spec), padding: spec.padding, ...rsaKeyPair() }
    case 'multi':
      return { kind: 'multi', generator: toWire(spec.generator), children: spec.children.map(toWire) }
  }
}

interface ChildOutput {
  readonly plaintext: string
  readonly header: {
    readonly version: number
    readonly algorithmSuiteId: number
    readonly messageId: string
    readonly encryptionContext: Record<string, string>
    readonly encryptedDataKeys: readonly { providerId: string; providerInfo: string; ciphertext: string }[]
    readonly contentType: 'framed' | 'non-framed'
    readonly frameLength: number
  }
}

/** Prefix of the child's result line (see official-pkcs1-child.mjs). */
const CHILD_RESULT_MARKER = 'OFFICIAL-RESULT '
export const PKCS1_CHILD_PATH = fileURLToPath(new URL('./official-pkcs1-child.mjs', import.meta.url))
const fromBase64 = (text: string): Uint8Array => new Uint8Array(Buffer.from(text, 'base64'))

/**
 * Decrypt with the official SDK in `node official-pkcs1-child.mjs`, started with `pkcs1NodeOptions()`.
 * Any keyring spec works; the child is only needed when it contains a PKCS1 RSA keyring.
 */
export async function officialDecryptInChild(
  spec: KeyringSpec,
  ciphertext: Uint8Array,
  options: OfficialDecryptOptions,
): Promise<{ plaintext: Uint8Array; header: HeaderSummary }> {
  const input = JSON.stringify({
    ciphertext: Buffer.from(ciphertext).toString('base64'),
    commitmentPolicy: options.commitmentPolicy,
    maxEncryptedDataKeys: options.maxEncryptedDataKeys ?? false,
    keyring: toWire(spec),
  })
  const { code, stdout, stderr } = await new Promise<{ code: number | null; stdout: string; stderr: string }>(
    (resolve, reject) => {
      const child = spawn(process.execPath, [...pkcs1NodeOptions(), PKCS1_CHILD_PATH], {
        stdio: ['pipe', 'pipe', 'pipe'],
        // The child must not inherit a NODE_OPTIONS that, e.g., a test runner set for itself.
        env: { ...process.env, NODE_OPTIONS: '' },
        ...CHILD_TIMEOUT,
      })
      let out = ''
      let err = ''
      child.stdout.setEncoding('utf8').on('data', (chunk: string) => (out += chunk))
      child.stderr.setEncoding('utf8').on('data', (chunk: string) => (err += chunk))
      child.on('error', reject)
      child.on('close', (exitCode) => resolve({ code: exitCode, stdout: out, stderr: err }))
      child.stdin.end(input)
    },
  )
  if (code !== 0) {
    throw new Error(`official PKCS1 child exited with ${String(code)}: ${stdout.trim()} ${stderr.trim()}`.trim())
  }
  // Node prints its "SECURITY WARNING: Reverting CVE-2023-46809" on stdout too; the result is the marked line.
  const line = stdout.split('\n').find((candidate) => candidate.startsWith(CHILD_RESULT_MARKER))
  if (line === undefined) throw new Error(`official PKCS1 child printed no result: ${stdout.trim()} ${stderr.trim()}`)
  const output = JSON.parse(line.slice(CHILD_RESULT_MARKER.length)) as ChildOutput
  return {
    plaintext: fromBase64(output.plaintext),
    header: {
      ...output.header,
      messageId: fromBase64(output.header.messageId),
      encryptedDataKeys: output.header.encryptedDataKeys.map((edk) => ({
        providerId: edk.providerId,
        providerInfo: fromBase64(edk.providerInfo),
        ciphertext: fromBase64(edk.ciphertext),
      })),
    },
  }
}

/** Official decryption, in-process unless the keyring needs PKCS1 v1.5 (then in the child). */
export async function officialDecryptSpec(
  spec: KeyringSpec,
  ciphertext: Uint8Array,
  options: OfficialDecryptOptions,
  keyringOptions: OfficialKeyringOptions = {},
): Promise<{ plaintext: Uint8Array; header: HeaderSummary }> {
  if (usesPkcs1(spec)) return officialDecryptInChild(spec, ciphertext, options)
  return officialDecrypt(officialKeyring(spec, keyringOptions), ciphertext, options)
}

// ---------------------------------------------------------------------------------------------------------------
// Small comparison helpers.

/** `undefined` when equal, else a description naming the first differing byte. */
export function byteDifference(actual: Uint8Array, expected: Uint8Array): string | undefined {
  const shared = Math.min(actual.length, expected.length)
  for (let i = 0; i < shared; i++) {
    if (actual[i] !== expected[i]) {
      const show = (b: number | undefined) => `0x${(b ?? 0).toString(16).padStart(2, '0')}`
      return `first difference at byte ${i}: got ${show(actual[i])}, expected ${show(expected[i])} (lengths ${actual.length} / ${expected.length})`
    }
  }
  if (actual.length !== expected.length) {
    return `equal for ${shared} bytes, then lengths differ: got ${actual.length}, expected ${expected.length}`
  }
  return undefined
}

export const toHex = (bytes: Uint8Array): string => Buffer.from(bytes).toString('hex')

export function withoutPublicKey(context: Readonly<Record<string, string>>): Record<string, string> {
  const { [PUBLIC_KEY_CONTEXT_KEY]: _publicKey, ...rest } = context
  return rest
}

/** The two orders the raw AES keyring AAD has been written in: spec (UTF-8 bytes) and official-legacy (localeCompare). */
export function contextKeyOrders(context: Readonly<Record<string, string>>): { utf8: string[]; locale: string[] } {
  const keys = Object.keys(context)
  const utf8 = [...keys].sort((a, b) => Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8')))
  const locale = [...keys].sort((a, b) => a.localeCompare(b))
  return { utf8, locale }
}
