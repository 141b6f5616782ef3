// What an application that only encrypts in the browser with an RSA public key downloads: minified + gzip
// bytes of a minimal entry, bundled with esbuild from the browser build npm ships (dist/browser/, which
// `npm run bench:size` builds first), against the official AWS Encryption SDK for browsers
// (@aws-crypto/client-browser) doing the same job.
//
//   npm run bench:size            (tsup, then node bench/browser-size.mjs [--json=out.json])
//
// Each entry is bundled twice: with code splitting, as an application's bundler would (the figure is the
// entry chunk plus every chunk it imports statically: what loads before the first encrypt; chunks loaded
// only on demand, such as kms-envelope's @noble fallback for pages without WebCrypto, are listed apart), and
// as a single file. The budget is 12 KB (12,288 bytes) for kms-envelope's initial load.
//
// The official SDK lives in bench/official-browser/ with its own package.json (its 4.x packages and
// @aws-crypto/client-node 5.x break each other in one node_modules); this script installs it there when
// missing. Its bundle needs the `buffer` polyfill, which is counted.

import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { dirname, join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'
import { gzipSync } from 'node:zlib'
import { build } from 'esbuild'
import { ensureOfficialBrowser, officialBrowserBuildOptions, officialBrowserDir } from './lib/official-browser.mjs'

const root = fileURLToPath(new URL('..', import.meta.url))
const work = join(root, '.bench-tmp/browser-size')
const BUDGET = 12 * 1024
const jsonArg = process.argv.find((arg) => arg.startsWith('--json='))

const browserEntry = join(root, 'dist/browser/index.js')
if (!existsSync(browserEntry)) throw new Error('No dist/browser/: run tsup first (npm run bench:size does).')
const ENTRIES = [
  {
    name: 'kms-envelope: KmsRsaKeyring encrypt (suite 0x0478)',
    dir: work,
    budget: BUDGET,
    source: `import { encrypt, KmsRsaKeyring } from ${JSON.stringify(browserEntry)}
export async function encryptForKms(keyId, publicKeyPem, data) {
  const keyring = new KmsRsaKeyring({ keyId, encryptionAlgorithm: 'RSAES_OAEP_SHA_256', publicKey: publicKeyPem })
  return (await encrypt(keyring, data, { encryptionContext: { purpose: 'upload' } })).ciphertext
}
`,
  },
  {
    name: 'kms-envelope: RawRsaKeyring public-key encrypt (suite 0x0478)',
    dir: work,
    budget: BUDGET,
    source: `import { encrypt, RawRsaKeyring } from ${JSON.stringify(browserEntry)}
export async function encryptForKey(publicKeyPem, data) {
  const keyring = new RawRsaKeyring({ keyNamespace: 'app', keyName: 'rsa-1', publicKey: publicKeyPem, padding: 'OAEP-SHA256' })
  return (await encrypt(keyring, data, { algorithmSuite: 0x0478, encryptionContext: { purpose: 'upload' } })).ciphertext
}
`,
  },
  {
    name: 'official @aws-crypto/client-browser: RawRsaKeyringWebCrypto encrypt (suite 0x0478)',
    dir: officialBrowserDir,
    official: true,
    source: `import { buildClient, CommitmentPolicy, AlgorithmSuiteIdentifier, RawRsaKeyringWebCrypto } from '@aws-crypto/client-browser'
const { encrypt } = buildClient(CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT)
export async function encryptForKey(spkiDer, data) {
  const publicKey = await RawRsaKeyringWebCrypto.importPublicKey({ format: 'spki', key: spkiDer, padding: 'OAEP_SHA256_MFG1' })
  const keyring = new RawRsaKeyringWebCrypto({ keyNamespace: 'app', keyName: 'rsa-1', publicKey })
  const suiteId = AlgorithmSuiteIdentifier.ALG_AES256_GCM_IV12_TAG16_HKDF_SHA512_COMMIT_KEY
  return (await encrypt(keyring, data, { suiteId, encryptionContext: { purpose: 'upload' } })).result
}
`,
  },
]


const gzipLength = (bytes) => gzipSync(bytes, { level: 9 }).length

/** Every output chunk reachable from `start` through static imports. */
function staticClosure(outputs, start) {
  const seen = new Set()
  const visit = (path) => {
    if (seen.has(path)) return
    seen.add(path)
    for (const imported of outputs[path]?.imports ?? []) if (imported.kind === 'import-statement' && !imported.external) visit(imported.path)
  }
  visit(start)
  return seen
}

async function bundle(entry, index, splitting) {
  const outdir = join(work, `out-${index}-${splitting ? 'split' : 'single'}`)
  rmSync(outdir, { recursive: true, force: true })
  const entryFile = join(entry.dir, `.size-entry-${index}.mjs`)
  writeFileSync(entryFile, entry.source)
  try {
    const result = await build({
      entryPoints: [entryFile],
      bundle: true,
      minify: true,
      format: 'esm',
      platform: 'browser',
      target: 'es2022',
      splitting,
      outdir,
      metafile: true,
      write: true,
      logLevel: 'silent',
      // kms-envelope loads the AWS SDK only to decrypt with KMS, through a dynamic import.
      external: entry.official ? [] : ['@aws-sdk/client-kms'],
      ...(entry.official ? officialBrowserBuildOptions : {}),
    })
    const outputs = result.metafile.outputs
    const entryOutput = Object.keys(outputs).find((path) => outputs[path].entryPoint !== undefined)
    const initial = staticClosure(outputs, entryOutput)
    const sizes = Object.keys(outputs)
      .filter((path) => path.endsWith('.js'))
      .map((path) => {
        const bytes = readFileSync(join(root, path))
        return { file: relative(outdir, join(root, path)), minified: bytes.length, gzip: gzipLength(bytes), initial: initial.has(path) }
      })
    const inputs = Object.keys(result.metafile.inputs)
    const joined = Buffer.concat(Object.keys(outputs).filter((path) => initial.has(path) && path.endsWith('.js')).map((path) => readFileSync(join(root, path))))
    return {
      initialJoined: { minified: joined.length, gzip: gzipLength(joined) },
      initial: sum(sizes.filter((size) => size.initial)),
      onDemand: sizes.filter((size) => !size.initial),
      total: sum(sizes),
      inputs,
    }
  } finally {
    rmSync(entryFile, { force: true })
  }
}

function sum(sizes) {
  return sizes.reduce((total, size) => ({ minified: total.minified + size.minified, gzip: total.gzip + size.gzip }), { minified: 0, gzip: 0 })
}

const kb = (bytes) => `${(bytes / 1024).toFixed(1)} KB`

ensureOfficialBrowser()
mkdirSync(work, { recursive: true })
const report = []
let failed = false
for (const [index, entry] of ENTRIES.entries()) {
  const split = await bundle(entry, index, true)
  const single = await bundle(entry, index, false)
  const awsSdkModules = split.inputs.filter((input) => /node_modules\/@aws-sdk\//.test(input)).length
  // Ours must bundle no AWS SDK and no Node built-in for this job.
  const forbidden = entry.budget === undefined ? [] : split.inputs.filter((input) => /node_modules\/@aws-sdk\/|^node:/.test(input))
  const withinBudget = entry.budget === undefined ? undefined : split.initial.gzip <= entry.budget && forbidden.length === 0
  if (withinBudget === false) failed = true
  report.push({
    name: entry.name,
    initial: split.initial,
    initialJoined: split.initialJoined,
    total: split.total,
    single: single.total,
    onDemand: split.onDemand,
    awsSdkModules,
    forbidden,
    withinBudget,
  })
}

console.log('\n== Browser bundle size: minified + gzip (level 9), esbuild, target es2022 ==')
console.log('  "initial": the entry chunk and the chunks it imports statically (code splitting), each file gzipped; the')
console.log('  budget applies to it. "one stream": the same code gzipped as one file. "no splitting": everything in one file,')
console.log('  including what loads only on demand.')
const rows = report.map((row) => [
  row.name,
  `${kb(row.initial.gzip)} (${kb(row.initial.minified)} min)`,
  kb(row.initialJoined.gzip),
  `${kb(row.single.gzip)} (${kb(row.single.minified)} min)`,
  row.withinBudget === undefined ? '' : row.withinBudget ? `PASS <= ${kb(BUDGET)}` : `FAIL > ${kb(BUDGET)}`,
])
const header = ['bundle', 'initial', 'one stream', 'no splitting', 'budget']
const widths = header.map((title, column) => Math.max(title.length, ...rows.map((row) => row[column].length)))
for (const row of [header, widths.map((width) => '-'.repeat(width)), ...rows]) console.log(`  ${row.map((cell, column) => cell.padEnd(widths[column])).join('  ')}`)
for (const row of report) {
  const lazy = row.onDemand.map((chunk) => `${chunk.file.replace(/-[A-Z0-9]+\.js$/, '')} ${kb(chunk.gzip)}`).join(', ')
  if (lazy !== '') console.log(`  ${row.name}: on demand only: ${lazy}`)
  if (row.awsSdkModules > 0) console.log(`  ${row.name}: bundles ${row.awsSdkModules} @aws-sdk modules`)
  if (row.forbidden.length > 0) console.log(`  ${row.name}: FAIL, bundles ${row.forbidden.join(', ')}`)
}
const ours = report[0]
const official = report[2]
console.log(`  official / kms-envelope (KmsRsaKeyring), initial: ${(official.initial.gzip / ours.initial.gzip).toFixed(1)}x`)
if (jsonArg) writeFileSync(jsonArg.slice('--json='.length), JSON.stringify(report, null, 2))
rmSync(dirname(join(work, 'x')), { recursive: true, force: true })
if (failed) process.exitCode = 1
