// The official AWS Encryption SDK for browsers, for the browser benchmarks (bench/browser-size.mjs, bench/browser.mjs).
// It lives in bench/official-browser/ with its own package.json: its 4.x packages and @aws-crypto/client-node 5.x
// break each other in one node_modules.
import { execFileSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { join } from 'node:path'

export const officialBrowserDir = fileURLToPath(new URL('../official-browser/', import.meta.url))

/** Install @aws-crypto/client-browser into bench/official-browser/ unless it is there. */
export function ensureOfficialBrowser() {
  if (existsSync(join(officialBrowserDir, 'node_modules/@aws-crypto/client-browser/package.json'))) return
  console.log('Installing @aws-crypto/client-browser into bench/official-browser/ …')
  execFileSync('npm', ['install', '--no-audit', '--no-fund', '--loglevel=error'], { cwd: officialBrowserDir, stdio: 'inherit' })
}

/** esbuild options every bundle of the official SDK needs: the `buffer` polyfill as a global, and `global`. */
export const officialBrowserBuildOptions = {
  inject: [join(officialBrowserDir, 'buffer-shim.mjs')],
  define: { global: 'globalThis' },
}
