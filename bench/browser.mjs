// The browser build in browsers: Debian's Chromium (headless, through playwright-core) and Firefox ESR (headless,
// through puppeteer-core), against the official AWS Encryption SDK for browsers (@aws-crypto/client-browser) in the
// same page, and against a bare WebCrypto loop.
//
//   npm run bench:browser         (tsup, then node bench/browser.mjs [--quick])
//
// Both SDKs encrypt and decrypt with a raw AES keyring (AES-256), as the page of an application would load them:
// ours the minified <script> build npm ships (dist/browser/kms-envelope.iife.js), the official one bundled with
// esbuild from bench/official-browser/ (installed there on first run; see bench/browser-size.mjs), with the
// `buffer` polyfill it needs. Measured side by side, in alternating rounds, in one page:
//   1 MiB one-shot encrypt and decrypt, suites 0x0478 and 0x0578, frame length 4096: MiB/s, and the floor, a bare
//     WebCrypto loop over the same frames (one crypto.subtle AES-GCM call per frame, awaited in turn, written into
//     one buffer; no header, no key derivation and no signature, which the floor leaves out as in Node)
//   1 KiB messages, one at a time: operations per second
// No targets: the issues set none for browsers. CHROMIUM_PATH and FIREFOX_PATH override where the browsers are found;
// a browser that is not there is skipped, with a line that says so.

import { execFileSync } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { createServer } from 'node:http'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { build } from 'esbuild'
import { ensureOfficialBrowser, officialBrowserBuildOptions, officialBrowserDir } from './lib/official-browser.mjs'
import { fmtNum, fmtPct, fmtRatio, hex, printTable } from './lib/stats.mjs'
import { chromium } from 'playwright-core'

const root = fileURLToPath(new URL('..', import.meta.url))
const quick = process.argv.includes('--quick')
const ROUNDS = quick ? 3 : 9
const OPS_MILLISECONDS = quick ? 300 : 1000

const ours = join(root, 'dist/browser/kms-envelope.iife.js')
if (!existsSync(ours)) throw new Error('No dist/browser/: run tsup first (npm run bench:browser does).')


/** The official SDK as one minified script, global `Official`. */
async function officialScript() {
  const { outputFiles } = await build({
    stdin: {
      contents: "export { buildClient, CommitmentPolicy, AlgorithmSuiteIdentifier, RawAesKeyringWebCrypto, RawAesWrappingSuiteIdentifier } from '@aws-crypto/client-browser'",
      resolveDir: officialBrowserDir,
    },
    bundle: true,
    minify: true,
    format: 'iife',
    globalName: 'Official',
    platform: 'browser',
    target: 'es2022',
    write: false,
    logLevel: 'silent',
    ...officialBrowserBuildOptions,
  })
  return outputFiles[0].text
}

/** A browser as the browser tests find it: its variable (CHROMIUM_PATH, FIREFOX_PATH), else Debian's package's command. */
function browserPath(variable, commands) {
  if (process.env[variable]) return process.env[variable]
  for (const command of commands) {
    try {
      return execFileSync('sh', ['-c', `command -v ${command}`], { encoding: 'utf8' }).trim()
    } catch {
      // not this one
    }
  }
  return undefined
}

