#!/usr/bin/env node
// kms-envelope-kms-emulator: run the local KMS emulator until Ctrl-C, for demos and manual testing.
import { parseArgs } from 'node:util'
import { startKmsEmulator, type KmsEmulatorOptions } from './kms-emulator.js'

const USAGE = `Usage: kms-envelope-kms-emulator [options]

Runs a local AWS KMS emulator (KMS JSON 1.1 over HTTP) until interrupted.
Point the AWS SDK at it with { endpoint: <printed endpoint>, region, credentials: any access key }.

Options:
  --port <n>               port to listen on (default 0: any free port)
  --host <address>         address to listen on (default 127.0.0.1)
  --regions <list>         comma-separated Regions served (default us-east-1,us-west-2,eu-west-1)
  --account-id <digits>    12-digit account in key ARNs (default 111122223333)
  --state <file>           load keys from this JSON file and save every change to it (it holds key material)
  --cors-origin <list>     comma-separated origins of web pages that may call it from a browser
                           (http://localhost:5173, say; * for any page: then any site you open can use its keys)
  --create-key             create a symmetric key in the first Region and print its ARN
  --create-mrk             create a multi-Region key in the first Region, replicate it to the others, print the ARNs
  -h, --help               show this help
`

/** Whether `host` is this machine's loopback address, which no other machine reaches. */
function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || host === '[::1]' || /^127\.\d+\.\d+\.\d+$/.test(host)
}

function fail(message: string): never {
  process.stderr.write(`kms-envelope-kms-emulator: ${message}\n\n${USAGE}`)
  process.exit(2)
}

async function main(): Promise<void> {
  let parsed
  try {
    parsed = parseArgs({
      options: {
        port: { type: 'string' },
        host: { type: 'string' },
        regions: { type: 'string' },
        'account-id': { type: 'string' },
        state: { type: 'string' },
        'cors-origin': { type: 'string' },
        'create-key': { type: 'boolean' },
        'create-mrk': { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
      allowPositionals: false,
    })
  } catch (error) {
    fail(error instanceof Error ? error.message : String(error))
  }
  const { values } = parsed
  if (values.help) {
    process.stdout.write(USAGE)
    return
  }
  const options: KmsEmulatorOptions = {}
  if (values.port !== undefined) {
    const port = Number(values.port)
    if (!/^\d+$/.test(values.port) || port > 65_535) fail(`--port must be a number from 0 to 65535; got ${values.port}`)
    options.port = port
  }
  if (values.host !== undefined) options.host = values.host
  if (values.regions !== undefined) options.regions = values.regions.split(',').map((region) => region.trim()).filter(Boolean)
  if (values['account-id'] !== undefined) options.accountId = values['account-id']
  if (values.state !== undefined) options.statePath = values.state
  if (values['cors-origin'] !== undefined) options.corsOrigins = values['cors-origin'].split(',').map((origin) => origin.trim()).filter(Boolean)

  let emulator
  try {
    emulator = await startKmsEmulator(options)
  } catch (error) {
    process.stderr.write(`kms-envelope-kms-emulator: ${error instanceof Error ? error.message : String(error)}\n`)
    process.exit(1)
  }
  // Before the first line is printed: a script that starts the emulator, reads the endpoint and stops it at
  // once must get a clean close, not Node's default end of the process on a signal nothing handles yet.
  const running = emulator
  const stop = (): void => {
    running.close().then(
      () => process.exit(0),
      () => process.exit(1),
    )
  }
  process.once('SIGINT', stop)
  process.once('SIGTERM', stop)
  const [firstRegion, ...otherRegions] = emulator.regions as [string, ...string[]]
  process.stdout.write(`KMS emulator listening on ${emulator.endpoint} (Regions: ${emulator.regions.join(', ')}; account ${emulator.accountId})\n`)
  if (values['create-key']) {
    process.stdout.write(`symmetric key: ${emulator.createKey({ region: firstRegion }).arn}\n`)
  }
  if (values['create-mrk']) {
    const primary = emulator.createKey({ region: firstRegion, multiRegion: true })
    process.stdout.write(`multi-Region key: ${primary.arn}\n`)
    for (const region of otherRegions) process.stdout.write(`  replica: ${emulator.replicateKey(primary.arn, region).arn}\n`)
  }
  if (options.host !== undefined && !isLoopback(options.host)) {
    process.stderr.write(
      `kms-envelope-kms-emulator: warning: listening on ${options.host}, which other machines may reach. The emulator checks no ` +
        'credentials: whoever reaches it can use its keys. Listen on 127.0.0.1 (the default) unless other machines or containers must call it.\n',
    )
  }
  if (options.corsOrigins !== undefined && options.corsOrigins.length > 0) {
    process.stdout.write(`web pages that may call it: ${options.corsOrigins.includes('*') ? 'any' : options.corsOrigins.join(', ')}\n`)
  }
  process.stdout.write('Press Ctrl-C to stop.\n')
}

main().catch((error: unknown) => {
  process.stderr.write(`kms-envelope-kms-emulator: ${error instanceof Error ? error.message : String(error)}\n`)
  process.exit(1)
})
