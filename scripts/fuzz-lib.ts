/**
 * Mutation fuzzer for `decrypt`.
 *
 * A seed corpus of valid messages (every algorithm suite; empty, small and multi-frame plaintexts; with and without
 * encryption context; raw AES and raw RSA keyrings) is built once per run. Each iteration takes one corpus message,
 * applies one mutation chosen uniformly from `MUTATION_KINDS`, decrypts it with the message's own keyring and checks:
 *
 * - the call rejects (a mutated message must never decrypt);
 * - the rejection is an `EnvelopeError`;
 * - the call settles within `slowMs` (default 1 s) — and at all within `hangMs`;
 * - memory stays bounded: resident set size within `rssLimitMB` of the start, heap (after a forced GC) not growing
 *   steadily by more than `heapGrowthLimitMB`.
 *
 * Every `browserEvery`-th iteration decrypts with the browser build's `decrypt` (WebCrypto) instead of Node's, and
 * every `streamEvery`-th also goes through `decryptStream` in pieces (scripts/fuzz-stream.ts), every second time
 * the browser build's.
 *
 * The mutation of iteration `i` depends only on `(seed, i)` and the shape of the corpus, so a failure is reported
 * with both and can be replayed (`--seed S --from I --iterations 1 --verbose`). Corpus messages contain random
 * data keys, IVs and (for signing suites) variable-length signatures, so for byte-exact replay every failure also
 * carries a `FuzzCase` (keys + mutated message) that `replayCase` decrypts again.
 *
 * Used by `scripts/fuzz.ts` (CLI) and `test/fuzz.test.ts` (short CI run).
 */
import { generateKeyPairSync } from 'node:crypto'
import { performance } from 'node:perf_hooks'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'

import { decrypt as browserDecrypt } from '../src/browser.js'
import { ALGORITHM_SUITE_IDS, EnvelopeError, RawAesKeyring, RawRsaKeyring, decrypt, encrypt } from '../src/index.js'
import { NOT_THE_MESSAGES_FAULT, pieceSizes, streamDecrypt, streamFinding } from './fuzz-stream.js'

// ---------------------------------------------------------------------------------------------------------------
// Public types

export const MUTATION_KINDS = [
  'bit-flip',
  'multi-bit-flip',
  'byte-random',
  'byte-zero',
  'byte-ff',
  'truncate',
  'insert-random',
  'delete-range',
  'splice-other',
  'frame-duplicate',
  'frame-swap',
  'frame-drop',
  'length-field',
  'header-field',
  'overwrite-big',
  'append-after-header',
  'append-after-message',
  'many-keys',
] as const

export type MutationKind = (typeof MUTATION_KINDS)[number]

export type KeyringSpec =
  | { readonly type: 'aes'; readonly keyNamespace: string; readonly keyName: string; readonly wrappingKeyHex: string }
  | {
      readonly type: 'rsa'
      readonly keyNamespace: string
      readonly keyName: string
      readonly publicKeyPem: string
      readonly privateKeyPem: string
    }

/** Everything needed to decrypt one fuzz input again, byte for byte. */
export interface FuzzCase {
  readonly seed: number
  readonly iteration: number
  readonly mutation: string
  readonly baseLabel: string
  readonly keyring: KeyringSpec
  /** The mutated message. */
  readonly messageBase64: string
  /** The corpus message it was derived from. */
  readonly originalBase64: string
  /** `browser`: the browser build's decrypt (WebCrypto) found it, one-shot or (with `pieces`) a stream; absent: Node's. */
  readonly build?: Build
  /** For a failure of the stream path: the sizes the message was written to `decryptStream` in. */
  readonly pieces?: readonly number[]
  /** For a failure of the stream path: the plaintext whose start the stream may emit (see `streamReference`). */
  readonly streamPlaintextBase64?: string
}

/** Whose `decrypt` or `decryptStream` a fuzz input goes through: Node's build (node:crypto) or the browser's (WebCrypto). */
export type Build = 'node' | 'browser'

/** How a failure's detail begins: which build failed, when it was not Node's. */
const byBuild = (build: Build): string => (build === 'browser' ? 'the browser build: ' : '')

export type FailureKind =
  | 'non-envelope-error' // decrypt threw/rejected with something that is not an EnvelopeError
  | 'misplaced-error' // decrypt failed with a code that blames the library or the caller (INTERNAL_ERROR, ...), not the message
  | 'accepted-mutation' // decrypt returned a plaintext for a mutated message
  | 'slow' // one decrypt call took longer than slowMs
  | 'hang' // one decrypt call did not settle within hangMs
  | 'memory-rss' // resident set grew beyond rssLimitMB over the start
  | 'memory-heap-growth' // heap after GC grew steadily by more than heapGrowthLimitMB
  | 'corpus' // a pristine corpus message failed to round-trip (not a fuzz finding, but the run is unsound)
  | 'unauthenticated-output' // decryptStream emitted bytes that are not the start of the original plaintext

export interface FuzzFailure {
  readonly kind: FailureKind
  readonly seed: number
  /** -1 for failures that are not tied to one iteration (corpus, heap trend). */
  readonly iteration: number
  readonly mutation: string
  readonly baseLabel: string
  readonly durationMs: number
  /** Human-readable description: the error thrown, or what was wrong. */
  readonly detail: string
  readonly errorName?: string
  readonly errorCode?: string
  readonly stack?: string
  /** For accepted mutations: whether the returned plaintext equals the original plaintext. */
  readonly plaintextUnchanged?: boolean
  readonly case?: FuzzCase
}

export interface FuzzProgress {
  readonly iteration: number
  readonly total: number
  readonly elapsedMs: number
  readonly iterationsPerSecond: number
  readonly failures: number
  readonly maxDecryptMs: number
  readonly rssMB: number
  readonly heapMB: number
}

export interface FuzzCaseEvent {
  readonly iteration: number
  readonly mutation: string
  readonly baseLabel: string
  readonly durationMs: number
  /** `rejected:<code>`, `accepted`, `foreign:<name>` or `hang`. */
  readonly outcome: string
  readonly build: Build
}

export interface FuzzOptions {
  readonly iterations: number
  readonly seed: number
  /** Stop early (report `stoppedEarly: true`) once this much wall time has been spent in the fuzz loop. */
  readonly timeBudgetMs?: number
  readonly onProgress?: (progress: FuzzProgress) => void
  /** First iteration number (default 0). With `iterations: 1` this replays one iteration. */
  readonly startIteration?: number
  /** A single decrypt slower than this is a failure. Default 1000. */
  readonly slowMs?: number
  /** A decrypt that has not settled after this long is abandoned and reported as a hang. Default 20000. */
  readonly hangMs?: number
  /** Allowed RSS growth over the start of the fuzz loop. Default 256. */
  readonly rssLimitMB?: number
  /** Allowed steady heap growth (after GC) over the run. Default 64. */
  readonly heapGrowthLimitMB?: number
  /** Memory sample period in iterations. Default: about 50 samples per run, at least every 100 iterations. */
  readonly memorySampleEvery?: number
  /** Progress period in iterations. Default: about 20 reports per run. */
  readonly progressEvery?: number
  /** At most this many failures are kept in `failureList` (all are counted). Default 100. */
  readonly maxStoredFailures?: number
  /** Called as soon as a failure is found. */
  readonly onFailure?: (failure: FuzzFailure) => void
  /** Called for every iteration after decrypt settles (verbose mode). */
  readonly onCase?: (event: FuzzCaseEvent) => void
  /** Called just before each decrypt (watchdog heartbeat). */
  readonly onBeforeDecrypt?: (iteration: number) => void
  /**
   * Every this many iterations, the mutated message also goes through `decryptStream`, written in pieces of
   * random sizes (scripts/fuzz-stream.ts): Node's, and every second time the browser build's. 0: never. Default 4.
   */
  readonly streamEvery?: number
  /**
   * Every this many iterations (offset by half of it: with the defaults, not those that also stream), the
   * one-shot decrypt is the browser build's instead of Node's: on WebCrypto, as in a browser (here, Node's own).
   * 0: never. Default 4.
   */
  readonly browserEvery?: number
}