// Runs in the page. Everything it needs comes in `config`; it returns plain numbers.
async function measure({ rounds, opsMilliseconds }) {
  const REPEAT = 8
  const { KmsEnvelope, Official } = window
  const key = crypto.getRandomValues(new Uint8Array(32))
  const oursKeyring = new KmsEnvelope.RawAesKeyring({ keyNamespace: 'bench', keyName: 'aes', wrappingKey: key })
  const { encrypt: officialEncrypt, decrypt: officialDecrypt } = Official.buildClient(Official.CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT)
  const masterKey = await Official.RawAesKeyringWebCrypto.importCryptoKey(key, Official.RawAesWrappingSuiteIdentifier.AES256_GCM_IV12_TAG16_NO_PADDING)
  const officialKeyring = new Official.RawAesKeyringWebCrypto({
    keyNamespace: 'bench',
    keyName: 'aes',
    masterKey,
    wrappingSuite: Official.RawAesWrappingSuiteIdentifier.AES256_GCM_IV12_TAG16_NO_PADDING,
  })
  const SUITE_NAMES = {
    [0x0478]: 'ALG_AES256_GCM_IV12_TAG16_HKDF_SHA512_COMMIT_KEY',
    [0x0578]: 'ALG_AES256_GCM_IV12_TAG16_HKDF_SHA512_COMMIT_KEY_ECDSA_P384',
  }
  const contenders = (suite, frameLength) => ({
    ours: {
      encrypt: async (data) => (await KmsEnvelope.encrypt(oursKeyring, data, { algorithmSuite: suite, frameLength })).ciphertext,
      decrypt: async (message) => (await KmsEnvelope.decrypt(oursKeyring, message)).plaintext,
    },
    official: {
      encrypt: async (data) => (await officialEncrypt(officialKeyring, data, { suiteId: Official.AlgorithmSuiteIdentifier[SUITE_NAMES[suite]], frameLength })).result,
      decrypt: async (message) => (await officialDecrypt(officialKeyring, message)).plaintext,
    },
  })
  const median = (values) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]
  const time = async (work) => {
    const start = performance.now()
    await work()
    return performance.now() - start
  }

  // The floor: one message's frames through crypto.subtle, one AES-GCM call per frame, each awaited in turn, written
  // into one buffer (a message is one array of bytes, as the API returns it; so is the plaintext on decrypt).
  const floorKey = await crypto.subtle.importKey('raw', key, 'AES-GCM', false, ['encrypt', 'decrypt'])
  const TAG = 16
  const floorIv = (sequence) => {
    const iv = new Uint8Array(12)
    new DataView(iv.buffer).setUint32(8, sequence)
    return iv
  }
  const floorEncrypt = async (data, frameLength) => {
    const frames = Math.max(1, Math.ceil(data.length / frameLength))
    const out = new Uint8Array(data.length + frames * TAG)
    for (let frame = 0; frame < frames; frame++) {
      const plaintext = data.subarray(frame * frameLength, (frame + 1) * frameLength)
      const sealed = await crypto.subtle.encrypt({ name: 'AES-GCM', iv: floorIv(frame + 1), additionalData: new Uint8Array(48) }, floorKey, plaintext)
      out.set(new Uint8Array(sealed), frame * (frameLength + TAG))
    }
    return out
  }
  const floorDecrypt = async (message, frameLength) => {
    const frames = Math.max(1, Math.ceil(message.length / (frameLength + TAG)))
    const out = new Uint8Array(message.length - frames * TAG)
    for (let frame = 0; frame < frames; frame++) {
      const sealed = message.subarray(frame * (frameLength + TAG), (frame + 1) * (frameLength + TAG))
      const opened = await crypto.subtle.decrypt({ name: 'AES-GCM', iv: floorIv(frame + 1), additionalData: new Uint8Array(48) }, floorKey, sealed)
      out.set(new Uint8Array(opened), frame * frameLength)
    }
    return out
  }

  const throughput = []
  const size = 1 << 20
  const data = new Uint8Array(size)
  for (let offset = 0; offset < size; offset += 65536) crypto.getRandomValues(data.subarray(offset, offset + 65536))
  for (const suite of [0x0478, 0x0578]) {
    const frameLength = 4096
    const sides = contenders(suite, frameLength)
    const messages = { ours: await sides.ours.encrypt(data), official: await sides.official.encrypt(data) }
    const floorMessage = await floorEncrypt(data, frameLength)
    // Each side must read its own message back whole; and each reads the other's, the format being one.
    for (const [reader, writer] of [['ours', 'official'], ['official', 'ours'], ['ours', 'ours'], ['official', 'official']]) {
      const opened = await sides[reader].decrypt(messages[writer])
      if (opened.length !== size || opened[size - 1] !== data[size - 1]) throw new Error(`${reader} did not read ${writer}'s 0x${suite.toString(16)} message back`)
    }
    const samples = { ours: { encrypt: [], decrypt: [] }, official: { encrypt: [], decrypt: [] }, floor: { encrypt: [], decrypt: [] } }
    // Each sample times REPEAT messages in a row: one 1 MiB message takes a few milliseconds, which the page's
    // timer (coarsened to 100 µs) and the browser's other threads blur.
    const repeated = (work) => time(async () => {
      for (let count = 0; count < REPEAT; count++) await work()
    })
    for (let round = 0; round < rounds; round++) {
      for (const name of round % 2 === 0 ? ['ours', 'official'] : ['official', 'ours']) {
        samples[name].encrypt.push(await repeated(() => sides[name].encrypt(data)))
        samples[name].decrypt.push(await repeated(() => sides[name].decrypt(messages[name])))
      }
      samples.floor.encrypt.push(await repeated(() => floorEncrypt(data, frameLength)))
      samples.floor.decrypt.push(await repeated(() => floorDecrypt(floorMessage, frameLength)))
    }
    for (const op of ['encrypt', 'decrypt']) {
      const mibPerSecond = (name) => (REPEAT * size) / (1 << 20) / (median(samples[name][op]) / 1000)
      throughput.push({ suite, frameLength, op, ours: mibPerSecond('ours'), official: mibPerSecond('official'), floor: mibPerSecond('floor') })
    }
  }

  const ops = []
  const small = crypto.getRandomValues(new Uint8Array(1024))
  for (const suite of [0x0478, 0x0578]) {
    const sides = contenders(suite, 4096)
    const messages = { ours: [], official: [] }
    for (let index = 0; index < 16; index++) {
      messages.ours.push(await sides.ours.encrypt(small))
      messages.official.push(await sides.official.encrypt(small))
    }
    const rates = { ours: { encrypt: [], decrypt: [] }, official: { encrypt: [], decrypt: [] } }
    const rate = async (work) => {
      let count = 0
      const start = performance.now()
      while (performance.now() - start < opsMilliseconds) await work(count++)
      return count / ((performance.now() - start) / 1000)
    }
    for (let round = 0; round < rounds; round++) {
      for (const name of round % 2 === 0 ? ['ours', 'official'] : ['official', 'ours']) {
        rates[name].encrypt.push(await rate(() => sides[name].encrypt(small)))
        rates[name].decrypt.push(await rate((count) => sides[name].decrypt(messages[name][count % 16])))
      }
    }
    for (const op of ['encrypt', 'decrypt']) ops.push({ suite, op, ours: median(rates.ours[op]), official: median(rates.official[op]) })
  }
  return { userAgent: navigator.userAgent, throughput, ops }
}

