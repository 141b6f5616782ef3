// Runs the browser build in Debian's Chromium (headless, through playwright-core), Firefox ESR (headless, through
// puppeteer-core over WebDriver BiDi) and WebKitGTK's MiniBrowser (Safari's engine, through WebKitWebDriver under
// Xvfb: helpers/webdriver.ts) for test/browser.test.ts; playwright drives only its own Firefox and WebKit builds.
// The bundles are built from source here, so a fresh clone needs no prior `tsup`: a standalone minified IIFE
// (global `KmsEnvelope`, what a <script> tag loads) and an ESM build with code splitting (its on-demand chunks are
// fetched by the page as an application's bundle would). Pages come from http://127.0.0.1, a secure context, so
// WebCrypto is available.
import { execFileSync } from 'node:child_process'
import { readFile } from 'node:fs/promises'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { extname, join, normalize } from 'node:path'
import { fileURLToPath } from 'node:url'
import { build } from 'esbuild'
import { chromium, type Browser } from 'playwright-core'
import { startWebDriver } from './webdriver.js'

const root = fileURLToPath(new URL('../..', import.meta.url))
const fixtures = join(root, 'test/fixtures')

/** The page's helpers: base64 both ways, since page.evaluate passes JSON. */
// The import map resolves the ES module build's import of the AWS SDK, for pages that call KMS (AWS_SDK_BUNDLE).
const PAGE = `<!doctype html><meta charset="utf-8"><title>kms-envelope browser test</title>
<script type="importmap">{ "imports": { "@aws-sdk/client-kms": "/aws-sdk/client-kms.js", "@aws-sdk/util-dynamodb": "/aws-sdk/util-dynamodb.js" } }</script>
<script src="/kms-envelope.iife.js"></script>
<script>
  window.toBase64 = (bytes) => { let s = ''; for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode(...bytes.subarray(i, i + 0x8000)); return btoa(s) }
  window.fromBase64 = (text) => Uint8Array.from(atob(text), (c) => c.charCodeAt(0))
</script>`

export type Engine = 'Chromium' | 'Firefox' | 'WebKit'

/** What the tests that run in every engine use of a page: `evaluate` with one argument, whose result is JSON. */
export interface EnginePage {
  evaluate<R, A = undefined>(run: (arg: A) => R | Promise<R>, arg?: A): Promise<R>
  close(): Promise<void>
}

export interface EngineHarness {
  readonly engine: Engine
  readonly page: EnginePage
  readonly origin: string
  /**
   * A fresh page of the same origin, at a path of its own under which the server runs `initScript` before the
   * page's scripts (to take crypto.subtle away, say) and drops the connection of requests for URLs that `dropped`
   * matches. Its scripts should import by URLs relative to the page. The page's <script> has run when it resolves.
   */
  newPage(initScript?: string, dropped?: RegExp): Promise<EnginePage>
  /** A page opened at any URL (the example's server, say). */
  open(url: string): Promise<EnginePage>
  /**
   * Open a page of the same origin that the server sends with the Content-Security-Policy `policy` and the HTML
   * `body`, whose scripts call `report(value)` once (a function the page defines first, under the nonce
   * `PAGE_NONCE`); resolves with that value, which the page posts back as JSON. Nothing is evaluated in the page
   * from outside, where a driver's own evaluation may not be bound by the policy.
   */
  reportUnderPolicy(policy: string, body: string): Promise<unknown>
  /**
   * Every URL the pages requested, as the browser saw them (Chromium, Firefox); for WebKit, whose WebDriver cannot
   * see them, every URL the test server was asked for (`seesEveryRequest` false).
   */
  readonly requests: string[]
  readonly seesEveryRequest: boolean
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
  const standalone = { ...common, entryPoints: { 'kms-envelope': join(root, 'src/standalone.ts') }, minify: true }
  // The AWS SDK packages as a page gets them from its bundler: their browser builds, one ES module each.
  const sdkModule = (name: string) =>
    build({
      stdin: { contents: `export * from '@aws-sdk/${name}'`, resolveDir: root },
      bundle: true,
      platform: 'browser',
      format: 'esm',
      target: 'es2022',
      write: false,
      logLevel: 'silent',
      minify: true,
      outfile: `/out/aws-sdk/${name}.js`,
    })
  const [iife, esm, oneFile, kmsSdk, dynamoDbUtil] = await Promise.all([
    // As tsup ships them: the <script> entry, and the one-file ES module (kms-envelope/browser/bundled), minified.
    build({ ...standalone, format: 'iife', globalName: 'KmsEnvelope', entryNames: '[name].iife' }),
    // With kms-envelope/dynamodb's browser entry beside it, sharing its chunks, as in an application's bundle.
    build({
      ...common,
      entryPoints: { ...common.entryPoints, 'kms-envelope-dynamodb': join(root, 'src/dynamodb/browser.ts') },
      external: [...common.external, '@aws-sdk/util-dynamodb'],
      format: 'esm',
      splitting: true,
      outdir: '/out/esm',
    }),
    build({ ...standalone, format: 'esm', outExtension: { '.js': '.mjs' } }),
    sdkModule('client-kms'),
    sdkModule('util-dynamodb'),
  ])
  const files = new Map<string, string>()
  for (const file of [iife, esm, oneFile, kmsSdk, dynamoDbUtil].flatMap((result) => result.outputFiles ?? [])) {
    files.set(file.path.slice('/out'.length), file.text)
  }
  files.set('/service-worker/classic.js', `importScripts('/kms-envelope.iife.js'); const api = self.KmsEnvelope\n${SERVICE_WORKER}`)
  files.set('/service-worker/module.js', `import * as api from '/kms-envelope.mjs'\n${SERVICE_WORKER}`)
  return files
}