export interface FailureGroup {
  readonly signature: string
  readonly count: number
  readonly firstIteration: number
  readonly firstMutation: string
}

export interface FuzzReport {
  readonly seed: number
  readonly iterationsRequested: number
  /** Iterations actually run (fewer than requested when the time budget ran out). */
  readonly iterations: number
  readonly stoppedEarly: boolean
  readonly elapsedMs: number
  readonly iterationsPerSecond: number
  readonly corpusSize: number
  readonly corpusBuildMs: number
  /** Mutation attempts discarded because they left the message byte-identical (or equal to a corpus message). */
  readonly skippedIdentical: number
  readonly failures: number
  readonly failureList: readonly FuzzFailure[]
  readonly failureGroups: readonly FailureGroup[]
  readonly maxDecryptMs: number
  /** Iterations whose one-shot decrypt was the browser build's. */
  readonly browserRuns: number
  /** Iterations that also went through `decryptStream`, and the slowest of those. */
  readonly streamRuns: number
  /** Of `streamRuns`, those through the browser build's `decryptStream` (every second one). */
  readonly browserStreamRuns: number
  readonly maxStreamDecryptMs: number
  readonly p50DecryptMs: number
  readonly p99DecryptMs: number
  readonly meanDecryptMs: number
  readonly slowestIteration: number
  readonly rssStartMB: number
  readonly rssPeakMB: number
  readonly rssEndMB: number
  /** `heapUsed + external` (JS heap plus ArrayBuffer memory), after a forced GC when available. */
  readonly heapStartMB: number
  readonly heapEndMB: number
  readonly heapSamplesMB: readonly number[]
  readonly gcAvailable: boolean
  readonly errorsByCode: Readonly<Record<string, number>>
  readonly byMutation: Readonly<Record<string, { readonly runs: number; readonly failures: number }>>
  /** Problems with the corpus that reduce coverage (e.g. a message the structural parser could not read). */
  readonly corpusWarnings: readonly string[]
  /** Suspicious but not failing observations (e.g. a slow upward heap trend). */
  readonly warnings: readonly string[]
}

// ---------------------------------------------------------------------------------------------------------------
// Seeded PRNG (sfc32 state, seeded through an integer hash; one independent stream per iteration)

function hash32(x: number): number {
  x = (x + 0x9e3779b9) >>> 0
  x ^= x >>> 16
  x = Math.imul(x, 0x7feb352d)
  x ^= x >>> 15
  x = Math.imul(x, 0x846ca68b)
  x ^= x >>> 16
  return x >>> 0
}

export class Rng {
  private a: number
  private b: number
  private c: number
  private d: number

  constructor(seed: number, stream: number) {
    this.a = hash32(seed)
    this.b = hash32(stream ^ 0x5bd1e995)
    this.c = hash32(this.a ^ hash32(stream + 0x27d4eb2f))
    this.d = 1
    for (let i = 0; i < 16; i++) this.next()
  }

  /** Uniform uint32. */
  next(): number {
    const t = (((this.a + this.b) | 0) + this.d) | 0
    this.d = (this.d + 1) | 0
    this.a = this.b ^ (this.b >>> 9)
    this.b = (this.c + (this.c << 3)) | 0
    this.c = (this.c << 21) | (this.c >>> 11)
    this.c = (this.c + t) | 0
    return t >>> 0
  }

  /** Uniform integer in [0, n). */
  int(n: number): number {
    if (n <= 0) return 0
    return Math.floor((this.next() / 0x1_0000_0000) * n)
  }

  /** Uniform integer in [lo, hi]. */
  range(lo: number, hi: number): number {
    return lo + this.int(hi - lo + 1)
  }

  chance(p: number): boolean {
    return this.next() / 0x1_0000_0000 < p
  }

  pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw new Error('Rng.pick on an empty list')
    return items[this.int(items.length)] as T
  }

  bytes(n: number): Uint8Array {
    const out = new Uint8Array(n)
    for (let i = 0; i < n; i++) out[i] = this.next() & 0xff
    return out
  }
}

const CORPUS_STREAM = 0xffff_fff0
/** Mixed into the seed for the piece sizes of the stream path, so they do not follow the mutation's draws. */
const PIECES_SALT = 0x9d2c_5680

// ---------------------------------------------------------------------------------------------------------------
// Structural parser for (valid) corpus messages: finds field offsets and frame boundaries for structured mutations.

export interface LayoutField {
  readonly name: string
  readonly offset: number
  readonly size: 1 | 2 | 4
  readonly value: number
}

export interface LayoutFrame {
  readonly start: number
  readonly end: number
  readonly final: boolean
}

export interface Layout {
  readonly version: 1 | 2
  readonly suiteId: number
  readonly frameLength: number
  /** Offset of the header authentication (v1: IV + tag; v2: tag). */
  readonly headerAuthStart: number
  /** Offset just after the header authentication, i.e. the start of the body. */
  readonly headerEnd: number
  readonly frames: readonly LayoutFrame[]
  readonly bodyEnd: number
  /** Offset of the footer's signature length, or -1 without a footer. */
  readonly footerStart: number
  readonly fields: readonly LayoutField[]
}

const SIGNING_SUITES = new Set([0x0214, 0x0346, 0x0378, 0x0578])
const COMMITTING_SUITES = new Set([0x0478, 0x0578])

/** Length-like fields: targets of `length-field` mutations. */
const LENGTH_FIELDS = new Set([
  'aadLength',
  'ecPairCount',
  'ecKeyLength',
  'ecValueLength',
  'edkCount',
  'providerIdLength',
  'providerInfoLength',
  'edkLength',
  'ivLength',
  'frameLength',
  'finalFrameContentLength',
  'nonFramedContentLengthHigh',
  'nonFramedContentLengthLow',
  'signatureLength',
])

/** Enum/sequence fields: targets of `header-field` mutations. */
const ENUM_FIELDS = new Set([
  'version',
  'messageType',
  'suiteId',
  'contentType',
  'reserved',
  'frameSequence',
  'finalFrameMarker',
  'finalFrameSequence',
])

class LayoutReader {
  pos = 0
  readonly fields: LayoutField[] = []

  constructor(private readonly bytes: Uint8Array) {}

  private need(n: number): void {
    if (this.pos + n > this.bytes.length) {
      throw new Error(`message ends at ${this.bytes.length}, needed ${n} bytes at ${this.pos}`)
    }
  }

  uint(size: 1 | 2 | 4, name?: string): number {
    this.need(size)
    let value = 0
    for (let i = 0; i < size; i++) value = value * 256 + (this.bytes[this.pos + i] as number)
    if (name !== undefined) this.fields.push({ name, offset: this.pos, size, value })
    this.pos += size
    return value
  }

  skip(n: number): void {
    this.need(n)
    this.pos += n
  }
}