ensureOfficialBrowser()
const files = new Map([
  ['/', '<!doctype html><meta charset="utf-8"><title>kms-envelope browser bench</title><script src="/ours.js"></script><script src="/official.js"></script>'],
  ['/ours.js', readFileSync(ours, 'utf8')],
  ['/official.js', await officialScript()],
])
// http://127.0.0.1 is a secure context: WebCrypto is there.
const server = createServer((request, response) => {
  const body = files.get(request.url ?? '')
  response.writeHead(body === undefined ? 404 : 200, { 'content-type': request.url === '/' ? 'text/html' : 'text/javascript' })
  response.end(body ?? '')
})
await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve))

/** Each browser: where it is, and how to run `measure` in a page of it. */
const BROWSERS = [
  {
    name: 'Chromium',
    path: () => browserPath('CHROMIUM_PATH', ['chromium']),
    advice: 'apt-get install -y chromium, or set CHROMIUM_PATH',
    async run(executablePath, url, config) {
      // Chromium's sandbox cannot start as root.
      const browser = await chromium.launch({ executablePath, args: process.getuid?.() === 0 ? ['--no-sandbox'] : [] })
      try {
        const page = await browser.newPage()
        await page.goto(url)
        return await page.evaluate(measure, config)
      } finally {
        await browser.close()
      }
    },
  },
  {
    name: 'Firefox',
    path: () => browserPath('FIREFOX_PATH', ['firefox-esr', 'firefox']),
    advice: 'apt-get install -y firefox-esr, or set FIREFOX_PATH',
    async run(executablePath, url, config) {
      const { default: puppeteer } = await import('puppeteer-core')
      const browser = await puppeteer.launch({ browser: 'firefox', executablePath, headless: true })
      try {
        const page = await browser.newPage()
        await page.goto(url)
        // As JSON text, as the browser tests read Firefox's answers (through WebDriver BiDi).
        const json = await page.evaluate(async (source, value) => JSON.stringify(await (0, eval)(`(${source})`)(value)), measure.toString(), config)
        return JSON.parse(json)
      } finally {
        await browser.close()
      }
    },
  },
]

const SIDES = [
  { key: 'suite', title: 'suite', align: 'left' },
  { key: 'op', title: 'op', align: 'left' },
  { key: 'ours', title: 'ours', align: 'right' },
  { key: 'official', title: 'official', align: 'right' },
]

function report(name, { userAgent, throughput, ops }) {
  const version = (name === 'Chromium' ? /Chrome\/([\d.]+)/ : /Firefox\/([\d.]+)/).exec(userAgent)?.[1] ?? userAgent
  console.log(`\n== Browser build in ${name} ${version}: 1 MiB one-shot, raw AES keyring, frame 4096, MiB/s (median of ${ROUNDS})`)
  printTable(
    [...SIDES, { key: 'floor', title: 'WebCrypto floor', align: 'right' }, { key: 'vsOfficial', title: 'ours/official', align: 'right' }, { key: 'vsFloor', title: 'ours/floor', align: 'right' }],
    throughput.map((row) => ({
      suite: hex(row.suite),
      op: row.op,
      ours: fmtNum(row.ours),
      official: fmtNum(row.official),
      floor: fmtNum(row.floor),
      vsOfficial: fmtRatio(row.ours / row.official),
      vsFloor: fmtPct(row.ours / row.floor),
    })),
  )
  console.log('  floor: one crypto.subtle AES-GCM call per frame, awaited in turn, into one buffer; no header, no key derivation, no signature')
  console.log(`\n== Browser build in ${name} ${version}: 1 KiB messages, raw AES keyring, one at a time, ops/s (median of ${ROUNDS})`)
  printTable(
    [...SIDES, { key: 'vsOfficial', title: 'ours/official', align: 'right' }],
    ops.map((row) => ({ suite: hex(row.suite), op: row.op, ours: fmtNum(row.ours, 0), official: fmtNum(row.official, 0), vsOfficial: fmtRatio(row.ours / row.official) })),
  )
}

const started = performance.now()
try {
  for (const { name, path, advice, run } of BROWSERS) {
    const executablePath = path()
    if (executablePath === undefined) {
      console.log(`\n${name}: not found (${advice}); skipped`)
      continue
    }
    report(name, await run(executablePath, `http://127.0.0.1:${server.address().port}/`, { rounds: ROUNDS, opsMilliseconds: OPS_MILLISECONDS }))
  }
} finally {
  server.close()
}
console.log(`\ntotal time: ${((performance.now() - started) / 1000).toFixed(1)} s`)