/**
 * A service worker's body, after a line that sets `api`: it answers a message `[key, namespace, ciphertext]` (key
 * and ciphertext in base64) with the decrypted text and a 0x0578 round trip (ECDSA, loaded on demand elsewhere)
 * under that raw AES key, or the error. A service worker may not call import(), so only builds with every part
 * inside work there. (The Web Worker test in browser.test.ts does the same work, written in the page.)
 */
const SERVICE_WORKER = `self.addEventListener('install', () => self.skipWaiting())
self.addEventListener('message', (event) => {
  const fromBase64 = (text) => Uint8Array.from(atob(text), (c) => c.charCodeAt(0))
  const run = async ([key, namespace, ciphertext]) => {
    const keyring = new api.RawAesKeyring({ keyNamespace: namespace, keyName: 'aes-192-ключ', wrappingKey: fromBase64(key) })
    const options = { commitmentPolicy: 'REQUIRE_ENCRYPT_ALLOW_DECRYPT' }
    const fromNode = new TextDecoder().decode((await api.decrypt(keyring, fromBase64(ciphertext), options)).plaintext)
    const signed = await api.encrypt(keyring, 'in a service worker', { algorithmSuite: 0x0578 })
    return [fromNode, new TextDecoder().decode((await api.decrypt(keyring, signed.ciphertext)).plaintext)]
  }
  event.waitUntil(run(event.data).then((result) => event.source.postMessage(result), (error) => event.source.postMessage(String(error))))
})`

/** Where each engine is found: the variable that overrides the search, the commands searched, and how to get one. */
const ENGINE_BINARIES: Record<Engine, { variable: string; commands: string[]; advice: string }> = {
  Chromium: {
    variable: 'CHROMIUM_PATH',
    commands: ['chromium'],
    advice: 'apt-get install -y chromium (Debian; .ci/run does it), or set CHROMIUM_PATH to a Chrome or Chromium.',
  },
  Firefox: {
    variable: 'FIREFOX_PATH',
    commands: ['firefox-esr', 'firefox'],
    advice: 'apt-get install -y firefox-esr (Debian; .ci/run does it), or set FIREFOX_PATH to a Firefox.',
  },
  WebKit: {
    variable: 'WEBKIT_WEBDRIVER',
    commands: ['WebKitWebDriver'],
    advice: 'apt-get install -y webkit2gtk-driver xvfb (Debian; .ci/run does it), or set WEBKIT_WEBDRIVER to a WebKitWebDriver.',
  },
}

