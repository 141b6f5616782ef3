// Instructions per 1 KiB operation, ours and the message floor, counted by valgrind's callgrind: a figure that
// does not swing with the machine's speed as the timed benchmarks do, for comparing two builds or ours with
// the floor. Needs valgrind (apt-get install valgrind); not part of `npm run bench` (it takes minutes).
//
//   npm run bench:instructions [-- --suites=0x0478,0x0178 --ops=encrypt,decrypt --count=2000]
//
// Each figure is (instructions of a run doing WARM + COUNT operations - those of a run doing WARM) / COUNT, so
// start-up and warm-up cancel out. Node runs with one thread for V8's own work and fixed young-generation
// sizes, and the warm-up is long, so that garbage collection and optimization happen at the same points in
// both runs; repeated figures then agree to within a few thousand instructions (1-2%). Signing suites are left out by
// default: ours makes their key pairs on the thread pool, which callgrind runs one thread at a time.
import { execFile } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { printTable } from './lib/stats.mjs'

const run = promisify(execFile)
const option = (name, fallback) => process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3) ?? fallback
const suites = option('suites', '0x0478,0x0178').split(',').map(Number)
const ops = option('ops', 'encrypt,decrypt').split(',')
const count = Number(option('count', '2000'))
const WARM = 8000
const CHILD = fileURLToPath(new URL('./instructions-child.mjs', import.meta.url))
const NODE_FLAGS = ['--single-threaded', '--min-semi-space-size=16', '--max-semi-space-size=16']

async function instructions(name, suite, op, operations) {
  const { stderr } = await run(
    'valgrind',
    ['--tool=callgrind', '--callgrind-out-file=/dev/null', '--smc-check=all-non-file', process.execPath, ...NODE_FLAGS, CHILD, name, String(suite), op, String(WARM), String(operations)],
    { maxBuffer: 16 * 1024 * 1024 },
  )
  const collected = /Collected : (\d+)/.exec(stderr)
  if (collected === null) throw new Error(`callgrind printed no count:\n${stderr.slice(-2000)}`)
  return Number(collected[1])
}

async function perOperation(name, suite, op) {
  const [base, measured] = await Promise.all([instructions(name, suite, op, 0), instructions(name, suite, op, count)])
  return (measured - base) / count
}

try {
  await run('valgrind', ['--version'])
} catch {
  console.error('bench/instructions.mjs needs valgrind on the PATH (Debian: apt-get install valgrind).')
  process.exit(1)
}
console.log(`Instructions per 1 KiB operation (callgrind; ${WARM} warm-up operations, then ${count})`)
const rows = []
for (const suite of suites) {
  for (const op of ops) {
    const ours = await perOperation('ours', suite, op)
    const floor = await perOperation('floor', suite, op)
    rows.push({
      suite: `0x${suite.toString(16).padStart(4, '0')}`,
      op,
      ours: Math.round(ours).toLocaleString('en'),
      floor: Math.round(floor).toLocaleString('en'),
      share: `${((floor / ours) * 100).toFixed(1)}%`,
    })
  }
}
printTable(
  [
    { title: 'suite', key: 'suite', align: 'left' },
    { title: 'op', key: 'op', align: 'left' },
    { title: 'ours', key: 'ours' },
    { title: 'message floor', key: 'floor' },
    { title: 'floor/ours', key: 'share' },
  ],
  rows,
)
