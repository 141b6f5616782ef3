/**
 * Mutation fuzzer for decrypt (engine: scripts/fuzz-lib.ts).
 *
 *   npm run fuzz -- --iterations 20000 [--seed 1234]
 *   npm run fuzz -- --seed 1234 --from 5120 --iterations 1 --verbose     # replay one iteration
 *   npm run fuzz -- --replay /tmp/kms-envelope-fuzz-1234/case-5120.json  # byte-exact replay of a saved failure
 *
 * Options:
 *   --iterations N      iterations to run (default 10000)
 *   --seed S            PRNG seed, decimal or 0x-hex (default: random, printed)
 *   --from I            first iteration number (default 0)
 *   --time-budget MS    stop the loop after MS milliseconds
 *   --slow-ms MS        per-decrypt time limit (default 1000)
 *   --stream-every N    every N-th iteration also decrypts through decryptStream, written in pieces of random sizes,
 *                       every second time the browser build's (default 4; 0: never)
 *   --browser-every N   every N-th iteration (offset by N/2: with the defaults, not those that stream) decrypts with the
 *                       browser build's one-shot decrypt, on WebCrypto, instead of Node's (default 4; 0: never)
 *   --rss-limit-mb MB   allowed RSS growth (default 256)
 *   --save-dir DIR      where failing cases are written (default: $TMPDIR/kms-envelope-fuzz-<seed>)
 *   --verbose           print every iteration
 *   --json              print the full report as JSON at the end
 *   --replay FILE       decrypt a saved case and print the outcome
 *
 * Exit status: 0 without failures, 1 with failures, 2 on a usage or setup error.
 * A watchdog thread kills the process (exit by SIGKILL) if one decrypt blocks the event loop for --stall-ms
 * (default 30000), after printing the seed and iteration.
 */
import { randomInt } from 'node:crypto'
import { once } from 'node:events'
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { Worker } from 'node:worker_threads'

import { type FuzzCase, type FuzzCaseEvent, type FuzzReport, formatFailures, replayCase, runFuzz, summaryLine } from './fuzz-lib.js'

function fail(message: string): never {
  process.stderr.write(`fuzz: ${message}\n`)
  process.exit(2)
}

function parseInteger(name: string, text: string | undefined, fallback: number): number {
  if (text === undefined) return fallback
  const value = /^0x[0-9a-f]+$/i.test(text) ? Number.parseInt(text.slice(2), 16) : Number(text)
  if (!Number.isSafeInteger(value) || value < 0) fail(`--${name} must be a non-negative integer, got ${JSON.stringify(text)}`)
  return value
}

