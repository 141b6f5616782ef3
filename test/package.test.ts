// The package as npm publishes it. A copy of the project is packed with `npm pack` (its prepack script builds
// dist/ with tsup), the tarball is unpacked into a consumer folder as node_modules/kms-envelope, and the
// consumer then requires it, imports it, runs its command and type-checks against it under each
// moduleResolution TypeScript applications use. The rest of the suite tests src/; this tests what users get.
import { execFile, spawn, type ChildProcess } from 'node:child_process'
import { generateKeyPairSync } from 'node:crypto'
import { existsSync, readFileSync, statSync } from 'node:fs'
import { cp, mkdir, mkdtemp, readdir, readFile, rename, rm, symlink, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { createRequire } from 'node:module'
import { join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { promisify } from 'node:util'
import { createContext, runInContext, type Context } from 'node:vm'
import { GetItemCommand } from '@aws-sdk/client-dynamodb'
import { build } from 'esbuild'
import { build as viteBuild } from 'vite'
import webpack from 'webpack'
import ts from 'typescript'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ALGORITHM_SUITE_IDS, decrypt, defaultKmsClientSupplier, KmsKeyring, KmsRsaKeyring, RawAesKeyring } from '../src/index.js'
import { DynamoDbItemEncryptor, type DynamoDbItemEncryptorConfig, type Item } from '../src/dynamodb/index.js'
import { startKmsEmulator } from '../src/testing/index.js'
import { startDynalite, type LocalDynamoDb } from './support/dynalite.js'
import { encryptOnlyApplications, initialLoad, INITIAL_LOAD_BUDGET, NOT_FOR_ENCRYPT_ONLY } from './helpers/browser-size.js'
import { CHILD_TIMEOUT } from './helpers/fixtures.js'
import { katKms, KMS_RSA_KAT } from './helpers/kms-rsa-kat.js'
import { freePort } from './helpers/webdriver.js'

const run = promisify(execFile)
const ROOT = fileURLToPath(new URL('..', import.meta.url))
/**
 * Bun's or Deno's binary for this platform, from the package their npm package installs for it (bun's install
 * script moves its binary into the bun package itself).
 */
function runtimeBinary(runtime: 'bun' | 'deno'): string {
  const arch = { x64: 'x64', arm64: runtime === 'bun' ? 'aarch64' : 'arm64' }[process.arch as 'x64' | 'arm64']
  const platform = `${process.platform}-${arch}${runtime === 'deno' && process.platform === 'linux' ? '-glibc' : ''}`
  const modules = join(ROOT, 'node_modules')
  const candidates = runtime === 'bun' ? [`@oven/bun-${platform}/bin/bun`, 'bun/bin/bun.exe'] : [`@deno/${platform}/deno`]
  // The bun package holds a small placeholder until its install script has put the binary there.
  const binary = candidates.map((path) => join(modules, path)).find((path) => existsSync(path) && statSync(path).size > 1 << 20)
  if (binary === undefined) throw new Error(`No ${runtime} binary for ${process.platform} ${process.arch} in node_modules (${candidates.join(', ')}): run npm install.`)
  return binary
}

/** Cloudflare's Workers runtime, from its npm package (a binary for this platform). */
const workerdBinary = (createRequire(import.meta.url)('workerd') as { default: string }).default
const FIXTURES = fileURLToPath(new URL('./fixtures/package/', import.meta.url))
// What the package is built from; anything else in the project must not be needed to build it.
const BUILD_INPUTS = ['package.json', 'tsconfig.json', 'tsup.config.ts', 'README.md', 'CHANGELOG.md', 'LICENSE', 'src']
// The consumers' other packages, linked from this project's install: kms-envelope's dependencies and
// TypeScript with Node's types; the first consumer also has every optional peer dependency (and theirs) and
// @aws-sdk/lib-dynamodb, which a README example uses; the second only @aws-sdk/client-dynamodb.
const CONSUMER_PACKAGES = ['@noble', 'lru-cache', '@smithy', '@types', 'typescript']
// The README's TypeScript examples, each a module of its own (ESM: they use top-level await), named by line.
const README = readFileSync(join(ROOT, 'README.md'), 'utf8')
const README_EXAMPLES = [...README.matchAll(/^```ts\n([\s\S]*?)^```/gm)].map((match) => ({
  file: `readme-line-${README.slice(0, match.index).split('\n').length}.mts`,
  code: match[1]!,
}))

let work: string
let consumer: string
let itemsConsumer: string
let packedFiles: string[]
let manifest: Record<string, unknown>

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'kms-envelope-package-'))
  const project = join(work, 'project')
  await mkdir(project)
  for (const input of BUILD_INPUTS) await cp(join(ROOT, input), join(project, input), { recursive: true })
  await symlink(join(ROOT, 'node_modules'), join(project, 'node_modules'), 'dir')
  // No dist/ in the copy: what the tarball holds, prepack built.
  const { stdout } = await run('npm', ['pack', '--json', '--pack-destination', work], { cwd: project, maxBuffer: 16 << 20 })
  // The prepack build may print before npm's JSON, which starts with a line of its own: "[".
  const [packed] = JSON.parse(stdout.slice(stdout.search(/^\[$/m))) as { filename: string; files: { path: string }[] }[]
  packedFiles = packed!.files.map((file) => file.path)

  const unpack = async (folder: string, linked: string[]): Promise<string> => {
    await mkdir(join(folder, 'node_modules', '@aws-sdk'), { recursive: true })
    await run('tar', ['-xzf', join(work, packed!.filename), '-C', join(folder, 'node_modules')])
    await rename(join(folder, 'node_modules', 'package'), join(folder, 'node_modules', 'kms-envelope'))
    for (const name of linked) await symlink(join(ROOT, 'node_modules', name), join(folder, 'node_modules', name), 'dir')
    await cp(FIXTURES, folder, { recursive: true })
    // This package.json makes .ts files CommonJS; their .mts copies are the same code as ESM.
    await writeFile(join(folder, 'package.json'), JSON.stringify({ name: 'consumer', private: true, type: 'commonjs' }))
    for (const file of ['uses', 'browser-only']) await cp(join(FIXTURES, `${file}.ts`), join(folder, `${file}.mts`))
    for (const { file, code } of README_EXAMPLES) await writeFile(join(folder, file), code)
    return folder
  }
  const awsPackages = ['client-kms', 'client-dynamodb', 'util-dynamodb', 'lib-dynamodb'].map((name) => `@aws-sdk/${name}`)
  consumer = await unpack(join(work, 'consumer'), [...CONSUMER_PACKAGES, ...awsPackages])
  itemsConsumer = await unpack(join(work, 'items-consumer'), [...CONSUMER_PACKAGES, '@aws-sdk/client-dynamodb'])
  manifest = (await import(join(consumer, 'node_modules', 'kms-envelope', 'package.json'), { with: { type: 'json' } })).default
}, 240_000)

afterAll(async () => {
  if (work !== undefined) await rm(work, { recursive: true, force: true })
})

