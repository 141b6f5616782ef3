// The kms-envelope-kms-emulator command, run from source (package.test.ts runs the built one a user installs):
// its options, what it prints, and how it exits.
import { spawn } from 'node:child_process'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { DescribeKeyCommand, KMSClient } from '@aws-sdk/client-kms'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { CHILD_TIMEOUT } from './helpers/fixtures.js'

const CLI = fileURLToPath(new URL('../src/testing/cli.ts', import.meta.url))
const NAME = 'kms-envelope-kms-emulator'

interface Run {
  readonly code: number | null
  readonly stdout: string
  readonly stderr: string
}

/**
 * Run the command with `args`. Without `stop`, wait for it to exit; with `stop`, wait until it says it is ready,
 * call `stop` with what it printed, then end it with `signal`.
 */
function cli(args: string[], stop?: (stdout: string) => Promise<void>, signal: NodeJS.Signals = 'SIGTERM'): Promise<Run> {
  const child = spawn(process.execPath, ['--import', 'tsx', CLI, ...args], { cwd: fileURLToPath(new URL('..', import.meta.url)), ...CHILD_TIMEOUT })
  let stdout = ''
  let stderr = ''
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()))
  return new Promise((resolve, reject) => {
    let stopping = false
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString()
      if (stop !== undefined && !stopping && stdout.includes('Press Ctrl-C to stop.\n')) {
        stopping = true
        stop(stdout).then(
          () => child.kill(signal),
          (error: unknown) => {
            child.kill('SIGKILL')
            reject(error)
          },
        )
      }
    })
    child.once('error', reject)
    child.once('exit', (code) => resolve({ code, stdout, stderr }))
  })
}

const usage = (run: Run) => run.stderr.includes('Usage: kms-envelope-kms-emulator [options]')