/** WebKitGTK's MiniBrowser, which WebKitWebDriver starts: WEBKIT_MINIBROWSER if set, else where Debian puts it. */
function miniBrowserPath(): string {
  const configured = process.env.WEBKIT_MINIBROWSER
  if (configured !== undefined && configured !== '') return configured
  try {
    return execFileSync('sh', ['-c', 'ls /usr/lib/*/webkit2gtk-4.*/MiniBrowser | head -n 1'], { encoding: 'utf8' }).trim() || 'MiniBrowser'
  } catch {
    return 'MiniBrowser'
  }
}

/** The engine's variable (CHROMIUM_PATH, FIREFOX_PATH, WEBKIT_WEBDRIVER) if set (one elsewhere, on a developer's machine), else Debian's package's. */
export function browserPath(engine: Engine): string {
  const { variable, commands, advice } = ENGINE_BINARIES[engine]
  const configured = process.env[variable]
  if (configured !== undefined && configured !== '') return configured
  for (const command of commands) {
    try {
      return execFileSync('sh', ['-c', `command -v ${command}`], { encoding: 'utf8' }).trim()
    } catch {
      // not this one
    }
  }
  throw new Error(`The browser tests need ${engine}: ${advice}`)
}

interface TestServer {
  readonly server: Server
  readonly origin: string
  /** Every URL it was asked for. */
  readonly requests: string[]
  /** The URL of a page of its own: see EngineHarness.newPage. */
  pageUrl(initScript?: string, dropped?: RegExp): string
  /** The URL of a page of its own, and what it reports: see EngineHarness.reportUnderPolicy. */
  policyPage(policy: string, body: string): { url: string; reported: Promise<unknown> }
}

/** The nonce of a reportUnderPolicy page's scripts. */
export const PAGE_NONCE = 'kms-envelope-test'

interface PageRules {
  initScript?: string
  dropped?: RegExp
  policy?: string
  body?: string
  report?: (value: unknown) => void
}

/** Serves the page, the bundles and test/fixtures/ on a loopback port; under /p/<n>/, as page n's rules say. */
async function startServer(): Promise<TestServer> {
  const files = await bundles()
  const requests: string[] = []
  const pages: PageRules[] = []
  const server: Server = createServer((request, response) => {
    const url = new URL(request.url ?? '/', origin)
    requests.push(url.href)
    const scoped = /^\/p\/(\d+)(\/.*)$/.exec(url.pathname)
    const rules = scoped === null ? {} : (pages[Number(scoped[1])] ?? {})
    if (rules.dropped?.test(url.href)) return void request.socket.destroy()
    const path = scoped === null ? url.pathname : (scoped[2] as string)
    const send = (status: number, type: string, body: string | Buffer) => {
      response.writeHead(status, { 'content-type': type, 'cache-control': 'no-store' })
      response.end(body)
    }
    if (path === '/' && rules.policy !== undefined) {
      response.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store', 'content-security-policy': rules.policy })
      const report = `<script nonce="${PAGE_NONCE}">window.report = (value) => fetch('report', { method: 'POST', body: JSON.stringify(value) })</script>`
      return void response.end(`<!doctype html><meta charset="utf-8"><title>kms-envelope under a policy</title>\n${report}\n${rules.body}`)
    }
    if (path === '/report' && request.method === 'POST' && rules.report !== undefined) {
      const chunks: Buffer[] = []
      request.on('data', (chunk: Buffer) => chunks.push(chunk))
      request.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8')
        try {
          rules.report?.(JSON.parse(text))
        } catch {
          rules.report?.({ error: `the page reported what is not JSON: ${text.slice(0, 200)}` })
        }
        send(204, 'text/plain', '')
      })
      return undefined
    }
    if (path === '/') {
      const page = rules.initScript === undefined ? PAGE : PAGE.replace('<script src=', `<script>${rules.initScript}</script>\n<script src=`)
      return send(200, 'text/html; charset=utf-8', page)
    }
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
  return {
    server,
    origin,
    requests,
    pageUrl(initScript, dropped) {
      pages.push({ ...(initScript === undefined ? {} : { initScript }), ...(dropped === undefined ? {} : { dropped }) })
      return `${origin}/p/${pages.length - 1}/`
    },
    policyPage(policy, body) {
      let report: (value: unknown) => void = () => undefined
      const reported = new Promise<unknown>((resolve) => (report = resolve))
      pages.push({ policy, body, report })
      return { url: `${origin}/p/${pages.length - 1}/`, reported }
    },
  }
}