/** Every file path an entry point of package.json names: main, module, types, typesVersions, bin, exports. */
function entryPointFiles(value: unknown): string[] {
  if (typeof value === 'string') return value.startsWith('./') || value.startsWith('dist/') ? [value.replace(/^\.\//, '')] : []
  if (value === null || typeof value !== 'object') return []
  return Object.values(value).flatMap(entryPointFiles)
}

/** Runs Jest on the consumer's test files that `testMatch` names; they write their summary to the file returned. */
async function runJest(testMatch: string[], summaryName: string): Promise<string> {
  const summaryFile = join(consumer, summaryName)
  const config = { rootDir: consumer, testMatch, transform: {}, watchman: false, cache: false }
  await run(process.execPath, [join(ROOT, 'node_modules', 'jest', 'bin', 'jest.js'), '--ci', '--config', JSON.stringify(config)], {
    cwd: consumer,
    timeout: 120_000,
    env: { ...process.env, SUMMARY_FILE: summaryFile },
  }).catch((error: { stderr?: string }) => {
    throw new Error(`Jest failed:\n${error.stderr}`)
  })
  return summaryFile
}

async function node(args: string[]): Promise<string> {
  const { stdout } = await run(process.execPath, args, { cwd: consumer, timeout: 60_000 })
  return stdout
}

/** The oldest Node version an `engines.node` range allows, for the forms packages use (">= 20.19.0", "20 || >=22"). */
function oldestNode(range: string): [number, number, number] {
  const oldest = range.split('||').map((part) => {
    const match = /^(?:>=\s*)?(\d+)(?:\.(\d+))?(?:\.(\d+))?$/.exec(part.trim())
    if (match === null) throw new Error(`engines.node ${JSON.stringify(range)}: no rule for ${JSON.stringify(part)}`)
    return [Number(match[1]), Number(match[2] ?? 0), Number(match[3] ?? 0)] as [number, number, number]
  })
  return oldest.sort((a, b) => a[0] - b[0] || a[1] - b[1] || a[2] - b[2])[0]!
}

describe('the packed package', () => {
  it("declares no Node version older than its dependencies' own (the @noble packages, ESM only, need require() of ESM: Node 20.19)", () => {
    const ours = oldestNode((manifest.engines as { node: string }).node)
    for (const name of Object.keys(manifest.dependencies as Record<string, string>)) {
      const range = (JSON.parse(readFileSync(join(consumer, 'node_modules', name, 'package.json'), 'utf8')) as { engines?: { node?: string } }).engines?.node
      if (range === undefined) continue
      const theirs = oldestNode(range)
      expect(theirs[0] * 1e6 + theirs[1] * 1e3 + theirs[2], `${name} needs Node ${range}; kms-envelope says ${JSON.stringify(manifest.engines)}`).toBeLessThanOrEqual(
        ours[0] * 1e6 + ours[1] * 1e3 + ours[2],
      )
    }
  })

  it('holds every file its entry points name, the licence, and nothing from the source tree', () => {
    const { main, module, types, typesVersions, bin, exports, browser, 'react-native': reactNative } = manifest
    // The browser field's replacements (its keys name entries above, or subpaths that are no files).
    const named = entryPointFiles([main, module, types, typesVersions, bin, exports, browser, reactNative])
    expect(named.length).toBeGreaterThan(15)
    for (const file of named) expect(packedFiles, `package.json names ${file}`).toContain(file)
    const besideDist = ['CHANGELOG.md', 'LICENSE', 'README.md', 'package.json']
    expect(packedFiles.filter((file) => !file.startsWith('dist/')).sort()).toEqual(besideDist)
  })

  it('its Node build holds no @noble module nor WebCrypto backend module (only the browser build has them), leaves no import() in its CommonJS files, and tells bytes only by isBytes', async () => {
    const dist = join(consumer, 'node_modules', 'kms-envelope', 'dist')
    const nodeFiles = packedFiles.filter((file) => /^dist\/(?!browser\/).*\.c?js$/.test(file))
    expect(nodeFiles.length).toBeGreaterThan(10)
    // Another realm's Uint8Array is no instance of this one's (see the other-realm test below): the one instanceof
    // of each format is isBytes's (src/is-bytes.ts), which reads the array's type when instanceof says no.
    const instanceChecks = { js: 0, cjs: 0 }
    // esbuild names each source module in a comment where its code starts.
    const modules = new Set<string>()
    for (const file of nodeFiles) {
      const code = await readFile(join(dist, '..', file), 'utf8')
      for (const [, module] of code.matchAll(/^\/\/ (src\/\S+\.ts)$/gm)) modules.add(module as string)
      expect(code.includes('@noble/'), file).toBe(false)
      if (file.endsWith('.cjs')) expect(/\bimport\(/.test(code), file).toBe(false)
      instanceChecks[file.endsWith('.cjs') ? 'cjs' : 'js'] += code.match(/instanceof Uint8Array\b/g)?.length ?? 0
    }
    expect(instanceChecks).toEqual({ js: 1, cjs: 1 })
    expect(modules).toContain('src/backend/node.ts')
    expect([...modules].filter((module) => /^src\/backend\/(webcrypto|noble)/.test(module))).toEqual([])
  })

  const expectedSummary = {
    rawAes: { plaintext: 'packed', suite: 0x0578 },
    large: [true, true, true],
    cache: { hits: 4, misses: 2 },
    streams: true,
    tampered: { envelopeError: true, authenticationError: true, code: 'SIGNATURE_INVALID' },
    kms: { plaintext: 'through kms', calls: 2 },
    dynamodb: { card: '4111', storedCardIsBinary: true },
  }

  it('works through require() in CommonJS, subpaths and optional peer dependencies included', async () => {
    expect(JSON.parse(await node(['consumer.cjs']))).toEqual(expectedSummary)
  })

  it("needs none of Node's globals that test environments such as Jest's jsdom one take away (setImmediate, Buffer, TextEncoder, TextDecoder)", async () => {
    // The Node build in such an environment: a jsdom setup that resolves packages with the node condition
    // (customExportConditions, a common workaround for other packages) loads it there.
    const script = `const { TextDecoder: NodeTextDecoder } = require('node:util')
      delete globalThis.setImmediate; delete globalThis.Buffer; delete globalThis.TextEncoder; delete globalThis.TextDecoder
      const { generateKeyPairSync } = require('node:crypto')
      const { Readable } = require('node:stream')
      const { decrypt, decryptNodeStream, encrypt, encryptNodeStream, RawAesKeyring, RawRsaKeyring } = require('kms-envelope')
      const { DynamoDbItemEncryptor } = require('kms-envelope/dynamodb')
      const text = (bytes) => new NodeTextDecoder().decode(bytes)
      ;(async () => {
        const aes = new RawAesKeyring({ keyNamespace: 'package', keyName: 'aes', wrappingKey: new Uint8Array(32).fill(7) })
        const signed = await encrypt(aes, 'signed') // 0x0578: a signing key from the pool, which refills on the next turn
        const pair = generateKeyPairSync('rsa', { modulusLength: 2048, publicKeyEncoding: { type: 'spki', format: 'pem' }, privateKeyEncoding: { type: 'pkcs8', format: 'pem' } })
        const rsa = new RawRsaKeyring({ keyNamespace: 'package', keyName: 'rsa', ...pair, padding: 'PKCS1' }) // implicit rejection
        const wrapped = await encrypt(rsa, 'pkcs1', { algorithmSuite: 0x0478 })
        const chunks = []
        for await (const chunk of Readable.from([new Uint8Array(70_000).fill(1)]).pipe(encryptNodeStream(aes)).pipe(decryptNodeStream(aes))) chunks.push(chunk.length)
        const notes = new DynamoDbItemEncryptor({ tableName: 'notes', partitionKeyName: 'pk', attributeActionsOnEncrypt: { pk: 'SIGN_ONLY', body: 'ENCRYPT_AND_SIGN' }, keyring: aes })
        const item = await notes.decryptItem(await notes.encryptItem({ pk: { S: 'n1' }, body: { S: 'item' } }))
        const missing = [typeof setImmediate, typeof Buffer, typeof TextEncoder, typeof TextDecoder]
        console.log(JSON.stringify([text((await decrypt(aes, signed.ciphertext)).plaintext), text((await decrypt(rsa, wrapped.ciphertext)).plaintext), chunks.reduce((a, b) => a + b, 0), item.body.S, missing]))
      })()`
    expect(JSON.parse(await node(['-e', script]))).toEqual(['signed', 'pkcs1', 70_000, 'item', Array(4).fill('undefined')])
  })

  it("takes Node's bytes where the global Uint8Array is another realm's, as in Vitest's jsdom environment, in both builds (fixtures/package/other-realm.mjs)", async () => {
    expect(JSON.parse(await node(['other-realm.mjs']))).toEqual({
      nodeBytesAreForeign: true,
      'Buffer plaintext and wrapping key': 'a Buffer',
      'TextEncoder plaintext': 'encoded text',
      'Buffer ciphertext': 'as read from a file',
      'async iterables of Buffers': 'in pieces',
      'Node streams': 'node streams',
      'RSA keys as DER Buffers': 'rsa',
      'KMS RSA public key as a DER Buffer': 1,
      'a custom keyring handing over Buffers': 'custom',
      'cached, twice': 'first, second',
      'DynamoDB binary attributes as Buffers': 'binary',
      'outputs are Uint8Arrays of the global': true,
      'browser build: Node bytes': 'page bytes, page bytes',
    })
  })

  it('works in a Jest test, whose module runtime allows neither import() nor (before Node 24.9) require() of an ES module', async () => {
    // The second file runs as React Native's Jest preset runs tests: conditions require and react-native.
    const summaryFile = await runJest(['**/jest-consumer.cjs', '**/jest-react-native.cjs'], 'jest-summary.json')
    expect(JSON.parse(await readFile(summaryFile, 'utf8'))).toEqual(expectedSummary)
    expect(JSON.parse(await readFile(`${summaryFile}.react-native`, 'utf8'))).toEqual({ opened: 'react native jest', nodeBuild: true })
  })

  it("works in Jest's jsdom environment (the browser build's CommonJS file), which lacks TextEncoder, Web Streams and crypto.subtle", async () => {
    // Jest loads a test environment from the project; this one is the test project's own.
    await symlink(join(ROOT, 'node_modules', 'jest-environment-jsdom'), join(consumer, 'node_modules', 'jest-environment-jsdom'), 'dir')
    const summaryFile = await runJest(['**/jest-jsdom.cjs'], 'jest-jsdom-summary.json')
    const { ciphertext, ...summary } = JSON.parse(await readFile(summaryFile, 'utf8')) as { ciphertext: string }
    expect(summary).toEqual({
      // What the environment lacks, which the CommonJS browser build takes from Node there.
      lacks: ['TextEncoder', 'TextDecoder', 'TransformStream', 'crypto.subtle'],
      resolved: 'dist/browser/cjs/index.cjs',
      opened: { [0x0578]: `suite ${0x0578}`, [0x0478]: `suite ${0x0478}`, [0x0346]: `suite ${0x0346}` },
      streamed: 5000,
      offline: ['aws-kms-rsa'],
      dynamodb: { resolved: 'dist/browser/cjs/dynamodb.cjs', read: 'from jsdom', refused: ['ITEM_AUTHENTICATION_FAILED', true] },
    })
    // What the test wrote, the Node build reads.
    const { plaintext } = await decrypt(new RawAesKeyring({ keyNamespace: 'package', keyName: 'aes', wrappingKey: new Uint8Array(32).fill(7) }), Buffer.from(ciphertext, 'base64'), {
      encryptionContext: { runner: 'jest-jsdom' },
    })
    expect(new TextDecoder().decode(plaintext)).toBe('from jsdom')
  })

  it('works through import in ESM; the browser entry on Node writes what the Node entry reads; both builds in one process work together', async () => {
    expect(JSON.parse(await node(['consumer.mjs']))).toEqual({
      ...expectedSummary,
      browser: 'browser entry',
      bundled: 'one file',
      bothBuilds: 'both builds',
      instanceofAcrossBuilds: [true, true, true, true, true, true, true],
    })
  })

  it('the <script> build runs on WebCrypto alone, its errors named after their classes though it is minified', async () => {
    const script = await readFile(join(consumer, 'node_modules', 'kms-envelope', 'dist', 'browser', 'kms-envelope.iife.js'), 'utf8')
    // A realm with nothing of Node's: the language's globals plus what a page has that the build uses.
    const page = createContext({ crypto: globalThis.crypto, CryptoKey, TextEncoder, TextDecoder, atob, btoa, setTimeout, clearTimeout })
    runInContext(script, page)
    const outcome = (await runInContext(
      `(async () => {
        const { encrypt, decrypt, RawAesKeyring, ConfigurationError } = KmsEnvelope
        const keyring = new RawAesKeyring({ keyNamespace: 'package', keyName: 'aes', wrappingKey: new Uint8Array(32).fill(7) })
        const { ciphertext } = await encrypt(keyring, 'script tag')
        const opened = new TextDecoder().decode((await decrypt(keyring, ciphertext)).plaintext)
        const failure = await decrypt(keyring, ciphertext.subarray(0, 40)).catch((error) => String(error))
        return { opened, failure, made: String(new ConfigurationError('made here')) }
      })()`,
      page,
    )) as Record<string, string>
    expect(outcome).toEqual({
      opened: 'script tag',
      failure: expect.stringMatching(/^TruncatedMessageError: /),
      made: 'ConfigurationError: made here',
    })
  })

  it.each([
    ['WebCrypto', true],
    ['@noble, without crypto.subtle', false],
  ])("the <script> build in a realm whose WebCrypto, CryptoKeys and Buffers are another realm's (a test runner's vm-pool page realm), on %s", async (_name, subtle) => {
    // Vitest's vm pools run jsdom or happy-dom in a vm context over Node's own WebCrypto and Buffers: the context has no
    // CryptoKey global of the keys' realm, and its Uint8Array is not theirs. Key checks by instanceof failed every
    // signing suite; a Buffer, copied with slice() (which keeps it a Buffer of the other realm), failed @noble's checks.
    const script = await readFile(join(consumer, 'node_modules', 'kms-envelope', 'dist', 'browser', 'kms-envelope.iife.js'), 'utf8')
    const crypto = subtle ? globalThis.crypto : { getRandomValues: globalThis.crypto.getRandomValues.bind(globalThis.crypto) }
    const realm = createContext({ crypto, TextEncoder, TextDecoder, atob, btoa, setTimeout, clearTimeout, Buffer })
    runInContext(script, realm)
    const outcome = (await runInContext(
      `(async () => {
        const { encrypt, decrypt, RawAesKeyring } = KmsEnvelope
        const keyring = new RawAesKeyring({ keyNamespace: 'package', keyName: 'aes', wrappingKey: Buffer.alloc(32, 7) })
        const opened = []
        for (const algorithmSuite of [0x0578, 0x0478, 0x0346]) {
          const commitmentPolicy = algorithmSuite === 0x0346 ? 'FORBID_ENCRYPT_ALLOW_DECRYPT' : undefined
          const { ciphertext } = await encrypt(keyring, Buffer.from('bytes of another realm'), { algorithmSuite, commitmentPolicy })
          opened.push(new TextDecoder().decode((await decrypt(keyring, Buffer.from(ciphertext), { commitmentPolicy: 'REQUIRE_ENCRYPT_ALLOW_DECRYPT' })).plaintext))
        }
        return { opened, foreign: !(Buffer.alloc(1) instanceof Uint8Array) }
      })()`,
      realm,
    )) as { opened: string[]; foreign: boolean }
    expect(outcome).toEqual({ opened: Array(3).fill('bytes of another realm'), foreign: true })
  })

  // A React Native application bundled as Metro resolves packages: the conditions react-native, import and require
  // (no browser), and the react-native field where a bundler reads no exports.
  const reactNativeBundle = async (contents = "export * from 'kms-envelope'"): Promise<string> => {
    const { outputFiles } = await build({
      stdin: { contents, resolveDir: consumer },
      bundle: true,
      write: false,
      format: 'iife',
      globalName: 'KmsEnvelope',
      platform: 'neutral',
      conditions: ['react-native', 'import', 'require'],
      mainFields: ['react-native', 'main'],
      external: ['@aws-sdk/client-kms', '@aws-sdk/util-dynamodb'],
      logLevel: 'silent',
    })
    return outputFiles[0]!.text
  }

  /** A browser as these tests see one: WebCrypto and the encoding classes; no process, no require. */
  const browserRealm = () => createContext({ crypto: globalThis.crypto, TextEncoder, TextDecoder, atob, btoa, setTimeout, clearTimeout })

  /** A realm as engines without WebCrypto give one (React Native's Hermes): getRandomValues only, no crypto.subtle. */
  const realmWithoutSubtle = () => {
    const engine = createContext({ crypto: { getRandomValues: globalThis.crypto.getRandomValues.bind(globalThis.crypto) }, TextDecoder, atob, btoa, setTimeout, clearTimeout })
    // The engine's own TextEncoder, whose bytes are its own Uint8Arrays (Node's would be of another realm); and, as
    // in Hermes, no FinalizationRegistry.
    runInContext(
      `globalThis.TextEncoder = class { encode(text = '') { return Uint8Array.from(unescape(encodeURIComponent(text)), (char) => char.charCodeAt(0)) } }
      delete globalThis.FinalizationRegistry`,
      engine,
    )
    return engine
  }

  it('a React Native application gets the browser build (exports condition and field react-native); its Jest tests, which require(), the Node build', async () => {
    expect(manifest['react-native']).toBe('./dist/browser/index.js')
    expect(packedFiles).toContain('dist/browser/index.js')
    const bundle = await reactNativeBundle()
    expect(bundle).not.toMatch(/(?:from|import\(|require\()\s*["'](?:node:)?(?:crypto|stream|buffer)["']/)
    expect(bundle).toMatch(/crypto\.subtle/)
    // Metro asserts both import and require: each entry point's react-native branch gives it the ES modules (for
    // kms-envelope/browser it got the CommonJS file, which Metro bundles whole), and Jest, which asserts no import,
    // goes past it.
    for (const subpath of ['', '/browser', '/dynamodb']) {
      const { metafile } = await build({
        stdin: { contents: `export * from 'kms-envelope${subpath}'`, resolveDir: consumer },
        bundle: true,
        write: false,
        metafile: true,
        platform: 'neutral',
        conditions: ['react-native', 'import', 'require'],
        mainFields: ['react-native', 'main'],
        external: ['@aws-sdk/client-kms', '@aws-sdk/util-dynamodb', '@noble/*', 'lru-cache'],
        logLevel: 'silent',
      })
      const files = Object.keys(metafile.inputs).flatMap((path) => /node_modules\/kms-envelope\/(.*)$/.exec(path)?.[1] ?? [])
      expect(files.filter((file) => !/^dist\/browser\/(?!cjs\/).*\.js$/.test(file)), `kms-envelope${subpath}`).toEqual([])
    }
    // Hermes has no Unicode property escapes: one regular expression with \p{…} would fail the whole bundle's parse.
    for (const file of packedFiles.filter((path) => path.startsWith('dist/browser/') && path.endsWith('.js'))) {
      const code = await readFile(join(consumer, 'node_modules', 'kms-envelope', file), 'utf8')
      expect(/\\[pP]\{/.test(code), file).toBe(false)
    }
  })

  it.each([
    ['the <script> build', () => readFile(join(consumer, 'node_modules', 'kms-envelope', 'dist', 'browser', 'kms-envelope.iife.js'), 'utf8')],
    ["a React Native application's bundle", reactNativeBundle],
  ])('%s runs where there is no crypto.subtle, only getRandomValues (plain HTTP, engines such as React Native\'s Hermes)', async (_name, load) => {
    const script = await load()
    const engine = realmWithoutSubtle()
    runInContext(script, engine)
    const outcome = (await runInContext(
      `(async () => {
        const { encrypt, decrypt, KmsRsaKeyring, RawAesKeyring } = KmsEnvelope
        const aes = new RawAesKeyring({ keyNamespace: 'package', keyName: 'aes', wrappingKey: new Uint8Array(32).fill(7) })
        const signed = await encrypt(aes, 'no subtle') // 0x0578: HKDF, AES-GCM and ECDSA P-384 in JavaScript
        const opened = await decrypt(aes, signed.ciphertext)
        const kms = new KmsRsaKeyring({ keyId: ${JSON.stringify(KMS_RSA_KAT.keyArn)}, encryptionAlgorithm: 'RSAES_OAEP_SHA_256', publicKey: ${JSON.stringify(KMS_RSA_KAT.publicKeyPem)} })
        const offline = await encrypt(kms, 'offline', { encryptionContext: { purpose: 'upload' } })
        return { subtle: typeof crypto.subtle, opened: new TextDecoder().decode(opened.plaintext), suite: opened.header.algorithmSuiteId, signed: signed.ciphertext, offline: offline.ciphertext }
      })()`,
      engine,
    )) as { subtle: string; opened: string; suite: number; signed: Uint8Array; offline: Uint8Array }
    expect([outcome.subtle, outcome.opened, outcome.suite]).toEqual(['undefined', 'no subtle', 0x0578])
    // The messages it wrote, read by the Node build: the signed one with the raw AES key, the KMS RSA one through KMS.
    const aes = new RawAesKeyring({ keyNamespace: 'package', keyName: 'aes', wrappingKey: new Uint8Array(32).fill(7) })
    expect(new TextDecoder().decode((await decrypt(aes, new Uint8Array(outcome.signed))).plaintext)).toBe('no subtle')
    const kms = katKms()
    const keyring = new KmsRsaKeyring({ keyId: KMS_RSA_KAT.keyArn, encryptionAlgorithm: 'RSAES_OAEP_SHA_256', kmsClient: kms.client })
    const { plaintext } = await decrypt(keyring, new Uint8Array(outcome.offline), { encryptionContext: { purpose: 'upload' } })
    expect([new TextDecoder().decode(plaintext), kms.calls.length]).toEqual(['offline', 1])
  })

  /**
   * Writes an item in `engine`, with the DynamoDbItemEncryptor and RawAesKeyring of the bundle run there (global
   * KmsEnvelope); checks there that a changed byte is refused, and here that the Node build reads the item.
   * Returns what the realm says `probe` is.
   */
  const itemsInRealm = async (engine: Context, probe: string, text: string): Promise<string> => {
    const config = { tableName: 'notes', partitionKeyName: 'pk', attributeActionsOnEncrypt: { pk: 'SIGN_ONLY', body: 'ENCRYPT_AND_SIGN' } }
    const outcome = (await runInContext(
      `(async () => {
        const keyring = new KmsEnvelope.RawAesKeyring({ keyNamespace: 'package', keyName: 'aes', wrappingKey: new Uint8Array(32).fill(7) })
        const notes = new KmsEnvelope.DynamoDbItemEncryptor({ ...${JSON.stringify(config)}, keyring })
        const stored = await notes.encryptItem({ pk: { S: 'p1' }, body: { S: ${JSON.stringify(text)} } })
        const body = stored.body.B.slice()
        body[body.length - 1] ^= 1
        const changed = await notes.decryptItem({ ...stored, body: { B: body } }).then(() => 'decrypted', (error) => error.code)
        return { probe: typeof ${probe}, read: (await notes.decryptItem(stored)).body.S, changed, stored }
      })()`,
      engine,
    )) as { probe: string; read: string; changed: string; stored: Record<string, { S?: string; B?: Uint8Array }> }
    expect([outcome.read, outcome.changed]).toEqual([text, 'ITEM_AUTHENTICATION_FAILED'])
    const stored = Object.fromEntries(Object.entries(outcome.stored).map(([name, value]) => [name, value.B === undefined ? value : { B: new Uint8Array(value.B) }])) as Item
    const notes = new DynamoDbItemEncryptor({ ...config, keyring: new RawAesKeyring({ keyNamespace: 'package', keyName: 'aes', wrappingKey: new Uint8Array(32).fill(7) }) } as DynamoDbItemEncryptorConfig)
    expect(await notes.decryptItem(stored)).toEqual({ pk: { S: 'p1' }, body: { S: text } })
    return outcome.probe
  }

  it("kms-envelope/dynamodb in a React Native application: its browser build, which runs with no crypto.subtle (Hermes); Node reads the items", async () => {
    // Metro resolves with react-native, import and require: before there was a browser build, the Node one, which
    // imports node:crypto, and which no React Native bundle can hold. A TextEncoder of encode() only, as the realm's,
    // is what polyfills such as fast-text-encoding give.
    const bundle = await reactNativeBundle("export * from 'kms-envelope/dynamodb'\nexport { RawAesKeyring } from 'kms-envelope'")
    expect(bundle).not.toMatch(/(?:from|import\(|require\()\s*["'](?:node:)?(?:crypto|stream|buffer)["']/)
    const engine = realmWithoutSubtle()
    runInContext(bundle, engine)
    expect(await itemsInRealm(engine, 'crypto.subtle', 'from Hermes')).toBe('undefined')
  })

  it("kms-envelope/dynamodb require()d by browser code (webpack's or esbuild's browser build of CommonJS): the browser build's CommonJS file, which runs on WebCrypto alone", async () => {
    // A bundler resolves require() in browser code with the conditions browser and require, as Jest's jsdom
    // environment does. Before there was a CommonJS browser file of it, both got the Node build, whose node:crypto
    // no browser bundle can hold.
    const { outputFiles, metafile } = await build({
      stdin: {
        contents: "const { DynamoDbItemEncryptor } = require('kms-envelope/dynamodb')\nconst { RawAesKeyring } = require('kms-envelope')\nmodule.exports = { DynamoDbItemEncryptor, RawAesKeyring }",
        resolveDir: consumer,
        loader: 'js',
      },
      bundle: true,
      write: false,
      format: 'iife',
      globalName: 'KmsEnvelope',
      platform: 'browser',
      external: ['@aws-sdk/client-kms', '@aws-sdk/util-dynamodb'],
      metafile: true,
      logLevel: 'silent',
    })
    const packageFiles = Object.keys(metafile.inputs).flatMap((path) => path.match(/node_modules\/kms-envelope\/(.*)$/)?.[1] ?? [])
    expect(packageFiles).toContain('dist/browser/cjs/dynamodb.cjs')
    expect(packageFiles).toContain('dist/browser/cjs/index.cjs')
    expect(packageFiles.filter((file) => !/^dist\/browser\/cjs\/[\w.-]+\.cjs$/.test(file))).toEqual([])
    // One core between the two: each of its classes once in the bundle (the two files each held one before).
    const bundle = outputFiles[0]!.text
    for (const name of ['EnvelopeError', 'RawAesKeyring', 'DefaultMaterialsManager']) expect(bundle.match(new RegExp(`\\b(?:class ${name}\\d*\\b|${name}\\d* = class\\b)`, 'g')), name).toHaveLength(1)
    // Nor may they import(): Jest's vm contexts refuse it, as for the Node build's CommonJS files.
    for (const file of packageFiles) expect(/\bimport\(/.test(await readFile(join(consumer, 'node_modules', 'kms-envelope', file), 'utf8')), file).toBe(false)
    const engine = browserRealm()
    runInContext(bundle, engine)
    expect(await itemsInRealm(engine, 'process', 'from a CommonJS bundle')).toBe('undefined')
  })

  /**
   * A page that imports kms-envelope/browser, for the bundler tests: raw AES round trips, offline KmsRsaKeyring, a KMS
   * call without the SDK, a malformed message. `globalThis.run(spki)` gives what `browserPageOutcome` expects.
   */
  const BROWSER_PAGE = `import { encrypt, decrypt, KmsKeyring, KmsRsaKeyring, RawAesKeyring } from 'kms-envelope/browser'
    globalThis.run = async (spki) => {
      const keyring = new RawAesKeyring({ keyNamespace: 'bundled', keyName: 'aes', wrappingKey: new Uint8Array(32).fill(7) })
      const opened = []
      for (const algorithmSuite of [0x0578, 0x0478]) {
        const { ciphertext } = await encrypt(keyring, 'bundled', { algorithmSuite })
        opened.push(new TextDecoder().decode((await decrypt(keyring, ciphertext)).plaintext))
      }
      const keyId = 'arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab'
      const offline = new KmsRsaKeyring({ keyId, encryptionAlgorithm: 'RSAES_OAEP_SHA_256', publicKey: spki })
      const { header } = await encrypt(offline, 'offline')
      const kms = await encrypt(new KmsKeyring({ generatorKeyId: keyId }), 'x').catch((error) => [error.code, error.cause.code, error.cause.message])
      const refused = await decrypt(keyring, new Uint8Array(40)).catch((error) => [error.code, error.name])
      return { opened, wrappedBy: header.encryptedDataKeys.map((key) => key.providerId), kms, refused }
    }`

  const browserPageOutcome = () => ({
    opened: ['bundled', 'bundled'],
    wrappedBy: ['aws-kms-rsa'],
    // A KMS call: the keyring's failure, whose cause says to install the SDK.
    kms: ['KEYRING_FAILURE', 'INVALID_CONFIGURATION', expect.stringMatching(/could not load @aws-sdk\/client-kms .*`npm install` it/)],
    // Minified: the class names are the bundler's, so the error reads EnvelopeError.
    refused: ['MALFORMED_MESSAGE', 'EnvelopeError'],
  })

  /** Runs a page's bundle in a browser realm; what its `run(spki)` gives (an RSA public key's), as plain data. */
  const runPage = async (code: string): Promise<unknown> => {
    const realm = browserRealm()
    runInContext(code, realm)
    const spki = generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey.export({ type: 'spki', format: 'der' })
    return JSON.parse(JSON.stringify(await runInContext('run', realm)(new Uint8Array(spki))))
  }

  it("bundled by webpack 5 for a browser, without the AWS SDK and with resolve.fallback as the README says: ES modules and require() both build, and run on WebCrypto alone", async () => {
    // The consumer without @aws-sdk/client-kms or @aws-sdk/util-dynamodb, as a page that encrypts offline is built.
    const entries = {
      esm: BROWSER_PAGE,
      cjs: `const { RawAesKeyring } = require('kms-envelope')
        const { DynamoDbItemEncryptor } = require('kms-envelope/dynamodb')
        globalThis.run = async () => {
          const keyring = new RawAesKeyring({ keyNamespace: 'webpack', keyName: 'aes', wrappingKey: new Uint8Array(32).fill(7) })
          const notes = new DynamoDbItemEncryptor({ tableName: 'notes', partitionKeyName: 'pk', attributeActionsOnEncrypt: { pk: 'SIGN_ONLY', body: 'ENCRYPT_AND_SIGN' }, keyring })
          const stored = await notes.encryptItem({ pk: { S: 'p1' }, body: { S: 'webpack' } })
          const read = (await notes.decryptItem(stored)).body.S
          const changed = await notes.decryptItem({ ...stored, body: { B: new Uint8Array(40) } }).catch((error) => [error.code, error.name])
          const object = await notes.encryptObject({ pk: 'p1', body: 'webpack' }).catch((error) => [error.code, error.message])
          return { read, changed, object }
        }`,
    }
    await writeFile(join(itemsConsumer, 'webpack-esm.mjs'), entries.esm)
    await writeFile(join(itemsConsumer, 'webpack-cjs.js'), entries.cjs)
    const bundle = (fallback: Record<string, false>) =>
      new Promise<{ errors: string[]; outputs: Record<string, string> }>((resolve, reject) => {
        const outputPath = join(itemsConsumer, `webpack-out-${Object.keys(fallback).length}`)
        webpack(
          {
            context: itemsConsumer,
            mode: 'production',
            target: 'web',
            entry: { esm: './webpack-esm.mjs', cjs: './webpack-cjs.js' },
            // Chunks loaded on first use go into each entry's file, so that a realm without a document can run it.
            output: { path: outputPath, asyncChunks: false },
            resolve: { fallback },
            performance: { hints: false },
          },
          (error, stats) => {
            if (error || stats === undefined) return reject(error ?? new Error('webpack gave no stats'))
            const errors = stats.toJson({ all: false, errors: true }).errors?.map((entry) => entry.message) ?? []
            if (errors.length > 0) return resolve({ errors, outputs: {} })
            resolve({ errors, outputs: { esm: readFileSync(join(outputPath, 'esm.js'), 'utf8'), cjs: readFileSync(join(outputPath, 'cjs.js'), 'utf8') } })
          },
        )
      })
    // Without the fallback, webpack stops at the KMS client's import, which the README says.
    const missing = await bundle({})
    expect(missing.errors.join('\n')).toMatch(/Can't resolve '@aws-sdk\/client-kms'/)
    const { errors, outputs } = await bundle({ '@aws-sdk/client-kms': false, '@aws-sdk/util-dynamodb': false })
    expect(errors).toEqual([])
    const results: Record<string, unknown> = {}
    for (const [name, code] of Object.entries(outputs)) results[name] = await runPage(code)
    expect(results).toMatchObject({
      esm: browserPageOutcome(),
      cjs: {
        read: 'webpack',
        changed: ['ITEM_AUTHENTICATION_FAILED', 'ItemAuthenticationError'],
        object: ['INVALID_CONFIGURATION', expect.stringMatching(/could not load @aws-sdk\/util-dynamodb .*`npm install` it/)],
      },
    })
  }, 120_000)

  it('bundled by Vite (Rolldown) for a browser without the AWS SDK, which it replaces with a module that throws: builds, and runs on WebCrypto alone', async () => {
    // As the README says: Vite builds a page that never calls KMS without the SDK installed. One file (the library
    // build's IIFE), so that a realm without a document can run it; the resolution is that of a page's build.
    const entry = join(itemsConsumer, 'vite-page.mjs')
    await writeFile(entry, BROWSER_PAGE)
    const output = await viteBuild({
      root: itemsConsumer,
      configFile: false,
      logLevel: 'silent',
      build: { write: false, lib: { entry, formats: ['iife'], name: 'Page' } },
    })
    const { output: files } = (Array.isArray(output) ? output[0] : output) as { output: { type: string; code?: string }[] }
    const chunks = files.flatMap((file) => (file.type === 'chunk' && file.code !== undefined ? [file.code] : []))
    expect(chunks).toHaveLength(1)
    expect(await runPage(chunks[0]!)).toMatchObject(browserPageOutcome())
  }, 120_000)

  it('a browser bundler that reads no package exports (Parcel by default, webpack 4, Browserify) gets the browser build of kms-envelope, by the browser field', async () => {
    // Such a resolver takes the package's "module" or "main" field, then the "browser" field's replacements. Before
    // that field, it got the Node build, whose node:crypto it polyfills or cannot bundle.
    // webpack's resolver, set up as those tools resolve (Parcel's own has the same rules).
    const resolve = (request: string, mainFields: string[]) => {
      const compiler = webpack({ context: itemsConsumer, target: 'web', resolve: { exportsFields: [], aliasFields: ['browser'], mainFields } })
      const resolver = compiler.resolverFactory.get('normal', { dependencyType: 'esm' })
      return new Promise<string>((done, fail) =>
        resolver.resolve({}, itemsConsumer, request, {}, (error, result) => (error ? fail(error) : done(String(result).replace(/^.*node_modules\/kms-envelope\//, '')))),
      )
    }
    expect({ bundlers: await resolve('kms-envelope', ['browser', 'module', 'main']), browserify: await resolve('kms-envelope', ['browser', 'main']) }).toEqual({
      bundlers: 'dist/browser/index.js',
      browserify: 'dist/browser/cjs/index.cjs',
    })
    // Only the Node build's entry files: Metro (React Native), which reads the field beside package exports, applies a
    // subpath's replacement first and then warns, on every build, that the file it got is not exported.
    expect(Object.keys(manifest.browser as object)).toEqual(['./dist/index.js', './dist/index.cjs'])
  })

  it("a Next.js Edge route's bundle runs where Node's APIs are stubs that throw when called, as that runtime has them", async () => {
    // Next.js bundles an Edge route (and middleware) with the conditions edge-light, worker and browser, minified,
    // and runs it in a realm whose setImmediate, MessageChannel and the like are functions that throw "A Node.js API
    // is used (setImmediate) which is not supported in the Edge Runtime": typeof says "function", a call fails.
    const { outputFiles } = await build({
      stdin: { contents: "export * from 'kms-envelope'", resolveDir: consumer },
      bundle: true,
      write: false,
      minify: true,
      format: 'iife',
      globalName: 'KmsEnvelope',
      platform: 'neutral',
      conditions: ['edge-light', 'worker', 'browser', 'import', 'module', 'default'],
      mainFields: ['browser', 'module', 'main'],
      external: ['@aws-sdk/client-kms'],
      logLevel: 'silent',
    })
    const edge = createContext({ crypto: globalThis.crypto, CryptoKey, TextEncoder, TextDecoder, atob, btoa, setTimeout, clearTimeout })
    runInContext(
      `for (const name of ['setImmediate', 'clearImmediate', 'BroadcastChannel', 'MessageChannel', 'MessageEvent', 'MessagePort',
        'CompressionStream', 'DecompressionStream', 'ByteLengthQueuingStrategy', 'CountQueuingStrategy']) {
        Object.defineProperty(globalThis, name, {
          get: () => function () { throw new Error('A Node.js API is used (' + name + ') which is not supported in the Edge Runtime.') },
        })
      }`,
      edge,
    )
    runInContext(outputFiles[0]!.text, edge)
    const outcome = (await runInContext(
      `(async () => {
        const { encrypt, decrypt, RawAesKeyring } = KmsEnvelope
        const keyring = new RawAesKeyring({ keyNamespace: 'package', keyName: 'aes', wrappingKey: new Uint8Array(32).fill(7) })
        const opened = []
        for (const algorithmSuite of [0x0578, 0x0478]) {
          const { ciphertext } = await encrypt(keyring, 'edge route', { algorithmSuite })
          opened.push(new TextDecoder().decode((await decrypt(keyring, ciphertext)).plaintext))
        }
        const { ciphertext } = await encrypt(keyring, 'edge route')
        const failure = await decrypt(keyring, ciphertext.subarray(0, 40)).then(() => 'none', (error) => [error.code, String(error).split(':')[0]])
        // The minifier renamed the classes: a decrypt failure still names its keyrings, and reads EnvelopeError
        // rather than the minifier's name.
        const wrongKey = new RawAesKeyring({ keyNamespace: 'package', keyName: 'aes', wrappingKey: new Uint8Array(32).fill(8) })
        const failed = await decrypt(new KmsEnvelope.MultiKeyring({ children: [wrongKey] }), ciphertext).catch((error) => [error.name, ...error.failures.map((entry) => entry.keyring)])
        return { opened, failure, failed, classNames: [RawAesKeyring.name, KmsEnvelope.NoDecryptableKeyError.name] }
      })()`,
      edge,
    )) as { opened: string[]; failure: string[]; failed: string[]; classNames: string[] }
    expect(outcome).toMatchObject({ opened: ['edge route', 'edge route'], failure: ['TRUNCATED_MESSAGE', 'EnvelopeError'], failed: ['EnvelopeError', 'RawAesKeyring'] })
    expect(outcome.classNames).not.toContain('RawAesKeyring')
    expect(outcome.classNames).not.toContain('NoDecryptableKeyError')
  })

  it.each(['bun', 'deno'] as const)('runs under %s, on its Node APIs: suites, Node streams, KMS through the emulator, DynamoDB items (fixtures/package/runtimes.mjs)', async (runtime) => {
    const kms = await startKmsEmulator({ regions: ['us-east-1'] })
    try {
      const key = kms.createKey({ region: 'us-east-1' })
      const args = runtime === 'deno' ? ['run', '--allow-all', 'runtimes.mjs'] : ['runtimes.mjs']
      const env = { ...process.env, KMS_ENDPOINT: kms.endpoint, KMS_KEY_ARN: key.arn, DENO_NO_UPDATE_CHECK: '1', NO_COLOR: '1' }
      const { stdout } = await run(runtimeBinary(runtime), args, { cwd: consumer, timeout: 60_000, env })
      const suites = Object.fromEntries([0x0578, 0x0478, 0x0378, 0x0178, 0x0346, 0x0014].map((id) => [id, `suite ${id}`]))
      // Deno's node:crypto has no AES-192-GCM: the Node build says so (the browser build has it, on WebCrypto).
      if (runtime === 'deno') suites[0x0346] = 'UNSUPPORTED_OPERATION'
      const items = Object.fromEntries([0x6700, 0x6701].map((id) => [id, [`suite ${id}`, 'ITEM_AUTHENTICATION_FAILED']]))
      expect(JSON.parse(stdout)).toEqual({ suites, streamed: 3 << 20, refused: 'FRAME_AUTHENTICATION_FAILED', throughKms: 'through KMS', items })
    } finally {
      await kms.close()
    }
  })

  it('a Cloudflare Worker, bundled as Wrangler bundles one, runs in workerd: made at global scope, every suite, streams, KMS (fixtures/package/worker.mjs)', async () => {
    // Wrangler bundles with esbuild for the browser platform, conditions workerd, worker and browser: the browser
    // build, and the AWS SDK's fetch-based build. workerd refuses random values, timers and I/O at global scope,
    // where a Worker makes what should outlive a request.
    const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 })
    const folder = join(work, 'worker')
    await mkdir(folder)
    await build({
      entryPoints: [join(consumer, 'worker.mjs')],
      outfile: join(folder, 'worker.js'),
      bundle: true,
      format: 'esm',
      platform: 'browser',
      conditions: ['workerd', 'worker', 'browser'],
      define: {
        WORKER_RSA_PUBLIC_PEM: JSON.stringify(publicKey.export({ type: 'spki', format: 'pem' })),
        WORKER_RSA_PRIVATE_PEM: JSON.stringify(privateKey.export({ type: 'pkcs8', format: 'pem' })),
      },
      logLevel: 'silent',
    })
    // The port is given on the command line: a port taken between freePort and workerd's bind means another.
    await writeFile(
      join(folder, 'config.capnp'),
      `using Workerd = import "/workerd/workerd.capnp";
const config :Workerd.Config = (
  services = [(name = "main", worker = .worker), (name = "internet", network = (allow = ["public", "private", "local"]))],
  sockets = [(name = "http", address = "127.0.0.1:0", http = (), service = "main")],
);
const worker :Workerd.Worker = (
  modules = [(name = "worker.js", esModule = embed "worker.js")],
  compatibilityDate = "2026-11-01",
  globalOutbound = "internet",
);
`,
    )
    const kms = await startKmsEmulator({ regions: ['us-east-1'] })
    let dynamodb: LocalDynamoDb | undefined
    /**
     * workerd on a free port once it says it listens there; started again on another (up to three times) when the
     * port was taken between freePort and its bind, which it says before it exits.
     */
    const spawned: ChildProcess[] = []
    const startWorkerd = async (attempt = 1): Promise<{ port: number; log: () => string }> => {
      const port = await freePort()
      const child = spawn(workerdBinary, ['serve', join(folder, 'config.capnp'), '--socket-addr', `http=127.0.0.1:${port}`], { stdio: ['ignore', 'pipe', 'pipe'] })
      spawned.push(child)
      let log = ''
      const listening = new Promise<boolean>((resolve) => {
        const read = (chunk: Buffer) => {
          log += chunk.toString()
          if (log.includes(`Listening on http://127.0.0.1:${port}`)) resolve(true)
        }
        child.stdout.on('data', read)
        child.stderr.on('data', read)
        child.once('exit', () => resolve(false))
        setTimeout(() => resolve(false), 20_000).unref()
      })
      if (await listening) return { port, log: () => log }
      if (attempt < 3 && log.includes('Address already in use')) return startWorkerd(attempt + 1)
      throw new Error(`workerd did not listen on port ${port} (attempt ${attempt}):\n${log}`)
    }
    try {
      const workerd = await startWorkerd()
      const get = async (path: string): Promise<Record<string, unknown>> => {
        const response = await fetch(`http://127.0.0.1:${workerd.port}${path}`).catch((error: Error) => {
          throw new Error(`workerd: ${error.message}\n${workerd.log()}`)
        })
        return (await response.json()) as Record<string, unknown>
      }
      const outcome = await get('/')
      const made = Object.fromEntries(Object.keys(outcome.atGlobalScope as object).map((name) => [name, 'made']))
      expect(Object.keys(made)).toHaveLength(17)
      expect(outcome).toEqual({
        atGlobalScope: made,
        suites: Object.fromEntries(ALGORITHM_SUITE_IDS.map((id) => [String(id), true])),
        managers: {
          DefaultMaterialsManager: 'DefaultMaterialsManager',
          CachingMaterialsManager: 'CachingMaterialsManager',
          RequiredEncryptionContextMaterialsManager: 'RequiredEncryptionContextMaterialsManager',
          KmsRsaKeyring: 'aws-kms-rsa',
        },
        streams: { roundTrip: true, refused: 'SIGNATURE_INVALID' },
      })

      // KMS through the AWS SDK's fetch handler; one caching manager shared by requests running at once.
      const key = kms.createKey({ region: 'us-east-1' })
      const query = (plaintext: string) => `/kms?endpoint=${encodeURIComponent(kms.endpoint)}&key=${encodeURIComponent(key.arn)}&plaintext=${plaintext}`
      const first = await get(query('first'))
      const rest = await Promise.all(['second', 'third', 'fourth'].map((plaintext) => get(query(plaintext))))
      expect([first, ...rest].map((answer) => answer.plaintext ?? answer.error)).toEqual(['first', 'second', 'third', 'fourth'])
      expect([kms.callCount({ operation: 'GenerateDataKey' }), kms.callCount({ operation: 'Decrypt' })]).toEqual([1, 4])
      // What the Worker wrote, Node reads.
      const clientSupplier = defaultKmsClientSupplier({ clientConfig: { endpoint: kms.endpoint, credentials: { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'x' } } })
      const { plaintext } = await decrypt(new KmsKeyring({ generatorKeyId: key.arn, clientSupplier }), Buffer.from(rest[2]!.ciphertext as string, 'base64'))
      expect(new TextDecoder().decode(plaintext)).toBe('fourth')

      // DynamoDB items (kms-envelope/dynamodb's browser build) through the encrypted client; Node reads what it stored.
      dynamodb = await startDynalite()
      await dynamodb.createTable('notes', { name: 'pk', type: 'S' })
      expect(await get(`/dynamodb?endpoint=${encodeURIComponent(dynamodb.endpoint)}&pk=w1`)).toEqual({ read: 'note w1', stored: ['B'], document: ['a document', 2] })
      const notes = new DynamoDbItemEncryptor({
        tableName: 'notes',
        partitionKeyName: 'pk',
        attributeActionsOnEncrypt: { pk: 'SIGN_ONLY', body: 'ENCRYPT_AND_SIGN', n: 'SIGN_ONLY' },
        keyring: new RawAesKeyring({ keyNamespace: 'worker', keyName: 'aes', wrappingKey: new Uint8Array(32).fill(7) }),
      })
      const { Item } = await dynamodb.client().send(new GetItemCommand({ TableName: 'notes', Key: { pk: { S: 'w1' } } }))
      expect((await notes.decryptItem(Item!)).body).toEqual({ S: 'note w1' })
    } finally {
      for (const child of spawned) child.kill()
      await Promise.all([kms.close(), dynamodb?.close()])
    }
  })

  it.each(['kms-envelope/browser', 'kms-envelope/dynamodb'])('the browser build (%s), @noble fallbacks included, is syntax that Chrome and Edge 91, Firefox 90 and Safari 15 (iOS 15) run as it is', async (entry) => {
    // esbuild rewrites for an older target what that target's engine could not parse (class static blocks, say,
    // which Safari has since 16.4), and fails on what it cannot rewrite: the same output for those browsers as for
    // ES2022 means they parse every line. One browser older (Safari 14.1, Chrome 84) it must rewrite.
    const bundle = async (target: string[]) => {
      const { outputFiles } = await build({
        stdin: { contents: `export * from '${entry}'`, resolveDir: consumer },
        bundle: true,
        write: false,
        format: 'esm',
        splitting: true,
        outdir: join(consumer, 'targets-out'),
        platform: 'browser',
        target,
        external: ['@aws-sdk/client-kms', '@aws-sdk/util-dynamodb'],
        logLevel: 'silent',
      })
      return outputFiles.map(({ path, text }) => `${path}\n${text}`).join('\n')
    }
    const es2022 = await bundle(['es2022'])
    expect(es2022).toMatch(/@noble\/curves/)
    expect(await bundle(['chrome91', 'edge91', 'firefox90', 'safari15', 'ios15'])).toBe(es2022)
    for (const older of ['safari14.1', 'chrome84']) expect(await bundle([older])).not.toBe(es2022)
  })

  it("beyond syntax: kms-envelope's browser modules call no built-in those browsers lack; of its dependencies, @noble and lru-cache call Object.hasOwn (README)", async () => {
    // Built-ins newer than Chrome 91, Firefox 90 and Safari 15: a call to one fails at run time there, which no
    // syntax check sees. Object.hasOwn: Chrome 93, Firefox 92, Safari 15.4 (the README says what needs it).
    const NEWER = /\b(Object\.hasOwn|structuredClone|AbortSignal\.(?:any|timeout)|Promise\.withResolvers|Object\.groupBy|Array\.fromAsync|randomUUID)\(|\.(at|findLast|findLastIndex|toSorted|toReversed|toSpliced|toHex)\(/g
    const calls = (code: string) => [...code.matchAll(NEWER)].map((match) => match[1] ?? `.${match[2]}`)
    const own = packedFiles.filter((file) => /^dist\/browser\/(?!module\/|kms-envelope\.).*\.js$/.test(file))
    expect(own.length).toBeGreaterThan(50)
    const found: Record<string, string[]> = {}
    for (const file of own) {
      const used = calls(await readFile(join(consumer, 'node_modules', 'kms-envelope', file), 'utf8'))
      if (used.length > 0) found[file] = used
    }
    expect(found).toEqual({})
    // The dependencies, as an application bundles them with kms-envelope/browser and kms-envelope/dynamodb.
    const { metafile } = await build({
      stdin: { contents: "export * from 'kms-envelope/browser'\nexport * from 'kms-envelope/dynamodb'", resolveDir: consumer },
      bundle: true,
      write: false,
      metafile: true,
      format: 'esm',
      splitting: true,
      outdir: join(consumer, 'built-ins-out'),
      platform: 'browser',
      external: ['@aws-sdk/*'],
      logLevel: 'silent',
    })
    const byPackage: Record<string, Set<string>> = {}
    for (const input of Object.keys(metafile.inputs).filter((path) => path.includes('node_modules/') && !path.includes('node_modules/kms-envelope/'))) {
      const used = calls(await readFile(join(consumer, input.slice(input.indexOf('node_modules/'))), 'utf8').catch(() => readFile(input, 'utf8')))
      // A feature test (`typeof Uint8Array.prototype.toHex`) before the call is not a use: @noble checks toHex first.
      const name = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(input)?.[1] as string
      for (const call of used.filter((call) => call !== '.toHex')) (byPackage[name] ??= new Set()).add(call)
    }
    expect(Object.fromEntries(Object.entries(byPackage).map(([name, used]) => [name, [...used]]))).toEqual({
      '@noble/curves': ['Object.hasOwn'],
      '@noble/hashes': ['Object.hasOwn'],
      'lru-cache': ['Object.hasOwn'],
    })
  })

  it.each(encryptOnlyApplications('kms-envelope/browser'))(
    'bundled into an application that only encrypts with %s, it loads at most 12 KB before the first encrypt',
    async (_name, source) => {
      // The application's bundler must be able to leave out what this application never calls: the browser
      // build ships one file per module for that (bundled into one file, the KmsRsaKeyring page loaded 18.2 KB).
      const { gzip, inputs } = await initialLoad(consumer, source)
      expect(inputs.filter((input) => NOT_FOR_ENCRYPT_ONLY.test(input))).toEqual([])
      const outside = inputs.filter((input) => !input.includes('/node_modules/kms-envelope/dist/browser/') && !/\/entry-\w+\.mjs$/.test(input))
      expect(outside).toEqual([])
      expect(gzip).toBeLessThanOrEqual(INITIAL_LOAD_BUDGET)
    },
    20_000,
  )

  it('the one-file ES module (kms-envelope/browser/bundled) imports only the AWS SDK, on demand: a service worker, which may not import(), loads it whole', async () => {
    const code = await readFile(join(consumer, 'node_modules', 'kms-envelope', 'dist', 'browser', 'kms-envelope.mjs'), 'utf8')
    const imports = [...code.matchAll(/(?:\bfrom|\bimport)\s*(\(?)\s*["']([^"']+)["']/g)].map(([, call, specifier]) => `${call === '(' ? 'import(' : 'from '}${specifier}`)
    expect(imports).toEqual(['import(@aws-sdk/client-kms'])
  })

  it('an application that only encrypts with KmsRsaKeyring bundles (esbuild) without @aws-sdk/client-kms installed; a KMS call says to install it', async () => {
    // The second consumer has no @aws-sdk/client-kms: the optional peer dependency a page that never calls KMS leaves out.
    expect(existsSync(join(itemsConsumer, 'node_modules', '@aws-sdk', 'client-kms'))).toBe(false)
    await writeFile(
      join(itemsConsumer, 'offline.mjs'),
      `import { generateKeyPairSync } from 'node:crypto'
      import { decrypt, encrypt, KmsRsaKeyring } from 'kms-envelope/browser'
      const keyId = 'arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab'
      const { publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048, publicKeyEncoding: { type: 'spki', format: 'pem' }, privateKeyEncoding: { type: 'pkcs8', format: 'pem' } })
      const kmsClient = { send: async () => { throw new Error('KMS called') } }
      const keyring = new KmsRsaKeyring({ keyId, encryptionAlgorithm: 'RSAES_OAEP_SHA_256', publicKey, kmsClient })
      const { ciphertext } = await encrypt(keyring, 'offline')
      const failure = await decrypt(keyring, ciphertext).then(() => undefined, (error) => error.failures[0].error)
      console.log(JSON.stringify({ sealed: ciphertext.length > 0, decrypt: failure.code + ': ' + failure.message }))`,
    )
    const outdir = join(itemsConsumer, 'offline-out')
    const external = ['node:crypto']
    await build({ entryPoints: [join(itemsConsumer, 'offline.mjs')], bundle: true, format: 'esm', platform: 'browser', splitting: true, outdir, external, outExtension: { '.js': '.mjs' }, logLevel: 'silent' })
    // In a process of its own, where nothing but the consumer's folder resolves packages.
    const { stdout } = await run(process.execPath, [join(outdir, 'offline.mjs')], { cwd: itemsConsumer, timeout: 60_000 })
    expect(JSON.parse(stdout)).toEqual({
      sealed: true,
      decrypt: expect.stringMatching(/^INVALID_CONFIGURATION: The KMS keyrings could not load @aws-sdk\/client-kms .*`npm install` it/),
    })
  })

  it.each([
    ['ESM', 'mjs', "import { decrypt, encrypt, RawAesKeyring } from 'kms-envelope'\nimport { DynamoDbItemEncryptor } from 'kms-envelope/dynamodb'"],
    // The CommonJS build loads them with require() in a try block, which esbuild leaves unresolved only there.
    ['CommonJS', 'cjs', "const { decrypt, encrypt, RawAesKeyring } = require('kms-envelope')\nconst { DynamoDbItemEncryptor } = require('kms-envelope/dynamodb')"],
  ] as const)('a Node application bundled and minified with esbuild (as for AWS Lambda) needs neither optional SDK package it does not call, and its errors keep their names (%s)', async (_name, extension, imports) => {
    // The second consumer has neither @aws-sdk/client-kms nor @aws-sdk/util-dynamodb (encryptObject's).
    expect(['client-kms', 'util-dynamodb'].map((name) => existsSync(join(itemsConsumer, 'node_modules', '@aws-sdk', name)))).toEqual([false, false])
    await writeFile(
      join(itemsConsumer, `handler.${extension}`),
      `${imports}
      const keyring = new RawAesKeyring({ keyNamespace: 'package', keyName: 'aes', wrappingKey: new Uint8Array(32).fill(7) })
      void (async () => {
        const { ciphertext } = await encrypt(keyring, 'bundled')
        const items = new DynamoDbItemEncryptor({ tableName: 'orders', partitionKeyName: 'pk', attributeActionsOnEncrypt: { pk: 'SIGN_ONLY', card: 'ENCRYPT_AND_SIGN' }, keyring })
        const item = await items.decryptItem(await items.encryptItem({ pk: { S: 'u1' }, card: { S: '4111' } }))
        const object = await items.encryptObject({ pk: 'u1', card: '4111' }).then(() => 'encrypted', (error) => error.code + ': ' + String(error))
        const truncated = await decrypt(keyring, ciphertext.subarray(0, 30)).catch((error) => [String(error).split(':')[0], error.stack.split(':')[0]])
        console.log(JSON.stringify({ message: new TextDecoder().decode((await decrypt(keyring, ciphertext)).plaintext), card: item.card, object, truncated }))
      })()`,
    )
    const outdir = join(itemsConsumer, `handler-out-${extension}`)
    const format = extension === 'mjs' ? 'esm' : 'cjs'
    await build({ entryPoints: [join(itemsConsumer, `handler.${extension}`)], bundle: true, minify: true, format, platform: 'node', outdir, outExtension: { '.js': `.${extension}` }, logLevel: 'silent' })
    const { stdout } = await run(process.execPath, [join(outdir, `handler.${extension}`)], { cwd: itemsConsumer, timeout: 60_000 })
    expect(JSON.parse(stdout)).toEqual({
      message: 'bundled',
      card: { S: '4111' },
      object: expect.stringMatching(/^INVALID_CONFIGURATION: ConfigurationError: encryptObject\/decryptObject could not load @aws-sdk\/util-dynamodb .*`npm install` it/),
      // Minifying renames classes; an error's name (and the first line of its stack) is its class's.
      truncated: ['TruncatedMessageError', 'TruncatedMessageError'],
    })
  })

  it('the standalone ES module runs with no package to resolve but the AWS SDK, its errors named after their classes', async () => {
    const folder = join(consumer, 'node_modules', 'kms-envelope', 'dist', 'browser', 'module')
    // A page without a bundler or an import map can only load relative imports; KMS decrypt alone needs the SDK.
    const files = (await readdir(folder)).filter((file) => file.endsWith('.js'))
    const bare = new Set<string>()
    for (const file of files) {
      const code = await readFile(join(folder, file), 'utf8')
      for (const [, specifier] of code.matchAll(/(?:\bfrom|\bimport)\s*\(?\s*["']([^"']+)["']/g)) if (!specifier!.startsWith('./')) bare.add(specifier!)
    }
    expect([...bare]).toEqual(['@aws-sdk/client-kms'])
    const api = await import(pathToFileURL(join(folder, 'kms-envelope.js')).href)
    const keyring = new api.RawAesKeyring({ keyNamespace: 'package', keyName: 'aes', wrappingKey: new Uint8Array(32).fill(7) })
    const { ciphertext } = await api.encrypt(keyring, 'module script')
    expect(new TextDecoder().decode((await api.decrypt(keyring, ciphertext)).plaintext)).toBe('module script')
    expect(String(new api.ConfigurationError('made here'))).toBe('ConfigurationError: made here')
  })

  it('runs the KMS emulator command its bin names, which handles signals before it prints its endpoint', async () => {
    const bin = join('node_modules', 'kms-envelope', (manifest.bin as Record<string, string>)['kms-envelope-kms-emulator']!)
    // A script that stops the command as soon as it prints its endpoint must get a clean close: a signal that
    // arrives before the command handles it ends the process uncleanly (about one start in five, before the fix).
    // The preload reports, at the command's first write, how many SIGINT handlers it has by then.
    const preload = `const write = process.stdout.write.bind(process.stdout)
      let first = true
      process.stdout.write = (...args) => {
        if (first) process.stderr.write(\`SIGINT handlers at first write: \${process.listenerCount('SIGINT')}\\n\`)
        first = false
        return write(...args)
      }`
    const child = spawn(process.execPath, ['--import', `data:text/javascript,${encodeURIComponent(preload)}`, bin, '--port', '0', '--regions', 'us-east-1', '--cors-origin', 'http://localhost:5173, https://app.example'], {
      cwd: consumer,
      ...CHILD_TIMEOUT,
    })
    const exited = new Promise<number | null>((resolve) => child.once('exit', resolve))
    let errors = ''
    child.stderr.on('data', (chunk: Buffer) => (errors += chunk.toString()))
    const firstLine = await new Promise<string>((resolve, reject) => {
      let output = ''
      child.stdout.on('data', (chunk: Buffer) => {
        output += chunk.toString()
        if (output.includes('\n')) resolve(output.slice(0, output.indexOf('\n')))
      })
      child.once('error', reject)
      void exited.then((code) => reject(new Error(`exited with ${code} before printing: ${output} ${errors}`)))
    })
    // --cors-origin: a page of either origin may call it, another may not.
    const endpoint = /(http:\/\/\S+)/.exec(firstLine)?.[1] as string
    const preflight = (origin: string) =>
      fetch(endpoint, { method: 'OPTIONS', headers: { Origin: origin, 'Access-Control-Request-Method': 'POST' } }).then((answer) => [answer.status, answer.headers.get('access-control-allow-origin')])
    expect(await Promise.all(['https://app.example', 'http://localhost:3000'].map(preflight))).toEqual([[204, 'https://app.example'], [403, null]])
    child.kill('SIGINT')
    expect(firstLine).toMatch(/^KMS emulator listening on http:\/\/127\.0\.0\.1:\d+ /)
    expect(await exited).toBe(0)
    expect(errors).toContain('SIGINT handlers at first write: 1')
    expect(errors).not.toContain('warning')
    // Another than a loopback address: the command says that whoever reaches it can use its keys.
    const open = spawn(process.execPath, [bin, '--port', '0', '--host', '0.0.0.0', '--regions', 'us-east-1'], { cwd: consumer, ...CHILD_TIMEOUT })
    const openExited = new Promise<number | null>((resolve) => open.once('exit', resolve))
    let openErrors = ''
    open.stderr.on('data', (chunk: Buffer) => (openErrors += chunk.toString()))
    await new Promise<void>((resolve, reject) => {
      open.stdout.on('data', (chunk: Buffer) => chunk.toString().includes('Press Ctrl-C') && resolve())
      void openExited.then((code) => reject(new Error(`exited with ${code}: ${openErrors}`)))
    })
    open.kill('SIGINT')
    expect(await openExited).toBe(0)
    expect(openErrors).toContain('kms-envelope-kms-emulator: warning: listening on 0.0.0.0, which other machines may reach. The emulator checks no credentials')
  })
})

// Each setting is one way a TypeScript application may resolve packages; skipLibCheck is off, so the packed
// declarations themselves are checked too. kms-envelope/browser is ESM only, so no CommonJS file imports it.
// Each runs under the TypeScript this project builds with (5.9) and under TypeScript 7, the native compiler
// (the devDependency typescript7), but node10: TypeScript 7 has removed that resolution (6.0 deprecated it).
const TYPE_SETTINGS: { name: string; files: string[]; compilerOptions: Record<string, unknown>; itemsOnly?: true }[] = [
  {
    name: 'node10 (moduleResolution "node", module commonjs)',
    files: ['uses.ts', 'browser-only.ts'],
    compilerOptions: { module: 'commonjs', moduleResolution: 'node10' },
  },
  { name: 'node16, CommonJS', files: ['uses.ts'], compilerOptions: { module: 'node16', moduleResolution: 'node16' } },
  { name: 'node16, ESM', files: ['uses.mts', 'browser-only.mts'], compilerOptions: { module: 'node16', moduleResolution: 'node16' } },
  { name: 'bundler', files: ['uses.ts', 'browser-only.ts'], compilerOptions: { module: 'esnext', moduleResolution: 'bundler' } },
  {
    name: 'bundler, browser only (DOM types, no @types/node)',
    files: ['browser-only.ts'],
    compilerOptions: { module: 'esnext', moduleResolution: 'bundler', types: [], lib: ['es2022', 'dom', 'dom.iterable'] },
  },
  {
    name: 'node16, with exactOptionalPropertyTypes',
    files: ['optional-undefined.ts'],
    compilerOptions: { module: 'node16', moduleResolution: 'node16', exactOptionalPropertyTypes: true },
  },
  {
    name: 'node16, the README examples',
    files: ['readme-globals.d.ts', ...README_EXAMPLES.map(({ file }) => file)],
    compilerOptions: { module: 'node16', moduleResolution: 'node16' },
  },
  {
    name: 'node16, DynamoDB items without @aws-sdk/util-dynamodb installed',
    files: ['items-only.ts'],
    compilerOptions: { module: 'node16', moduleResolution: 'node16' },
    itemsOnly: true,
  },
]

const COMPILERS = ['typescript', 'typescript7'].map((name) => ({ name, version: readPackageVersion(join(ROOT, 'node_modules', name)) }))
const TYPE_CHECKS = COMPILERS.flatMap((compiler) =>
  TYPE_SETTINGS.filter((setting) => compiler.version.startsWith('5.') || setting.compilerOptions.moduleResolution !== 'node10').map(
    (setting) => ({ ...setting, compiler }),
  ),
)

function readPackageVersion(folder: string): string {
  return (JSON.parse(readFileSync(join(folder, 'package.json'), 'utf8')) as { version: string }).version
}

describe('the packed type declarations', () => {
  it('run under TypeScript 5 and 7', () => {
    expect(COMPILERS.map(({ version }) => version.split('.')[0])).toEqual(['5', '7'])
    expect(TYPE_CHECKS.length).toBe(2 * TYPE_SETTINGS.length - 1)
  })

  it.each(TYPE_CHECKS)('type-check an application under $name, TypeScript $compiler.version', async ({ name, files, compilerOptions, itemsOnly, compiler }) => {
    const folder = itemsOnly ? itemsConsumer : consumer
    const config = `tsconfig.${compiler.name}.${name.replace(/\W+/g, '-')}.json`
    const options = { strict: true, noEmit: true, skipLibCheck: false, target: 'es2022', lib: ['es2022', 'dom'], types: ['node'], ...compilerOptions }
    await writeFile(join(folder, config), JSON.stringify({ compilerOptions: options, files }))
    // The consumer's TypeScript 5 is linked into its node_modules; TypeScript 7 runs from this project's.
    const tsc = compiler.name === 'typescript' ? join(folder, 'node_modules', 'typescript', 'bin', 'tsc') : join(ROOT, 'node_modules', compiler.name, 'bin', 'tsc')
    const outcome = await run(process.execPath, [tsc, '-p', config], { cwd: folder, timeout: 120_000 }).then(
      () => 'compiled',
      (error: { stdout?: string }) => error.stdout ?? String(error),
    )
    expect(outcome).toBe('compiled')
  }, 120_000)

  it("document every export and its members for an editor's hover: a comment that is not an unresolved {@inheritDoc}, and an example on each function and class but the error classes", async () => {
    // As TypeScript shows them, read from the packed .d.ts files through the entry points an application imports.
    const entries = ['kms-envelope', 'kms-envelope/browser', 'kms-envelope/dynamodb', 'kms-envelope/testing']
    const importer = join(consumer, 'docs-check.mts')
    await writeFile(importer, entries.map((entry, index) => `export * as entry${index} from '${entry}'`).join('\n'))
    const program = ts.createProgram([importer], { module: ts.ModuleKind.NodeNext, moduleResolution: ts.ModuleResolutionKind.NodeNext, strict: true, noEmit: true })
    const checker = program.getTypeChecker()
    const importerModule = checker.getSymbolAtLocation(program.getSourceFile(importer)!)!
    const gaps: string[] = []
    for (const [index, entry] of entries.entries()) {
      const namespace = checker.getExportsOfModule(importerModule).find((symbol) => symbol.name === `entry${index}`)!
      const exported = checker.getExportsOfModule(checker.getAliasedSymbol(namespace))
      expect(exported.length, entry).toBeGreaterThan(5)
      for (const symbol of exported) {
        const target = symbol.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(symbol) : symbol
        const text = ts.displayPartsToString(target.getDocumentationComment(checker))
        const isErrorClass = /Error$/.test(symbol.name) && symbol.name !== 'EnvelopeError'
        const needsExample = (target.flags & (ts.SymbolFlags.Function | ts.SymbolFlags.Class)) !== 0 && !isErrorClass
        if (text === '' || text.includes('{@inheritDoc')) gaps.push(`${entry}: ${symbol.name} has no documentation`)
        else if (needsExample && !target.getJsDocTags(checker).some((tag) => tag.name === 'example')) gaps.push(`${entry}: ${symbol.name} has no example`)
        // The members of its classes, interfaces and object types: options, results, headers, keyrings' fields. A
        // union (DynamoDB's attribute value shapes) is documented as a whole.
        if (isErrorClass || (target.flags & (ts.SymbolFlags.Class | ts.SymbolFlags.Interface | ts.SymbolFlags.TypeAlias)) === 0) continue
        const type = checker.getDeclaredTypeOfSymbol(target)
        if (type.isUnion()) continue
        for (const member of checker.getPropertiesOfType(type)) {
          const declaration = member.declarations?.[0]
          // kms-envelope's own public members: not inherited from Node's or the DOM's types, not symbol-keyed.
          if (declaration === undefined || !declaration.getSourceFile().fileName.includes('/kms-envelope/') || /^(__|#)/.test(member.name)) continue
          if (ts.getCombinedModifierFlags(declaration as ts.Declaration) & (ts.ModifierFlags.Private | ts.ModifierFlags.Protected)) continue
          if (ts.displayPartsToString(member.getDocumentationComment(checker)) === '') gaps.push(`${entry}: ${symbol.name}.${member.name} has no documentation`)
        }
      }
    }
    expect(gaps).toEqual([])
  })
})
