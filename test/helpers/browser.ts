// Runs the browser build in Debian's Chromium (headless, through playwright-core) for test/browser.test.ts.
// The bundles are built from source here, so a fresh clone needs no prior `tsup`: a standalone minified IIFE
// (global `KmsEnvelope`, what a <script> tag loads) and an ESM build with code splitting (its on-demand
// chunks are fetched by the page as an application's bundle would). Pages come from http://127.0.0.1, a
// secure context, so WebCrypto is available.
import { execFileSync } from 'node:child_process'
import { readFile } from 'node:fs/promises'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { extname, join, normalize } from 'node:path'
import { fileURLToPath } from 'node:url'
import { build } from 'esbuild'
import { chromium, type Browser, type Page } from 'playwright-core'

const root = fileURLToPath(new URL('../..', import.meta.url))
const fixtures = join(root, 'test/fixtures')

/** The page's helpers: base64 both ways, since page.evaluate passes JSON. */
const PAGE = `<!doctype html><meta charset="utf-8"><title>kms-envelope browser test</title>
<script src="/kms-envelope.iife.js"></script>
<script>
  window.toBase64 = (bytes) => { let s = ''; for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode(...bytes.subarray(i, i + 0x8000)); return btoa(s) }
  window.fromBase64 = (text) => Uint8Array.from(atob(text), (c) => c.charCodeAt(0))
</script>`

export interface BrowserHarness {
  readonly page: Page
  readonly origin: string
  /** A fresh page of the same origin (for instance without crypto.subtle, through an init script). */
  newPage(initScript?: string): Promise<Page>
  /** A page opened at any URL (the example's server, say). */
  open(url: string): Promise<Page>
  /** Every URL the pages requested. */
  readonly requests: string[]
  close(): Promise<void>
}

async function bundles(): Promise<Map<string, string>> {
  const common = {
    entryPoints: { 'kms-envelope': join(root, 'src/browser.ts') },
    bundle: true,
    platform: 'browser' as const,
    target: 'es2022',
    write: false,
    logLevel: 'silent' as const,
    external: ['@aws-sdk/client-kms'],
    outdir: '/out',
  }
  const [iife, esm] = await Promise.all([
    // As tsup ships it: the <script> entry, minified.
    build({ ...common, entryPoints: { 'kms-envelope': join(root, 'src/standalone.ts') }, format: 'iife', globalName: 'KmsEnvelope', entryNames: '[name].iife', minify: true }),
    build({ ...common, format: 'esm', splitting: true, outdir: '/out/esm' }),
  ])
  const files = new Map<string, string>()
  for (const file of [...(iife.outputFiles ?? []), ...(esm.outputFiles ?? [])]) files.set(file.path.slice('/out'.length), file.text)
  return files
}

/** CHROMIUM_PATH if set (a Chrome or Chromium elsewhere, on a developer's machine), else Debian's `chromium`. */
export function chromiumPath(): string {
  const configured = process.env.CHROMIUM_PATH
  if (configured !== undefined && configured !== '') return configured
  try {
    return execFileSync('sh', ['-c', 'command -v chromium'], { encoding: 'utf8' }).trim()
  } catch {
    throw new Error('The browser tests need Chromium: apt-get install -y chromium (Debian; .ci/run does it), or set CHROMIUM_PATH to a Chrome or Chromium.')
  }
}

export async function startBrowser(): Promise<BrowserHarness> {
  const files = await bundles()
  const requests: string[] = []
  const server: Server = createServer((request, response) => {
    const path = new URL(request.url ?? '/', 'http://127.0.0.1').pathname
    const send = (status: number, type: string, body: string | Buffer) => {
      response.writeHead(status, { 'content-type': type, 'cache-control': 'no-store' })
      response.end(body)
    }
    if (path === '/') return send(200, 'text/html; charset=utf-8', PAGE)
    const bundled = files.get(path)
    if (bundled !== undefined) return send(200, 'text/javascript; charset=utf-8', bundled)
    if (path.startsWith('/fixtures/')) {
      const file = normalize(join(fixtures, decodeURIComponent(path.slice('/fixtures/'.length))))
      if (!file.startsWith(fixtures)) return send(403, 'text/plain', 'outside the fixtures')
      readFile(file).then(
        (body) => send(200, extname(file) === '.json' ? 'application/json' : 'application/octet-stream', body),
        () => send(404, 'text/plain', 'not found'),
      )
      return undefined
    }
    return send(404, 'text/plain', 'not found')
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  const browser: Browser = await chromium.launch({
    executablePath: chromiumPath(),
    // Chromium's sandbox cannot start as root (CI runs as root).
    args: process.getuid?.() === 0 ? ['--no-sandbox'] : [],
  })
  const context = await browser.newContext()
  context.on('request', (request) => requests.push(request.url()))
  const newPage = async (initScript?: string) => {
    const page = await context.newPage()
    if (initScript !== undefined) await page.addInitScript(initScript)
    await page.goto(`${origin}/`)
    await page.waitForFunction(() => typeof (window as unknown as { KmsEnvelope?: unknown }).KmsEnvelope === 'object')
    return page
  }
  const page = await newPage()
  return {
    page,
    origin,
    newPage,
    async open(url) {
      const page = await context.newPage()
      await page.goto(url)
      return page
    },
    requests,
    async close() {
      await browser.close()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    },
  }
}

export const toBase64 = (bytes: Uint8Array): string => Buffer.from(bytes).toString('base64')
export const fromBase64 = (text: string): Uint8Array => new Uint8Array(Buffer.from(text, 'base64'))