const stopServer = (server: Server) => new Promise<void>((resolve) => server.close(() => resolve()))

/** What each engine brings to its harness. */
interface Driver {
  /**
   * A new page opened at `url`. It resolves once the page has loaded, so its <script> has run: each driver's
   * navigation waits for the load event.
   */
  open(url: string): Promise<EnginePage>
  /** See EngineHarness.requests. */
  readonly requests: string[]
  readonly seesEveryRequest: boolean
  stop(): Promise<void>
}

export async function startEngine(engine: Engine): Promise<EngineHarness> {
  const server = await startServer()
  let driver: Driver
  try {
    driver = await { Chromium: startChromium, Firefox: startFirefox, WebKit: startWebKit }[engine](server)
  } catch (error) {
    await stopServer(server.server)
    throw error
  }
  return {
    engine,
    seesEveryRequest: driver.seesEveryRequest,
    page: await driver.open(`${server.origin}/`),
    origin: server.origin,
    newPage: (initScript, dropped) => driver.open(server.pageUrl(initScript, dropped)),
    open: (url) => driver.open(url),
    async reportUnderPolicy(policy, body) {
      const { url, reported } = server.policyPage(policy, body)
      const page = await driver.open(url)
      try {
        return await reported
      } finally {
        await page.close()
      }
    },
    requests: driver.requests,
    async close() {
      await driver.stop()
      await stopServer(server.server)
    },
  }
}

async function startChromium(): Promise<Driver> {
  const requests: string[] = []
  const browser: Browser = await chromium.launch({
    executablePath: browserPath('Chromium'),
    // Chromium's sandbox cannot start as root (CI runs as root).
    args: process.getuid?.() === 0 ? ['--no-sandbox'] : [],
  })
  const context = await browser.newContext()
  context.on('request', (request) => requests.push(request.url()))
  return {
    async open(url) {
      const page = await context.newPage()
      await page.goto(url)
      return page
    },
    requests,
    seesEveryRequest: true,
    stop: () => browser.close(),
  }
}

/**
 * Firefox through puppeteer-core. Results come back as JSON text: WebDriver BiDi sends an object reached twice
 * once (a context shared by two headers, say), and puppeteer reads the second reference as undefined.
 */
async function startFirefox(): Promise<Driver> {
  const requests: string[] = []
  const { default: puppeteer } = await import('puppeteer-core')
  const browser = await puppeteer.launch({ browser: 'firefox', executablePath: browserPath('Firefox'), headless: true })
  return {
    async open(url) {
      const page = await browser.newPage()
      page.on('request', (request) => void requests.push(request.url()))
      await page.goto(url)
      return {
        async evaluate(run, arg) {
          const json = await page.evaluate(
            async (source: string, value: unknown) => JSON.stringify((await (0, eval)(`(${source})`)(value)) ?? null),
            run.toString(),
            arg,
          )
          return JSON.parse(json)
        },
        close: () => page.close(),
      }
    },
    requests,
    seesEveryRequest: true,
    stop: () => browser.close(),
  }
}

/** WebKitGTK's MiniBrowser through WebKitWebDriver (WebDriver classic: results come back as JSON text too). */
async function startWebKit(server: TestServer): Promise<Driver> {
  const session = await startWebDriver(browserPath('WebKit'), { 'webkitgtk:browserOptions': { binary: miniBrowserPath(), args: ['--automation'] } })
  return {
    async open(url) {
      const window = await session.newWindow()
      await window.navigate(url)
      return { evaluate: (run, arg) => window.evaluate(run.toString(), arg) as Promise<never>, close: () => window.close() }
    },
    requests: server.requests,
    seesEveryRequest: false,
    stop: () => session.close(),
  }
}

export const toBase64 = (bytes: Uint8Array): string => Buffer.from(bytes).toString('base64')
export const fromBase64 = (text: string): Uint8Array => new Uint8Array(Buffer.from(text, 'base64'))
