// Guards the browser build's promise for an application that only encrypts with a KMS RSA public key: no AWS
// SDK code, no Node built-in, and at most 12 KB (minified + gzip) before the first encrypt, bundled the way
// bench/browser-size.mjs bundles it (esbuild, code splitting; the npm run bench:size report adds the official SDK).
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { gzipSync } from 'node:zlib'
import { build, type Metafile } from 'esbuild'
import { afterAll, describe, expect, it } from 'vitest'

const browserEntry = fileURLToPath(new URL('../src/browser.ts', import.meta.url))
const work = mkdtempSync(join(tmpdir(), 'kms-envelope-size-'))
afterAll(() => rmSync(work, { recursive: true, force: true }))

async function initialLoad(source: string): Promise<{ gzip: number; inputs: string[]; lazy: string[] }> {
  const entry = join(work, `entry-${Math.random().toString(36).slice(2)}.mjs`)
  writeFileSync(entry, source)
  const outdir = `${entry}.out`
  const result = await build({
    entryPoints: [entry],
    bundle: true,
    minify: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    splitting: true,
    outdir,
    metafile: true,
    logLevel: 'silent',
    external: ['@aws-sdk/client-kms'],
  })
  const outputs: Metafile['outputs'] = result.metafile.outputs
  const start = Object.keys(outputs).find((path) => outputs[path]?.entryPoint !== undefined) as string
  const initial = new Set<string>()
  const visit = (path: string) => {
    if (initial.has(path)) return
    initial.add(path)
    for (const imported of outputs[path]?.imports ?? []) if (imported.kind === 'import-statement' && !imported.external) visit(imported.path)
  }
  visit(start)
  const gzip = [...initial].reduce((total, path) => total + gzipSync(readFileSync(path), { level: 9 }).length, 0)
  const inputs = [...initial].flatMap((path) => Object.keys(outputs[path]?.inputs ?? {}))
  const lazy = Object.keys(outputs).filter((path) => path.endsWith('.js') && !initial.has(path))
  return { gzip, inputs, lazy }
}

describe('browser bundle for offline encryption', () => {
  it.each([
    [
      'KmsRsaKeyring',
      // As bench/browser-size.mjs bundles it (with an encryption context), so that the two cannot disagree.
      `import { encrypt, KmsRsaKeyring } from ${JSON.stringify(browserEntry)}
export async function encryptForKms(keyId, publicKeyPem, data) {
  const keyring = new KmsRsaKeyring({ keyId, encryptionAlgorithm: 'RSAES_OAEP_SHA_256', publicKey: publicKeyPem })
  return (await encrypt(keyring, data, { encryptionContext: { purpose: 'upload' } })).ciphertext
}
`,
    ],
    [
      'RawRsaKeyring (public key)',
      `import { encrypt, RawRsaKeyring } from ${JSON.stringify(browserEntry)}
export const run = async (publicKey, data) =>
  (await encrypt(new RawRsaKeyring({ keyNamespace: 'a', keyName: 'b', publicKey, padding: 'OAEP-SHA256' }), data, { algorithmSuite: 0x0478 })).ciphertext`,
    ],
  ])('%s: no AWS SDK, no Node built-in, at most 12 KB before the first encrypt', async (_name, source) => {
    const { gzip, inputs, lazy } = await initialLoad(source)
    expect(inputs.filter((input) => /@aws-sdk|^node:|backend\/node/.test(input))).toEqual([])
    // What an encrypt-only application never needs stays out of the initial load.
    expect(inputs.filter((input) => /noble|\/on-demand\.ts|kms-rsa-decrypt|default-decrypt|webcrypto-ecdsa|webcrypto-rsa-private|stream-decrypt|decrypt\.ts/.test(input))).toEqual([])
    expect(lazy.some((path) => path.includes('noble'))).toBe(true)
    expect(gzip).toBeLessThanOrEqual(12 * 1024)
  }, 20_000)
})