describe('kms-envelope-kms-emulator', () => {
  let directory: string
  beforeAll(async () => {
    directory = await mkdtemp(join(tmpdir(), 'kms-emulator-cli-'))
  })
  afterAll(async () => {
    await rm(directory, { recursive: true, force: true })
  })

  it('--help prints the usage and exits 0', async () => {
    const run = await cli(['--help'])
    expect(run.code).toBe(0)
    expect(run.stdout).toMatch(/^Usage: kms-envelope-kms-emulator \[options\]\n/)
    for (const option of ['--port', '--host', '--regions', '--account-id', '--state', '--cors-origin', '--create-key', '--create-mrk']) {
      expect(run.stdout).toContain(`  ${option} `)
    }
    expect((await cli(['-h'])).stdout).toBe(run.stdout)
  })

  it.each([
    [['--nope'], `${NAME}: Unknown option '--nope'`],
    [['extra'], `${NAME}: Unexpected argument 'extra'`],
    [['--port'], `${NAME}: Option '--port <value>' argument missing`],
    [['--port', '65536'], `${NAME}: --port must be a number from 0 to 65535; got 65536`],
    [['--port=-1'], `${NAME}: --port must be a number from 0 to 65535; got -1`],
    [['--port', '4e3'], `${NAME}: --port must be a number from 0 to 65535; got 4e3`],
  ])('%j is refused with exit code 2, its reason and the usage', async (args, reason) => {
    const run = await cli(args)
    expect(run.code).toBe(2)
    expect(run.stderr.startsWith(reason)).toBe(true)
    expect(usage(run)).toBe(true)
    expect(run.stdout).toBe('')
  })

  it('options the emulator refuses end it with exit code 1 and the emulator\'s message, without the usage', async () => {
    const cases: [string[], string][] = [
      [['--regions', 'us-east-1,US-WEST-2'], 'regions must be a non-empty list of Region names such as "us-east-1"; got "US-WEST-2".'],
      [['--account-id', '12'], 'accountId must be a string of 12 digits; got "12".'],
      [['--cors-origin', 'localhost:5173'], 'corsOrigins must be a list of origins such as "http://localhost:5173", or "*" for any; got "localhost:5173".'],
      [['--host', '192.0.2.1'], 'The KMS emulator cannot listen on 192.0.2.1 port 0 ('],
    ]
    for (const [args, message] of cases) {
      const run = await cli(['--port', '0', ...args])
      // One line: the emulator's message alone.
      expect([run.code, run.stderr.startsWith(`${NAME}: ${message}`), run.stderr.trimEnd().split('\n').length, usage(run)], args.join(' ')).toEqual([1, true, 1, false])
    }
  })

  it('stops cleanly on SIGINT (Ctrl-C) too', async () => {
    const run = await cli(['--port', '0'], async () => undefined, 'SIGINT')
    expect([run.code, run.stderr]).toEqual([0, ''])
  })

  it('creates the keys asked for, keeps them in its state file, and stops cleanly on SIGTERM', async () => {
    const state = join(directory, 'state.json')
    const args = ['--port', '0', '--regions', ' us-east-1, eu-west-1 ,', '--account-id', '444455556666', '--state', state]
    const first = await cli([...args, '--create-key', '--create-mrk', '--cors-origin', 'https://app.example, http://localhost:5173'], async () => {})
    expect(first.code).toBe(0)
    const lines = first.stdout.split('\n')
    expect(lines[0]).toMatch(/^KMS emulator listening on http:\/\/127\.0\.0\.1:\d+ \(Regions: us-east-1, eu-west-1; account 444455556666\)$/)
    expect(lines.slice(1)).toEqual([
      expect.stringMatching(/^symmetric key: arn:aws:kms:us-east-1:444455556666:key\/[0-9a-f-]{36}$/),
      expect.stringMatching(/^multi-Region key: arn:aws:kms:us-east-1:444455556666:key\/mrk-[0-9a-f]{32}$/),
      expect.stringMatching(/^ {2}replica: arn:aws:kms:eu-west-1:444455556666:key\/mrk-[0-9a-f]{32}$/),
      'web pages that may call it: https://app.example, http://localhost:5173',
      'Press Ctrl-C to stop.',
      '',
    ])
    expect(first.stderr).toBe('')
    const arns = lines.slice(1, 4).map((line) => line.slice(line.indexOf('arn:')))
    expect(JSON.parse(await readFile(state, 'utf8')).keys).toHaveLength(3)

    // Started again on the same state file, it serves those keys; '*' is shown as any page.
    const second = await cli([...args, '--cors-origin', '*'], async (stdout) => {
      const endpoint = /(http:\/\/\S+)/.exec(stdout)![1]!
      const kms = new KMSClient({ region: 'eu-west-1', endpoint, credentials: { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'x' }, maxAttempts: 1 })
      try {
        const replica = (await kms.send(new DescribeKeyCommand({ KeyId: arns[2] }))).KeyMetadata!
        expect(replica.MultiRegionConfiguration?.PrimaryKey?.Arn).toBe(arns[1])
      } finally {
        kms.destroy()
      }
    })
    expect(second.code).toBe(0)
    expect(second.stdout).toContain('web pages that may call it: any\n')
    expect(second.stdout).not.toContain('key: ')
    // A list with no origin in it allows no page, and says nothing about pages.
    const none = await cli(['--port', '0', '--cors-origin', ' , '], async () => {})
    expect([none.code, none.stdout]).toEqual([0, expect.not.stringContaining('web pages')])
  })

  it('warns when it listens on an address other machines may reach, and only then', async () => {
    const warning = `${NAME}: warning: listening on 0.0.0.0, which other machines may reach.`
    const open = await cli(['--port', '0', '--host', '0.0.0.0'], async () => {})
    expect(open.stderr.startsWith(warning)).toBe(true)
    // Without --port it takes any free port.
    for (const host of ['localhost', '127.0.0.2']) {
      const run = await cli(['--host', host], async () => {})
      expect([run.code, run.stderr], host).toEqual([0, ''])
    }
    // ::1 is loopback too (on a machine without IPv6 the start fails, but with no warning either).
    expect((await cli(['--port', '0', '--host', '::1'], async () => {})).stderr).not.toContain('warning')
  })

  it('takes --port 65535, the highest port (which another process may hold: then listening fails, not the option)', async () => {
    const run = await cli(['--port', '65535'], async () => {})
    expect(run.stderr).not.toContain('--port must be')
    expect(run.code === 0 ? run.stdout : run.stderr).toMatch(run.code === 0 ? /listening on http:\/\/127\.0\.0\.1:65535 / : /cannot listen on 127\.0\.0\.1 port 65535/)
  })
})