/** Parse the structure of a well-formed AWS Encryption SDK message. Throws when the message does not parse. */
export function parseLayout(bytes: Uint8Array): Layout {
  const r = new LayoutReader(bytes)
  const version = r.uint(1, 'version')
  if (version !== 1 && version !== 2) throw new Error(`unknown version ${version}`)
  if (version === 1) {
    const type = r.uint(1, 'messageType')
    if (type !== 0x80) throw new Error(`unknown v1 message type ${type}`)
  }
  const suiteId = r.uint(2, 'suiteId')
  r.skip(version === 1 ? 16 : 32) // message ID
  const aadLength = r.uint(2, 'aadLength')
  if (aadLength > 0) {
    const aadEnd = r.pos + aadLength
    const pairs = r.uint(2, 'ecPairCount')
    for (let i = 0; i < pairs; i++) {
      r.skip(r.uint(2, 'ecKeyLength'))
      r.skip(r.uint(2, 'ecValueLength'))
    }
    if (r.pos !== aadEnd) throw new Error(`AAD length ${aadLength} does not match its pairs`)
  }
  const edkCount = r.uint(2, 'edkCount')
  for (let i = 0; i < edkCount; i++) {
    r.skip(r.uint(2, 'providerIdLength'))
    r.skip(r.uint(2, 'providerInfoLength'))
    r.skip(r.uint(2, 'edkLength'))
  }
  const contentType = r.uint(1, 'contentType')
  let frameLength: number
  if (version === 1) {
    r.uint(4, 'reserved')
    const ivLength = r.uint(1, 'ivLength')
    if (ivLength !== 12) throw new Error(`IV length ${ivLength}`)
    frameLength = r.uint(4, 'frameLength')
  } else {
    frameLength = r.uint(4, 'frameLength')
    r.skip(32) // algorithm suite data (commitment key)
  }
  const headerAuthStart = r.pos
  r.skip(version === 1 ? 12 + 16 : 16)
  const headerEnd = r.pos

  const frames: LayoutFrame[] = []
  if (contentType === 2) {
    for (;;) {
      const start = r.pos
      const marker = r.uint(4)
      if (marker === 0xffff_ffff) {
        r.fields.push({ name: 'finalFrameMarker', offset: start, size: 4, value: marker })
        r.uint(4, 'finalFrameSequence')
        r.skip(12)
        r.skip(r.uint(4, 'finalFrameContentLength'))
        r.skip(16)
        frames.push({ start, end: r.pos, final: true })
        break
      }
      r.fields.push({ name: 'frameSequence', offset: start, size: 4, value: marker })
      r.skip(12 + frameLength + 16)
      frames.push({ start, end: r.pos, final: false })
    }
  } else if (contentType === 1) {
    r.skip(12)
    const high = r.uint(4, 'nonFramedContentLengthHigh')
    const low = r.uint(4, 'nonFramedContentLengthLow')
    r.skip(high * 0x1_0000_0000 + low)
    r.skip(16)
  } else {
    throw new Error(`unknown content type ${contentType}`)
  }
  const bodyEnd = r.pos

  let footerStart = -1
  if (SIGNING_SUITES.has(suiteId)) {
    footerStart = r.pos
    r.skip(r.uint(2, 'signatureLength'))
  }
  if (r.pos !== bytes.length) throw new Error(`parsed ${r.pos} bytes of ${bytes.length}`)
  if (COMMITTING_SUITES.has(suiteId) !== (version === 2)) {
    throw new Error(`suite 0x${suiteId.toString(16)} in a v${version} header`)
  }
  return { version, suiteId, frameLength, headerAuthStart, headerEnd, frames, bodyEnd, footerStart, fields: r.fields }
}

// ---------------------------------------------------------------------------------------------------------------
// Corpus

type AnyKeyring = RawAesKeyring | RawRsaKeyring

export interface CorpusEntry {
  readonly index: number
  readonly label: string
  readonly suiteId: number
  readonly keyringSpec: KeyringSpec
  readonly keyring: AnyKeyring
  readonly plaintext: Uint8Array
  readonly ciphertext: Uint8Array
  readonly layout: Layout | null
}

export interface Corpus {
  readonly entries: readonly CorpusEntry[]
  readonly warnings: readonly string[]
  /** Pristine messages that failed to decrypt; they are left out of `entries`. */
  readonly failures: readonly FuzzFailure[]
  readonly buildMs: number
}

export function buildKeyring(spec: KeyringSpec): AnyKeyring {
  if (spec.type === 'aes') {
    return new RawAesKeyring({
      keyNamespace: spec.keyNamespace,
      keyName: spec.keyName,
      wrappingKey: new Uint8Array(Buffer.from(spec.wrappingKeyHex, 'hex')),
    })
  }
  return new RawRsaKeyring({
    keyNamespace: spec.keyNamespace,
    keyName: spec.keyName,
    publicKey: spec.publicKeyPem,
    privateKey: spec.privateKeyPem,
    padding: 'OAEP-SHA256',
  })
}

interface CorpusShape {
  readonly name: string
  readonly keyring: 'aes' | 'rsa'
  readonly plaintextLength: number
  readonly frameLength: number
  readonly encryptionContext: Readonly<Record<string, string>>
}

const CORPUS_SHAPES: readonly CorpusShape[] = [
  { name: 'empty', keyring: 'aes', plaintextLength: 0, frameLength: 64, encryptionContext: {} },
  {
    name: 'small+ec',
    keyring: 'aes',
    plaintextLength: 17,
    frameLength: 4096,
    encryptionContext: { purpose: 'fuzz', tenant: 't-1' },
  },
  { name: 'multi+ec', keyring: 'aes', plaintextLength: 200, frameLength: 64, encryptionContext: { a: '1' } },
  { name: 'multi-exact', keyring: 'aes', plaintextLength: 128, frameLength: 64, encryptionContext: {} },
  { name: 'tiny-frames', keyring: 'aes', plaintextLength: 9, frameLength: 1, encryptionContext: {} },
  { name: 'rsa-multi+ec', keyring: 'rsa', plaintextLength: 100, frameLength: 64, encryptionContext: { k: 'rsa' } },
]

function suiteHex(id: number): string {
  return `0x${id.toString(16).padStart(4, '0')}`
}

function toBase64(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64')
}

export function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false
  return true
}

/** Build the seed corpus: every suite × every shape in `CORPUS_SHAPES`, each checked to decrypt. */
export async function buildCorpus(seed: number): Promise<Corpus> {
  const started = performance.now()
  const rng = new Rng(seed, CORPUS_STREAM)
  const aesSpec: KeyringSpec = {
    type: 'aes',
    keyNamespace: 'fuzz',
    keyName: 'aes-256',
    wrappingKeyHex: Buffer.from(rng.bytes(32)).toString('hex'),
  }
  const rsaPair = generateKeyPairSync('rsa', {
    modulusLength: 2048,
    publicKeyEncoding: { type: 'spki', format: 'pem' },
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
  })
  const rsaSpec: KeyringSpec = {
    type: 'rsa',
    keyNamespace: 'fuzz',
    keyName: 'rsa-2048',
    publicKeyPem: rsaPair.publicKey,
    privateKeyPem: rsaPair.privateKey,
  }
  const keyrings = { aes: buildKeyring(aesSpec), rsa: buildKeyring(rsaSpec) }
  const specs = { aes: aesSpec, rsa: rsaSpec }

  const entries: CorpusEntry[] = []
  const warnings: string[] = []
  const failures: FuzzFailure[] = []
  for (const suiteId of ALGORITHM_SUITE_IDS) {
    const committing = COMMITTING_SUITES.has(suiteId)
    for (const shape of CORPUS_SHAPES) {
      const label = `${suiteHex(suiteId)}/${shape.name}`
      const plaintext = rng.bytes(shape.plaintextLength)
      const keyring = keyrings[shape.keyring]
      let ciphertext: Uint8Array
      try {
        const result = await encrypt(keyring, plaintext, {
          algorithmSuite: suiteId,
          frameLength: shape.frameLength,
          encryptionContext: { ...shape.encryptionContext },
          commitmentPolicy: committing ? 'REQUIRE_ENCRYPT_ALLOW_DECRYPT' : 'FORBID_ENCRYPT_ALLOW_DECRYPT',
        })
        ciphertext = new Uint8Array(result.ciphertext) // private copy: decrypt never sees the pristine bytes
      } catch (error) {
        failures.push(corpusFailure(seed, label, `encrypt failed: ${describeThrown(error).text}`, error))
        continue
      }
      // The pristine message must round-trip, or every "rejection" below proves nothing.
      try {
        const result = await decrypt(keyring, ciphertext.slice(), { commitmentPolicy: 'REQUIRE_ENCRYPT_ALLOW_DECRYPT' })
        if (!equalBytes(result.plaintext, plaintext)) {
          failures.push(corpusFailure(seed, label, 'pristine message decrypted to a different plaintext', undefined))
          continue
        }
      } catch (error) {
        failures.push(corpusFailure(seed, label, `pristine message failed to decrypt: ${describeThrown(error).text}`, error))
        continue
      }
      let layout: Layout | null = null
      try {
        layout = parseLayout(ciphertext)
        if (layout.suiteId !== suiteId) throw new Error(`suite ${suiteHex(layout.suiteId)} in header`)
        if (layout.frameLength !== shape.frameLength) throw new Error(`frame length ${layout.frameLength} in header`)
      } catch (error) {
        layout = null
        warnings.push(`${label}: structural parse failed (${describeThrown(error).text}); structured mutations skip it`)
      }
      entries.push({
        index: entries.length,
        label,
        suiteId,
        keyringSpec: specs[shape.keyring],
        keyring,
        plaintext,
        ciphertext,
        layout,
      })
    }
  }
  return { entries, warnings, failures, buildMs: performance.now() - started }
}