let parsed: ReturnType<typeof parseCli>
function parseCli() {
  return parseArgs({
    args: process.argv.slice(2),
    strict: true,
    allowPositionals: false,
    options: {
      iterations: { type: 'string' },
      seed: { type: 'string' },
      from: { type: 'string' },
      'time-budget': { type: 'string' },
      'slow-ms': { type: 'string' },
      'stream-every': { type: 'string' },
      'browser-every': { type: 'string' },
      'rss-limit-mb': { type: 'string' },
      'stall-ms': { type: 'string' },
      'save-dir': { type: 'string' },
      replay: { type: 'string' },
      verbose: { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  })
}
try {
  parsed = parseCli()
} catch (error) {
  fail(error instanceof Error ? error.message : String(error))
}
const { values } = parsed

if (values.help) {
  process.stdout.write(
    'usage: tsx scripts/fuzz.ts [--iterations N] [--seed S] [--from I] [--time-budget MS] [--slow-ms MS]\n' +
      '                           [--stream-every N] [--browser-every N] [--rss-limit-mb MB] [--stall-ms MS] [--save-dir DIR] [--verbose] [--json]\n' +
      '       tsx scripts/fuzz.ts --replay FILE\n',
  )
  process.exit(0)
}

if (values.replay !== undefined) {
  let fuzzCase: FuzzCase
  try {
    fuzzCase = JSON.parse(readFileSync(values.replay, 'utf8')) as FuzzCase
  } catch (error) {
    fail(`cannot read ${values.replay}: ${error instanceof Error ? error.message : String(error)}`)
  }
  const result = await replayCase(fuzzCase)
  process.stdout.write(
    `replay seed=${fuzzCase.seed} iteration=${fuzzCase.iteration} base=${fuzzCase.baseLabel}\n` +
      `  mutation: ${fuzzCase.mutation}\n  outcome:  ${result.outcome} in ${result.durationMs.toFixed(2)} ms\n` +
      (result.detail === '' ? '' : `  ${result.detail.replace(/\n/g, '\n  ')}\n`),
  )
  process.exit(result.outcome.startsWith('rejected:') ? 0 : 1)
}

const iterations = parseInteger('iterations', values.iterations, 10_000)
const seed = parseInteger('seed', values.seed, randomInt(0, 0xffff_ffff)) >>> 0
const startIteration = parseInteger('from', values.from, 0)
const slowMs = parseInteger('slow-ms', values['slow-ms'], 1000)
const streamEvery = parseInteger('stream-every', values['stream-every'], 4)
const browserEvery = parseInteger('browser-every', values['browser-every'], 4)
const rssLimitMB = parseInteger('rss-limit-mb', values['rss-limit-mb'], 256)
const stallMs = parseInteger('stall-ms', values['stall-ms'], 30_000)
const timeBudgetMs = values['time-budget'] === undefined ? undefined : parseInteger('time-budget', values['time-budget'], 0)
const saveDir = values['save-dir'] ?? join(tmpdir(), `kms-envelope-fuzz-${seed}`)

// Watchdog: a worker thread that is not blocked when the main thread is. [0] heartbeat counter, [1] iteration.
const shared = new Int32Array(new SharedArrayBuffer(8))
const watchdog = new Worker(
  `
  const { workerData } = require('node:worker_threads')
  const { writeSync } = require('node:fs')
  const { shared, stallMs, seed } = workerData
  let last = -1, since = Date.now()
  setInterval(() => {
    const beat = Atomics.load(shared, 0)
    if (beat !== last) { last = beat; since = Date.now(); return }
    if (beat > 0 && Date.now() - since > stallMs) {
      const it = Atomics.load(shared, 1)
      writeSync(2, '\\nfuzz: WATCHDOG: no progress for ' + (Date.now() - since) + ' ms; ' + (it < 0
        ? 'stuck while building/checking the corpus (seed=' + seed + ')\\n'
        : 'decrypt is stuck at seed=' + seed + ' iteration=' + it + ' (replay: --seed ' + seed + ' --from ' + it +
          ' --iterations 1 --verbose)\\n'))
      process.kill(process.pid, 'SIGKILL')
    }
  }, 250)
  require('node:worker_threads').parentPort.postMessage('ready')
  `,
  { eval: true, workerData: { shared, stallMs, seed } },
)
// The worker only boots while the main thread is idle: wait until it runs before the loop can block.
await once(watchdog, 'message')
watchdog.unref()
Atomics.store(shared, 1, -1) // armed from here: corpus building counts too
Atomics.store(shared, 0, 1)

const started = Date.now()
process.stdout.write(
  `fuzz: seed=${seed} iterations=${iterations}${startIteration > 0 ? ` from=${startIteration}` : ''} ` +
    `slowMs=${slowMs} rssLimitMB=${rssLimitMB}${timeBudgetMs === undefined ? '' : ` timeBudgetMs=${timeBudgetMs}`} ` +
    `(replay with --seed ${seed})\n`,
)

const savedFiles: string[] = []
function saveCase(fuzzCase: FuzzCase): string | undefined {
  if (savedFiles.length >= 50) return undefined
  try {
    mkdirSync(saveDir, { recursive: true })
    const path = fuzzCase.pieces !== undefined ? '-stream' : fuzzCase.build === 'browser' ? '-browser' : ''
    const file = join(saveDir, `case-${fuzzCase.iteration}${path}.json`)
    writeFileSync(file, `${JSON.stringify(fuzzCase, null, 2)}\n`)
    savedFiles.push(file)
    return file
  } catch {
    return undefined
  }
}

let report: FuzzReport
try {
  report = await runFuzz({
    iterations,
    seed,
    startIteration,
    slowMs,
    streamEvery,
    browserEvery,
    rssLimitMB,
    ...(timeBudgetMs === undefined ? {} : { timeBudgetMs }),
    onBeforeDecrypt: (iteration) => {
      Atomics.store(shared, 1, iteration)
      Atomics.add(shared, 0, 1)
    },
    onProgress: (p) => {
      process.stdout.write(
        `fuzz: ${p.iteration + 1 - startIteration}/${p.total} | ${p.iterationsPerSecond.toFixed(0)} it/s | ` +
          `failures ${p.failures} | max decrypt ${p.maxDecryptMs.toFixed(1)} ms | ` +
          `rss ${p.rssMB} MB | heap ${p.heapMB} MB | ${(p.elapsedMs / 1000).toFixed(1)} s\n`,
      )
    },
    onFailure: (f) => {
      const file = f.case === undefined ? undefined : saveCase(f.case)
      process.stdout.write(
        `fuzz: FAILURE ${f.kind} seed=${f.seed} iteration=${f.iteration} base=${f.baseLabel}\n` +
          `      mutation: ${f.mutation}\n      ${f.detail}\n` +
          (f.stack === undefined || f.stack === '' ? '' : `      ${f.stack.split('\n').slice(1, 4).join('\n      ')}\n`) +
          (file === undefined ? '' : `      saved: ${file} (replay: npm run fuzz -- --replay ${file})\n`),
      )
    },
    ...(values.verbose
      ? {
          onCase: (c: FuzzCaseEvent) => {
            process.stdout.write(
              `  #${c.iteration} ${c.baseLabel}${c.build === 'browser' ? ' (browser build)' : ''} ${c.mutation} -> ${c.outcome} (${c.durationMs.toFixed(2)} ms)\n`,
            )
          },
        }
      : {}),
  })
} catch (error) {
  process.stderr.write(`fuzz: setup failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`)
  process.exit(2)
}
Atomics.store(shared, 0, 0)
void watchdog.terminate()

if (values.json) process.stdout.write(`${JSON.stringify(report, null, 2)}\n`)

const lines = [
  `fuzz: corpus ${report.corpusSize} messages built in ${report.corpusBuildMs} ms; ` +
    `${report.skippedIdentical} identity mutations skipped; mean ${report.meanDecryptMs} ms, p50 ${report.p50DecryptMs} ms, ` +
    `slowest iteration ${report.slowestIteration}; heap ${report.heapStartMB} -> ${report.heapEndMB} MB (gc ${report.gcAvailable ? 'on' : 'off'}); ` +
    `total ${((Date.now() - started) / 1000).toFixed(1)} s${report.stoppedEarly ? ' (time budget reached)' : ''}`,
  `fuzz: runs per mutation: ${Object.entries(report.byMutation)
    .map(([kind, s]) => `${kind}=${s.runs}${s.failures > 0 ? `(${s.failures} failed)` : ''}`)
    .join(' ')}`,
]
for (const w of report.corpusWarnings) lines.push(`fuzz: corpus warning: ${w}`)
for (const w of report.warnings) lines.push(`fuzz: warning: ${w}`)
if (report.failures > 0) {
  lines.push(`fuzz: ${report.failures} failure(s) in ${report.failureGroups.length} group(s):`, formatFailures(report))
  if (savedFiles.length > 0) lines.push(`fuzz: ${savedFiles.length} failing case(s) saved under ${saveDir}`)
}
lines.push(summaryLine(report))
process.stdout.write(`${lines.join('\n')}\n`)
// Exit explicitly: an abandoned (hung) decrypt could otherwise keep the process alive. stdout is synchronous for
// files and pipes on Linux, so nothing written above is lost.
process.exit(report.failures > 0 ? 1 : 0)
