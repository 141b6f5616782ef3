// What an application that only encrypts in the browser with an RSA public key loads before its first encrypt,
// bundled as bench/browser-size.mjs bundles it (esbuild, minified, code splitting): the entry chunk and every
// chunk it imports statically, each gzipped. Used on the source (test/browser-size.test.ts) and on the build
// npm ships (test/package.test.ts).
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { gzipSync } from 'node:zlib'
import { build, type Metafile } from 'esbuild'

/** The budget for that initial load, minified + gzip. */
export const INITIAL_LOAD_BUDGET = 12 * 1024

/** Modules an encrypt-only application never needs before its first encrypt (source or built file names). */
export const NOT_FOR_ENCRYPT_ONLY =
  /noble|\/on-demand\.[jt]s|kms-rsa-decrypt|default-decrypt|webcrypto-ecdsa|webcrypto-rsa-private|stream-decrypt|\/decrypt\.[jt]s/

/** Applications importing kms-envelope's browser build from `specifier`, by name. */
export function encryptOnlyApplications(specifier: string): [string, string][] {
  const from = JSON.stringify(specifier)
  return [
    [
      'KmsRsaKeyring',
      // As bench/browser-size.mjs bundles it (with an encryption context), so that the two cannot disagree.
      `import { encrypt, KmsRsaKeyring } from ${from}
export async function encryptForKms(keyId, publicKeyPem, data) {
  const keyring = new KmsRsaKeyring({ keyId, encryptionAlgorithm: 'RSAES_OAEP_SHA_256', publicKey: publicKeyPem })
  return (await encrypt(keyring, data, { encryptionContext: { purpose: 'upload' } })).ciphertext
}
`,
    ],
    [
      'RawRsaKeyring (public key)',
      `import { encrypt, RawRsaKeyring } from ${from}
export const run = async (publicKey, data) =>
  (await encrypt(new RawRsaKeyring({ keyNamespace: 'a', keyName: 'b', publicKey, padding: 'OAEP-SHA256' }), data, { algorithmSuite: 0x0478 })).ciphertext`,
    ],
  ]
}

/** Bundles `source` (written into `folder`, where its imports resolve) and measures its initial load. */
export async function initialLoad(folder: string, source: string): Promise<{ gzip: number; inputs: string[]; lazy: string[] }> {
  const entry = join(folder, `entry-${Math.random().toString(36).slice(2)}.mjs`)
  writeFileSync(entry, source)
  const result = await build({
    entryPoints: [entry],
    bundle: true,
    minify: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    splitting: true,
    outdir: `${entry}.out`,
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