function corpusFailure(seed: number, label: string, detail: string, error: unknown): FuzzFailure {
  const described = error === undefined ? undefined : describeThrown(error)
  return {
    kind: 'corpus',
    seed,
    iteration: -1,
    mutation: 'none (pristine corpus message)',
    baseLabel: label,
    durationMs: 0,
    detail,
    ...(described === undefined ? {} : { errorName: described.name, stack: described.stack }),
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Mutations

interface Mutated {
  readonly bytes: Uint8Array
  readonly description: string
}

type Mutator = (rng: Rng, base: CorpusEntry, corpus: readonly CorpusEntry[]) => Mutated | null

function concat(...parts: Uint8Array[]): Uint8Array {
  let length = 0
  for (const part of parts) length += part.length
  const out = new Uint8Array(length)
  let offset = 0
  for (const part of parts) {
    out.set(part, offset)
    offset += part.length
  }
  return out
}

function insertAt(bytes: Uint8Array, at: number, insert: Uint8Array): Uint8Array {
  return concat(bytes.subarray(0, at), insert, bytes.subarray(at))
}

function writeUint(bytes: Uint8Array, offset: number, size: 1 | 2 | 4, value: number): void {
  for (let i = size - 1; i >= 0; i--) {
    bytes[offset + i] = value & 0xff
    value = Math.floor(value / 256)
  }
}

function readUint(bytes: Uint8Array, offset: number, size: 1 | 2 | 4): number {
  let value = 0
  for (let i = 0; i < size; i++) value = value * 256 + (bytes[offset + i] as number)
  return value
}

function hexValue(value: number, size: number): string {
  return `0x${value.toString(16).padStart(size * 2, '0')}`
}

/** Offsets where structure changes: useful truncation / insertion points. */
function boundaries(layout: Layout): number[] {
  const points = new Set<number>([layout.headerAuthStart, layout.headerEnd, layout.bodyEnd])
  for (const frame of layout.frames) {
    points.add(frame.start)
    points.add(frame.end)
    if (frame.final) points.add(frame.start + 4 + 4 + 12 + 4) // start of final frame content
  }
  if (layout.footerStart >= 0) points.add(layout.footerStart + 2)
  for (const field of layout.fields) {
    points.add(field.offset)
    points.add(field.offset + field.size)
  }
  return [...points].sort((a, b) => a - b)
}

function describeRegion(layout: Layout | null, offset: number): string {
  if (layout === null) return ''
  if (offset < layout.headerAuthStart) return 'header'
  if (offset < layout.headerEnd) return 'header-auth'
  for (let i = 0; i < layout.frames.length; i++) {
    const frame = layout.frames[i] as LayoutFrame
    if (offset < frame.end) return frame.final ? `final-frame(#${i})` : `frame#${i}`
  }
  if (offset < layout.bodyEnd) return 'body'
  return layout.footerStart >= 0 ? 'footer' : 'after-end'
}

function where(base: CorpusEntry, offset: number): string {
  const region = describeRegion(base.layout, offset)
  return region === '' ? `@${offset}` : `@${offset}(${region})`
}

const mutators: Record<MutationKind, Mutator> = {
  'bit-flip': (rng, base) => {
    const bytes = base.ciphertext.slice()
    const offset = rng.int(bytes.length)
    const bit = rng.int(8)
    bytes[offset] = (bytes[offset] as number) ^ (1 << bit)
    return { bytes, description: `bit-flip ${where(base, offset)} bit=${bit}` }
  },

  'multi-bit-flip': (rng, base) => {
    const bytes = base.ciphertext.slice()
    const count = rng.range(2, 16)
    const clustered = rng.chance(0.5)
    const anchor = rng.int(bytes.length)
    const offsets: number[] = []
    for (let i = 0; i < count; i++) {
      const offset = clustered ? Math.min(bytes.length - 1, anchor + rng.int(16)) : rng.int(bytes.length)
      bytes[offset] = (bytes[offset] as number) ^ (1 << rng.int(8))
      offsets.push(offset)
    }
    return { bytes, description: `multi-bit-flip x${count} ${clustered ? 'clustered' : 'scattered'} at [${offsets.join(',')}]` }
  },

  'byte-random': (rng, base) => {
    const bytes = base.ciphertext.slice()
    const offset = rng.int(bytes.length)
    const value = ((bytes[offset] as number) + 1 + rng.int(255)) & 0xff // always different
    bytes[offset] = value
    return { bytes, description: `byte-random ${where(base, offset)} := ${hexValue(value, 1)}` }
  },

  'byte-zero': (rng, base) => setByte(rng, base, 0x00),
  'byte-ff': (rng, base) => setByte(rng, base, 0xff),

  truncate: (rng, base) => {
    const length = base.ciphertext.length
    let at: number
    let how: string
    if (base.layout !== null && rng.chance(0.5)) {
      const points = boundaries(base.layout).filter((p) => p < length)
      at = rng.pick(points)
      if (rng.chance(0.3)) at = Math.max(0, at + rng.pick([-1, 1]))
      how = 'near boundary'
    } else {
      at = rng.int(length)
      how = 'random'
    }
    if (at >= length) return null
    return { bytes: base.ciphertext.slice(0, at), description: `truncate ${how} to ${at} of ${length} bytes ${where(base, at)}` }
  },

  'insert-random': (rng, base) => {
    const at = rng.int(base.ciphertext.length + 1)
    const count = rng.chance(0.5) ? rng.range(1, 4) : rng.range(5, 64)
    return {
      bytes: insertAt(base.ciphertext, at, rng.bytes(count)),
      description: `insert-random ${count} bytes ${where(base, at)}`,
    }
  },

  'delete-range': (rng, base) => {
    const length = base.ciphertext.length
    if (length < 2) return null
    const count = rng.chance(0.5) ? rng.range(1, 4) : rng.range(1, Math.min(64, length - 1))
    const at = rng.int(length - count + 1)
    return {
      bytes: concat(base.ciphertext.subarray(0, at), base.ciphertext.subarray(at + count)),
      description: `delete-range ${count} bytes ${where(base, at)}`,
    }
  },

  'splice-other': (rng, base, corpus) => {
    if (corpus.length < 2) return null
    let donor = rng.pick(corpus)
    if (donor.index === base.index) donor = corpus[(donor.index + 1) % corpus.length] as CorpusEntry
    const source = donor.ciphertext
    const count = rng.range(1, Math.min(source.length, rng.chance(0.5) ? 32 : 256))
    const from = rng.int(source.length - count + 1)
    const chunk = source.subarray(from, from + count)
    const mode = rng.int(3)
    if (mode === 0) {
      const at = rng.int(base.ciphertext.length + 1)
      return {
        bytes: insertAt(base.ciphertext, at, chunk),
        description: `splice-other insert ${donor.label}[${from}..+${count}] ${where(base, at)}`,
      }
    }
    // Overwrite at the same offset (structure-aligned, e.g. another message's EDK or frame) or at a random one.
    const at = mode === 1 ? Math.min(from, base.ciphertext.length - 1) : rng.int(base.ciphertext.length)
    const bytes = base.ciphertext.slice()
    const fitted = chunk.subarray(0, Math.min(chunk.length, bytes.length - at))
    bytes.set(fitted, at)
    return {
      bytes,
      description: `splice-other overwrite(${mode === 1 ? 'same offset' : 'random offset'}) ${donor.label}[${from}..+${fitted.length}] ${where(base, at)}`,
    }
  },

  'frame-duplicate': (rng, base) => {
    const layout = base.layout
    if (layout === null || layout.frames.length < 1) return null
    const index = rng.int(layout.frames.length)
    const frame = layout.frames[index] as LayoutFrame
    const copy = base.ciphertext.slice(frame.start, frame.end)
    const positions = [...layout.frames.map((f) => f.start), layout.bodyEnd]
    const at = rng.pick(positions)
    return {
      bytes: insertAt(base.ciphertext, at, copy),
      description: `frame-duplicate ${frame.final ? 'final ' : ''}frame#${index} inserted ${where(base, at)}`,
    }
  },

  'frame-swap': (rng, base) => {
    const layout = base.layout
    if (layout === null || layout.frames.length < 2) return null
    const i = rng.int(layout.frames.length)
    let j = rng.int(layout.frames.length - 1)
    if (j >= i) j++
    const [first, second] = i < j ? [i, j] : [j, i]
    const a = layout.frames[first] as LayoutFrame
    const b = layout.frames[second] as LayoutFrame
    const m = base.ciphertext
    return {
      bytes: concat(
        m.subarray(0, a.start),
        m.subarray(b.start, b.end),
        m.subarray(a.end, b.start),
        m.subarray(a.start, a.end),
        m.subarray(b.end),
      ),
      description: `frame-swap frame#${first} <-> frame#${second}${b.final ? ' (final)' : ''}`,
    }
  },

  'frame-drop': (rng, base) => {
    const layout = base.layout
    if (layout === null || layout.frames.length < 2) return null
    const index = rng.int(layout.frames.length)
    const frame = layout.frames[index] as LayoutFrame
    return {
      bytes: concat(base.ciphertext.subarray(0, frame.start), base.ciphertext.subarray(frame.end)),
      description: `frame-drop ${frame.final ? 'final ' : ''}frame#${index} of ${layout.frames.length}`,
    }
  },

  'length-field': (rng, base) => {
    const layout = base.layout
    if (layout === null) return null
    const fields = layout.fields.filter((f) => LENGTH_FIELDS.has(f.name))
    if (fields.length === 0) return null
    const field = rng.pick(fields)
    const max = 2 ** (8 * field.size) - 1
    const half = 2 ** (8 * field.size - 1)
    const remaining = base.ciphertext.length - field.offset
    const candidates = [
      max,
      max,
      max - 1,
      half,
      half - 1,
      field.value + 1,
      field.value - 1,
      field.value * 2 + 1,
      field.value + rng.range(2, 64),
      remaining,
      remaining + 1,
      0,
      rng.next(),
    ]
    const value = (rng.pick(candidates) % (max + 1) + (max + 1)) % (max + 1)
    if (value === field.value) return null
    const bytes = base.ciphertext.slice()
    writeUint(bytes, field.offset, field.size, value)
    return {
      bytes,
      description: `length-field ${field.name}${where(base, field.offset)} ${hexValue(field.value, field.size)} -> ${hexValue(value, field.size)}`,
    }
  },

  'header-field': (rng, base) => {
    const layout = base.layout
    if (layout === null) return null
    const fields = layout.fields.filter((f) => ENUM_FIELDS.has(f.name))
    if (fields.length === 0) return null
    const field = rng.pick(fields)
    let candidates: number[]
    switch (field.name) {
      case 'version':
        candidates = [0, 1, 2, 3, 0x80, 0xff]
        break
      case 'messageType':
        candidates = [0, 0x01, 0x81, 0xff]
        break
      case 'suiteId':
        candidates = [...ALGORITHM_SUITE_IDS, 0, 0x0001, 0xffff, rng.next() & 0xffff]
        break
      case 'contentType':
        candidates = [0, 1, 2, 3, 0xff]
        break
      case 'reserved':
        candidates = [1, 0xffff_ffff, 0x8000_0000, rng.next()]
        break
      case 'finalFrameMarker':
        candidates = [0xffff_fffe, 0x7fff_ffff, 0, field.value - 1, readUint(base.ciphertext, field.offset + 4, 4)]
        break
      default: // frame sequence numbers
        candidates = [0, 1, field.value + 1, field.value - 1, field.value + 2, 0xffff_fffe, 0xffff_ffff]
    }
    const max = 2 ** (8 * field.size) - 1
    const value = (rng.pick(candidates) % (max + 1) + (max + 1)) % (max + 1)
    if (value === field.value) return null
    const bytes = base.ciphertext.slice()
    writeUint(bytes, field.offset, field.size, value)
    return {
      bytes,
      description: `header-field ${field.name}${where(base, field.offset)} ${hexValue(field.value, field.size)} -> ${hexValue(value, field.size)}`,
    }
  },

  'overwrite-big': (rng, base) => {
    const size: 2 | 4 = rng.chance(0.5) ? 2 : 4
    const length = base.ciphertext.length
    if (length < size) return null
    let at = rng.int(length - size + 1)
    if (rng.chance(0.5)) at -= at % 2
    const values =
      size === 2
        ? [0xffff, 0x8000, 0x7fff, 0x1000, 0xfffe]
        : [0xffff_ffff, 0x8000_0000, 0x7fff_ffff, 0x00ff_ffff, 0x0100_0000, 0x0001_0000, 0xffff_fffe]
    const value = rng.pick(values)
    const bytes = base.ciphertext.slice()
    writeUint(bytes, at, size, value)
    return { bytes, description: `overwrite-big ${size} bytes ${where(base, at)} := ${hexValue(value, size)}` }
  },

  'append-after-header': (rng, base) => {
    const layout = base.layout
    if (layout === null) return null
    const count = rng.chance(0.5) ? rng.range(1, 4) : rng.range(5, 64)
    return {
      bytes: insertAt(base.ciphertext, layout.headerEnd, rng.bytes(count)),
      description: `append-after-header ${count} random bytes ${where(base, layout.headerEnd)}`,
    }
  },

  'append-after-message': (rng, base, corpus) => {
    const mode = rng.int(4)
    if (mode === 0) {
      // A whole second message (the same one, or another) concatenated.
      const other = rng.chance(0.5) ? base : rng.pick(corpus)
      return {
        bytes: concat(base.ciphertext, other.ciphertext),
        description: `append-after-message whole message ${other.label}`,
      }
    }
    const count = mode === 1 ? 1 : mode === 2 ? rng.range(2, 16) : rng.range(17, 256)
    const tail = rng.chance(0.25) ? new Uint8Array(count) : rng.bytes(count)
    return {
      bytes: concat(base.ciphertext, tail),
      description: `append-after-message ${count} ${tail.every((b) => b === 0) ? 'zero' : 'random'} bytes`,
    }
  },

  'many-keys': manyKeys,
}

/**
 * The message's encrypted data keys replaced by many small ones (2 to 64, or 1 time in 16 from 4,096 to 20,000;
 * headers up to about 660 KB), followed half the time by the original keys. However the message arrives, parsing
 * must stay linear: a decrypt stream once parsed such a header again for every piece written to it.
 */
function manyKeys(rng: Rng, base: CorpusEntry): Mutated | null {
  const fields = base.layout?.fields ?? []
  const countField = fields.find((field) => field.name === 'edkCount')
  const contentType = fields.find((field) => field.name === 'contentType')
  if (countField === undefined || contentType === undefined) return null
  const count = rng.chance(1 / 16) ? rng.range(4096, 20_000) : rng.range(2, 64)
  const keepOriginal = rng.chance(0.5)
  const parts: Uint8Array[] = [base.ciphertext.slice(0, countField.offset), Uint8Array.of(0, 0)]
  for (let index = 0; index < count; index++) {
    // A provider ID of ASCII letters (random bytes are seldom valid UTF-8, which would end the parse there).
    const providerId = Uint8Array.from({ length: rng.int(4) }, () => 0x61 + rng.int(26))
    parts.push(Uint8Array.of(0, providerId.length), providerId)
    for (const length of [rng.int(9), rng.int(17)]) parts.push(Uint8Array.of(0, length), rng.bytes(length))
  }
  if (keepOriginal) parts.push(base.ciphertext.slice(countField.offset + 2, contentType.offset))
  parts.push(base.ciphertext.slice(contentType.offset))
  const bytes = concat(...parts)
  writeUint(bytes, countField.offset, 2, count + (keepOriginal ? countField.value : 0))
  return { bytes, description: `many-keys ${count} small keys${keepOriginal ? ', then the original ones' : ''} (header ${contentType.offset - countField.offset} -> ${bytes.length - base.ciphertext.length + contentType.offset - countField.offset} bytes of keys)` }
}

function setByte(rng: Rng, base: CorpusEntry, value: number): Mutated | null {
  const bytes = base.ciphertext.slice()
  let offset = rng.int(bytes.length)
  // Prefer a byte that actually changes.
  for (let tries = 0; tries < 8 && bytes[offset] === value; tries++) offset = rng.int(bytes.length)
  if (bytes[offset] === value) return null
  bytes[offset] = value
  return { bytes, description: `byte-${value === 0 ? 'zero' : 'ff'} ${where(base, offset)} := ${hexValue(value, 1)}` }
}

function applicable(kind: MutationKind, entry: CorpusEntry): boolean {
  if (entry.ciphertext.length === 0) return false
  switch (kind) {
    case 'frame-duplicate':
      return entry.layout !== null && entry.layout.frames.length >= 1
    case 'frame-swap':
    case 'frame-drop':
      return entry.layout !== null && entry.layout.frames.length >= 2
    case 'length-field':
    case 'header-field':
    case 'append-after-header':
    case 'many-keys':
      return entry.layout !== null
    default:
      return true
  }
}

interface GeneratedInput {
  readonly kind: MutationKind
  readonly base: CorpusEntry
  readonly bytes: Uint8Array
  readonly description: string
  readonly skippedIdentical: number
}

/** The corpus messages each mutation kind applies to, and the corpus messages of each length: `generateInput`'s indexes. */
export function indexCorpus(entries: readonly CorpusEntry[]): {
  byKind: ReadonlyMap<MutationKind, readonly CorpusEntry[]>
  bySize: ReadonlyMap<number, readonly CorpusEntry[]>
} {
  const byKind = new Map<MutationKind, CorpusEntry[]>()
  for (const kind of MUTATION_KINDS) byKind.set(kind, entries.filter((entry) => applicable(kind, entry)))
  const bySize = new Map<number, CorpusEntry[]>()
  for (const entry of entries) {
    const list = bySize.get(entry.ciphertext.length) ?? []
    list.push(entry)
    bySize.set(entry.ciphertext.length, list)
  }
  return { byKind, bySize }
}

/**
 * The input of iteration `iteration`: a mutation kind chosen uniformly (among kinds that apply to some corpus
 * message), a base message chosen uniformly among those it applies to, and the mutation. Attempts that leave the
 * message byte-identical to its base, or equal to any corpus message, are discarded and retried.
 */
export function generateInput(
  seed: number,
  iteration: number,
  corpus: readonly CorpusEntry[],
  byKind: ReadonlyMap<MutationKind, readonly CorpusEntry[]>,
  bySize: ReadonlyMap<number, readonly CorpusEntry[]>,
): GeneratedInput {
  const rng = new Rng(seed, iteration)
  const kinds = MUTATION_KINDS.filter((k) => (byKind.get(k)?.length ?? 0) > 0)
  let skippedIdentical = 0
  for (let attempt = 0; attempt < 64; attempt++) {
    const kind = rng.pick(kinds)
    const base = rng.pick(byKind.get(kind) as readonly CorpusEntry[])
    const mutated = mutators[kind](rng, base, corpus)
    if (mutated === null) continue
    const sameSize = bySize.get(mutated.bytes.length) ?? []
    if (sameSize.some((entry) => equalBytes(entry.ciphertext, mutated.bytes))) {
      skippedIdentical++
      continue
    }
    return { kind, base, bytes: mutated.bytes, description: mutated.description, skippedIdentical }
  }
  throw new Error(`iteration ${iteration}: no effective mutation in 64 attempts (seed ${seed})`)
}

// ---------------------------------------------------------------------------------------------------------------
// Decrypt + classification

type Outcome =
  | { readonly kind: 'rejected'; readonly code: string }
  | { readonly kind: 'accepted'; readonly plaintext: Uint8Array }
  | { readonly kind: 'foreign'; readonly error: unknown }
  | { readonly kind: 'hang' }

interface Timed {
  readonly outcome: Outcome
  readonly durationMs: number
}

async function timedDecrypt(keyring: AnyKeyring, message: Uint8Array, hangMs: number, build: Build): Promise<Timed> {
  let timer: ReturnType<typeof setTimeout> | undefined
  const hang = new Promise<Outcome>((resolve) => {
    timer = setTimeout(() => resolve({ kind: 'hang' }), hangMs)
  })
  const started = performance.now()
  let call: Promise<Outcome>
  try {
    call = (build === 'browser' ? browserDecrypt : decrypt)(keyring, message, { commitmentPolicy: 'REQUIRE_ENCRYPT_ALLOW_DECRYPT' }).then(
      (result): Outcome => ({ kind: 'accepted', plaintext: result.plaintext }),
      (error: unknown): Outcome => classifyError(error),
    )
  } catch (error) {
    call = Promise.resolve(classifyError(error)) // thrown synchronously
  }
  const outcome = await Promise.race([call, hang])
  const durationMs = performance.now() - started
  clearTimeout(timer)
  return { outcome, durationMs }
}

function classifyError(error: unknown): Outcome {
  if (error instanceof EnvelopeError) return { kind: 'rejected', code: String(error.code) }
  return { kind: 'foreign', error }
}

export function describeThrown(error: unknown): { name: string; text: string; stack: string } {
  if (error instanceof Error) {
    const stack = (error.stack ?? '').split('\n').slice(0, 8).join('\n')
    const code = (error as { code?: unknown }).code
    return {
      name: error.constructor?.name ?? error.name,
      text: `${error.name}${code === undefined ? '' : `[${String(code)}]`}: ${error.message}`,
      stack,
    }
  }
  let text: string
  try {
    text = typeof error === 'string' ? JSON.stringify(error) : String(error)
  } catch {
    text = Object.prototype.toString.call(error)
  }
  return { name: typeof error, text: `non-Error value thrown: ${text}`, stack: '' }
}

function outcomeLabel(outcome: Outcome): string {
  switch (outcome.kind) {
    case 'rejected':
      return `rejected:${outcome.code}`
    case 'accepted':
      return 'accepted'
    case 'foreign':
      return `foreign:${describeThrown(outcome.error).name}`
    case 'hang':
      return 'hang'
  }
}

/**
 * The corpus message whose plaintext a stream may emit the start of: the one whose whole header the mutated
 * message begins with (a splice can put another message's header, and frames, first), else the original.
 */
export function streamReference(message: Uint8Array, base: CorpusEntry, corpus: readonly CorpusEntry[]): CorpusEntry {
  const carries = (entry: CorpusEntry): boolean => {
    const end = entry.layout?.headerEnd
    return end !== undefined && message.length >= end && equalBytes(message.subarray(0, end), entry.ciphertext.subarray(0, end))
  }
  return carries(base) ? base : (corpus.find(carries) ?? base)
}

/** Decrypt a saved case again (through a stream, for a stream's failure) and say what happened (`fuzz.ts --replay`). */
export async function replayCase(
  fuzzCase: FuzzCase,
  hangMs = 20_000,
): Promise<{ outcome: string; detail: string; durationMs: number }> {
  const keyring = buildKeyring(fuzzCase.keyring)
  const message = new Uint8Array(Buffer.from(fuzzCase.messageBase64, 'base64'))
  if (fuzzCase.pieces !== undefined) {
    const plaintext = new Uint8Array(Buffer.from(fuzzCase.streamPlaintextBase64 ?? '', 'base64'))
    const build = fuzzCase.build ?? 'node'
    const streamed = await streamDecrypt(keyring, message, fuzzCase.pieces, hangMs, build)
    const finding = streamFinding(streamed, plaintext, Number.POSITIVE_INFINITY)
    const stack = streamed.error instanceof Error ? `\n${streamed.error.stack}` : ''
    return {
      outcome: finding?.kind ?? `rejected:${streamed.code}`,
      detail: `${byBuild(build)}decryptStream, written in pieces of ${fuzzCase.pieces.join(', ')} bytes: ${finding?.detail ?? `${streamed.emitted.length} bytes emitted`}${stack}`,
      durationMs: streamed.durationMs,
    }
  }
  const build = fuzzCase.build ?? 'node'
  const { outcome, durationMs } = await timedDecrypt(keyring, message, hangMs, build)
  let detail = byBuild(build)
  if (outcome.kind === 'foreign') {
    const described = describeThrown(outcome.error)
    detail += `${described.text}\n${described.stack}`
  } else if (outcome.kind === 'accepted') {
    const original = new Uint8Array(Buffer.from(fuzzCase.originalBase64, 'base64'))
    detail += `plaintext of ${outcome.plaintext.length} bytes returned (original message ${original.length} bytes, mutated ${message.length})`
  }
  return { outcome: outcomeLabel(outcome), detail, durationMs }
}

// ---------------------------------------------------------------------------------------------------------------
// Memory

type GcFunction = () => void

let cachedGc: GcFunction | null | undefined

/** `global.gc` when run with --expose-gc; otherwise enable it at runtime (V8 flag + fresh context). */
export function getGc(): GcFunction | null {
  if (cachedGc !== undefined) return cachedGc
  const existing = (globalThis as { gc?: unknown }).gc
  if (typeof existing === 'function') {
    cachedGc = existing as GcFunction
    return cachedGc
  }
  try {
    setFlagsFromString('--expose-gc')
    const fn: unknown = runInNewContext('gc')
    cachedGc = typeof fn === 'function' ? (fn as GcFunction) : null
  } catch {
    cachedGc = null
  }
  return cachedGc
}

const MB = 1024 * 1024

/** JS heap plus off-heap ArrayBuffer/Buffer memory (a leaked Uint8Array shows up only in the latter). */
function heapBytes(usage: NodeJS.MemoryUsage = process.memoryUsage()): number {
  return usage.heapUsed + usage.external
}

function mb(bytes: number): number {
  return Math.round((bytes / MB) * 10) / 10
}

/** Peak resident set size of the process so far (getrusage maxrss), in bytes. */
function peakRss(): number {
  return process.resourceUsage().maxRSS * 1024
}

// ---------------------------------------------------------------------------------------------------------------
// The fuzz loop

function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return 0
  const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))
  return sorted[index] as number
}

function round3(x: number): number {
  return Math.round(x * 1000) / 1000
}

function failureSignature(f: FuzzFailure): string {
  if (f.kind === 'non-envelope-error') {
    // Same error class + message + throwing frame = same bug.
    const frame = (f.stack ?? '').split('\n').find((line) => line.trim().startsWith('at ')) ?? ''
    return `${f.kind}: ${f.detail.replace(/\d+/g, 'N')} ${frame.trim()}`
  }
  if (f.kind === 'accepted-mutation') return `${f.kind}: ${f.mutation.split(' ')[0] ?? ''} on ${f.baseLabel.split('/')[1] ?? ''}`
  return `${f.kind}: ${f.mutation.split(' ')[0] ?? ''}`
}

export async function runFuzz(options: FuzzOptions): Promise<FuzzReport> {
  const seed = options.seed >>> 0
  const iterationsRequested = Math.max(0, Math.floor(options.iterations))
  const startIteration = options.startIteration ?? 0
  const slowMs = options.slowMs ?? 1000
  const hangMs = options.hangMs ?? 20_000
  const rssLimit = (options.rssLimitMB ?? 256) * MB
  const heapGrowthLimit = (options.heapGrowthLimitMB ?? 64) * MB
  const sampleEvery = options.memorySampleEvery ?? Math.max(100, Math.ceil(iterationsRequested / 50))
  const progressEvery = options.progressEvery ?? Math.max(100, Math.ceil(iterationsRequested / 20))
  const maxStored = options.maxStoredFailures ?? 100
  const streamEvery = options.streamEvery ?? 4
  const browserEvery = options.browserEvery ?? 4

  const failureList: FuzzFailure[] = []
  const groups = new Map<string, { count: number; firstIteration: number; firstMutation: string }>()
  let failureCount = 0
  const warnings: string[] = []
  const recordFailure = (failure: FuzzFailure): void => {
    failureCount++
    if (failureList.length < maxStored) failureList.push(failure)
    const signature = failureSignature(failure)
    const group = groups.get(signature)
    if (group === undefined) {
      groups.set(signature, { count: 1, firstIteration: failure.iteration, firstMutation: failure.mutation })
    } else {
      group.count++
    }
    options.onFailure?.(failure)
  }

  const corpus = await buildCorpus(seed)
  for (const failure of corpus.failures) recordFailure(failure)
  const entries = corpus.entries
  if (entries.length === 0) throw new Error('fuzz: no usable corpus message (every encrypt/decrypt round trip failed)')
  const { byKind, bySize } = indexCorpus(entries)

  const byMutation: Record<string, { runs: number; failures: number }> = {}
  for (const kind of MUTATION_KINDS) byMutation[kind] = { runs: 0, failures: 0 }
  const errorsByCode: Record<string, number> = {}
  const durations = new Float64Array(iterationsRequested)

  const gc = getGc()
  gc?.()
  const rssStart = process.memoryUsage.rss()
  const heapStart = heapBytes()
  let rssBaseline = Math.max(rssStart, peakRss())
  let rssPeak = rssStart
  const heapSamples: number[] = [heapStart]

  let maxDecryptMs = 0
  let streamRuns = 0
  let browserRuns = 0
  let browserStreamRuns = 0
  let maxStreamDecryptMs = 0
  let slowestIteration = -1
  let skippedIdentical = 0
  let done = 0
  let stoppedEarly = false
  const loopStart = performance.now()

  const progress = (iteration: number): FuzzProgress => {
    const elapsedMs = performance.now() - loopStart
    return {
      iteration,
      total: iterationsRequested,
      elapsedMs,
      iterationsPerSecond: elapsedMs > 0 ? (done * 1000) / elapsedMs : 0,
      failures: failureCount,
      maxDecryptMs: round3(maxDecryptMs),
      rssMB: mb(process.memoryUsage.rss()),
      heapMB: mb(heapBytes()),
    }
  }

  for (let n = 0; n < iterationsRequested; n++) {
    if (options.timeBudgetMs !== undefined && performance.now() - loopStart > options.timeBudgetMs) {
      stoppedEarly = true
      break
    }
    const iteration = startIteration + n
    const input = generateInput(seed, iteration, entries, byKind, bySize)
    skippedIdentical += input.skippedIdentical
    const stats = byMutation[input.kind] as { runs: number; failures: number }
    stats.runs++

    options.onBeforeDecrypt?.(iteration)
    const build: Build = browserEvery > 0 && iteration % browserEvery === browserEvery >> 1 ? 'browser' : 'node'
    if (build === 'browser') browserRuns++
    const { outcome, durationMs } = await timedDecrypt(input.base.keyring, input.bytes, hangMs, build)
    durations[n] = durationMs
    done++
    if (durationMs > maxDecryptMs) {
      maxDecryptMs = durationMs
      slowestIteration = iteration
    }
    options.onCase?.({
      iteration,
      mutation: input.description,
      baseLabel: input.base.label,
      durationMs,
      outcome: outcomeLabel(outcome),
      build,
    })

    const fuzzCase = (caseBuild = build): FuzzCase => ({
      seed,
      iteration,
      mutation: input.description,
      baseLabel: input.base.label,
      keyring: input.base.keyringSpec,
      messageBase64: toBase64(input.bytes),
      originalBase64: toBase64(input.base.ciphertext),
      ...(caseBuild === 'browser' ? { build: caseBuild } : {}),
    })
    const common = { seed, iteration, mutation: input.description, baseLabel: input.base.label, durationMs }
    const by = byBuild(build)
    const fail = (failure: FuzzFailure): void => {
      stats.failures++
      recordFailure(failure)
    }

    switch (outcome.kind) {
      case 'rejected':
        errorsByCode[outcome.code] = (errorsByCode[outcome.code] ?? 0) + 1
        if (NOT_THE_MESSAGES_FAULT.has(outcome.code)) {
          fail({
            ...common,
            kind: 'misplaced-error',
            detail: `${by}decrypt failed with ${outcome.code}, which blames the library or the caller, not the message`,
            errorCode: outcome.code,
            case: fuzzCase(),
          })
        }
        break
      case 'accepted': {
        const unchanged = equalBytes(outcome.plaintext, input.base.plaintext)
        fail({
          ...common,
          kind: 'accepted-mutation',
          detail: `${by}decrypt returned a ${outcome.plaintext.length}-byte plaintext (${unchanged ? 'equal to' : 'DIFFERENT from'} the original) for a mutated message`,
          plaintextUnchanged: unchanged,
          case: fuzzCase(),
        })
        break
      }
      case 'foreign': {
        const described = describeThrown(outcome.error)
        errorsByCode[`(non-EnvelopeError ${described.name})`] = (errorsByCode[`(non-EnvelopeError ${described.name})`] ?? 0) + 1
        fail({
          ...common,
          kind: 'non-envelope-error',
          detail: by + described.text,
          errorName: described.name,
          stack: described.stack,
          case: fuzzCase(),
        })
        break
      }
      case 'hang':
        fail({ ...common, kind: 'hang', detail: `${by}decrypt did not settle within ${hangMs} ms`, case: fuzzCase() })
        break
    }
    if (outcome.kind !== 'hang' && durationMs > slowMs) {
      fail({
        ...common,
        kind: 'slow',
        detail: `${by}decrypt took ${durationMs.toFixed(1)} ms (limit ${slowMs} ms); outcome ${outcomeLabel(outcome)}`,
        case: fuzzCase(),
      })
    }

    if (streamEvery > 0 && iteration % streamEvery === 0) {
      options.onBeforeDecrypt?.(iteration)
      const pieces = pieceSizes(new Rng(seed ^ PIECES_SALT, iteration), input.bytes.length)
      // Every second stream is the browser build's.
      const streamBuild: Build = iteration % (2 * streamEvery) === streamEvery ? 'browser' : 'node'
      if (streamBuild === 'browser') browserStreamRuns++
      const streamed = await streamDecrypt(input.base.keyring, input.bytes, pieces, hangMs, streamBuild)
      streamRuns++
      maxStreamDecryptMs = Math.max(maxStreamDecryptMs, streamed.durationMs)
      const reference = streamReference(input.bytes, input.base, entries)
      const finding = streamFinding(streamed, reference.plaintext, slowMs)
      if (finding !== undefined) {
        const streamCase = { ...fuzzCase(streamBuild), pieces, streamPlaintextBase64: toBase64(reference.plaintext) }
        fail({ ...common, durationMs: streamed.durationMs, ...finding, detail: byBuild(streamBuild) + finding.detail, case: streamCase })
      }
    }

    // Transient spikes: getrusage's maxrss is a high-water mark, so one check per iteration pins the culprit.
    const peak = peakRss()
    if (peak > rssBaseline + rssLimit) {
      fail({
        ...common,
        kind: 'memory-rss',
        detail: `peak RSS reached ${mb(peak)} MB, over ${mb(rssBaseline)} MB + ${mb(rssLimit)} MB; input ${input.bytes.length} bytes`,
        case: fuzzCase(),
      })
      rssBaseline = peak // report the next spike, not every later iteration
    }
    if (peak > rssPeak) rssPeak = peak

    if ((n + 1) % sampleEvery === 0) {
      gc?.()
      const usage = process.memoryUsage()
      heapSamples.push(heapBytes(usage))
      if (usage.rss > rssPeak) rssPeak = usage.rss
    }
    if (options.onProgress !== undefined && (n + 1) % progressEvery === 0) options.onProgress(progress(iteration))
  }

  const elapsedMs = performance.now() - loopStart
  gc?.()
  const endUsage = process.memoryUsage()
  heapSamples.push(heapBytes(endUsage))
  rssPeak = Math.max(rssPeak, endUsage.rss, peakRss())

  // Heap trend: a steady climb (most deltas positive) by more than the limit is a leak.
  const heapGrowth = heapBytes(endUsage) - heapStart
  if (heapSamples.length >= 6) {
    let rising = 0
    for (let i = 1; i < heapSamples.length; i++) if ((heapSamples[i] as number) > (heapSamples[i - 1] as number)) rising++
    const risingFraction = rising / (heapSamples.length - 1)
    if (heapGrowth > heapGrowthLimit && risingFraction >= 0.75) {
      recordFailure({
        kind: 'memory-heap-growth',
        seed,
        iteration: -1,
        mutation: 'n/a',
        baseLabel: 'n/a',
        durationMs: 0,
        detail: `heap + external memory after GC grew ${mb(heapGrowth)} MB (limit ${mb(heapGrowthLimit)} MB), rising in ${Math.round(risingFraction * 100)}% of ${heapSamples.length} samples`,
      })
    } else if (heapGrowth > 8 * MB && risingFraction >= 0.9) {
      warnings.push(`heap after GC rose steadily by ${mb(heapGrowth)} MB over the run (under the ${mb(heapGrowthLimit)} MB limit)`)
    }
  }
  if (gc === null) warnings.push('gc() unavailable: heap samples are not taken after a full GC')
  if (options.onProgress !== undefined && done % progressEvery !== 0) options.onProgress(progress(startIteration + done - 1))

  const sorted = durations.slice(0, done).sort()
  let total = 0
  for (const d of sorted) total += d

  return {
    seed,
    iterationsRequested,
    iterations: done,
    stoppedEarly,
    elapsedMs: Math.round(elapsedMs),
    iterationsPerSecond: elapsedMs > 0 ? Math.round((done * 1000) / elapsedMs) : 0,
    corpusSize: entries.length,
    corpusBuildMs: Math.round(corpus.buildMs),
    skippedIdentical,
    failures: failureCount,
    failureList,
    failureGroups: [...groups.entries()].map(([signature, g]) => ({ signature, ...g })),
    maxDecryptMs: round3(maxDecryptMs),
    browserRuns,
    streamRuns,
    browserStreamRuns,
    maxStreamDecryptMs: round3(maxStreamDecryptMs),
    p50DecryptMs: round3(percentile(sorted, 0.5)),
    p99DecryptMs: round3(percentile(sorted, 0.99)),
    meanDecryptMs: round3(done > 0 ? total / done : 0),
    slowestIteration,
    rssStartMB: mb(rssStart),
    rssPeakMB: mb(rssPeak),
    rssEndMB: mb(endUsage.rss),
    heapStartMB: mb(heapStart),
    heapEndMB: mb(heapBytes(endUsage)),
    heapSamplesMB: heapSamples.map(mb),
    gcAvailable: gc !== null,
    errorsByCode,
    byMutation,
    corpusWarnings: corpus.warnings,
    warnings,
  }
}

/** One line per failure group plus the first stored failures, for logs. */
export function formatFailures(report: FuzzReport, limit = 10): string {
  const lines: string[] = []
  for (const group of report.failureGroups) {
    lines.push(`  [${group.count}x] ${group.signature}  (first: iteration ${group.firstIteration}, ${group.firstMutation})`)
  }
  for (const f of report.failureList.slice(0, limit)) {
    lines.push(
      `  - ${f.kind} seed=${f.seed} iteration=${f.iteration} base=${f.baseLabel} mutation="${f.mutation}" ${f.durationMs.toFixed(1)}ms: ${f.detail}`,
    )
  }
  return lines.join('\n')
}

/** The final summary line (stable keys, one line). */
export function summaryLine(report: FuzzReport): string {
  return (
    `FUZZ SUMMARY seed=${report.seed} iterations=${report.iterations} failures=${report.failures} ` +
    `maxDecryptMs=${report.maxDecryptMs} p99DecryptMs=${report.p99DecryptMs} ` +
    `browserRuns=${report.browserRuns} streamRuns=${report.streamRuns} browserStreamRuns=${report.browserStreamRuns} maxStreamDecryptMs=${report.maxStreamDecryptMs} ` +
    `rssStartMB=${report.rssStartMB} rssPeakMB=${report.rssPeakMB} ` +
    `itPerSec=${report.iterationsPerSecond} elapsedMs=${report.elapsedMs} ` +
    `errorsByCode=${JSON.stringify(report.errorsByCode)}`
  )
}
