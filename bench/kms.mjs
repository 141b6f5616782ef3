// KMS benchmark for kms-envelope: KMS round trips per message and message latency through AWS KMS
// keyrings, on the local KMS emulator (kms-envelope/testing) over loopback, ours vs the official AWS
// Encryption SDK (@aws-crypto/client-node) in the same run.
//
//   npx tsup && node bench/kms.mjs [--quick] [--latency=MS] [--strict]
//
// --quick       fewer operations per round: a smoke check of the harness
// --strict      exit with status 1 when a target is missed (otherwise only a crash does)
// --latency=MS  also add MS milliseconds to every emulator response (a rough stand-in for a network)
//
// Both contenders use a single symmetric KMS key (ours: KmsKeyring, official: KmsKeyringNode) and the
// real @aws-sdk/client-kms over HTTP to the emulator. Round trips are counted by the emulator itself;
// a single-key keyring must make exactly one call per encrypt (GenerateDataKey) and one per decrypt
// (Decrypt). Latency: 1 KiB and 1 MiB messages, one operation at a time, rounds alternating between
// contenders, median of per-round medians; decrypts cycle through distinct messages (one signer each). At
// 1 MiB a signed message's signature check (ours) overlaps the KMS call, which --latency makes visible.

import { randomFillSync } from 'node:crypto'
import { cyclingDecryptor, distinctMessages, loadOursWithEmulator } from './lib/contenders.mjs'
import { fmtNum, fmtRatio, hex, median, pairedRatio, printTable } from './lib/stats.mjs'

const args = process.argv.slice(2)
const QUICK = args.includes('--quick')
const STRICT = args.includes('--strict')
const latencyArg = args.find((a) => a.startsWith('--latency='))
const INJECTED_LATENCY_MS = latencyArg ? Number(latencyArg.slice(10)) : 0
const CFG = QUICK
  ? { countOps: 5, rounds: 2, opsPerRound: 10, largeOpsPerRound: 2, warmup: 5 }
  : { countOps: 50, rounds: 7, opsPerRound: 100, largeOpsPerRound: 15, warmup: 30 }
const SUITES = [0x0478, 0x0578]
const REGION = 'us-east-1'
const CREDENTIALS = { accessKeyId: 'AKIDBENCHMARK', secretAccessKey: 'benchmark-secret' }
const ENCRYPTION_CONTEXT = Object.freeze({ purpose: 'benchmark', tenant: 'acme-corp' })

const log = (line = '') => console.log(line)
const heading = (text) => log(`\n== ${text} ${'='.repeat(Math.max(0, 96 - text.length))}`)
const targets = []

/** Ours and the official SDK, each with a single-key KMS keyring whose client talks to the emulator. */
async function contenders(lib, endpoint, keyArn) {
  const { KMS } = await import('@aws-sdk/client-kms')
  const clientConfig = { endpoint, credentials: CREDENTIALS }
  const oursKeyring = new lib.KmsKeyring({ generatorKeyId: keyArn, clientSupplier: lib.defaultKmsClientSupplier({ clientConfig }) })
  const mod = await import('@aws-crypto/client-node')
  const sdk = mod.buildClient ? mod : mod.default
  const officialKeyring = new sdk.KmsKeyringNode({ generatorKeyId: keyArn, clientProvider: sdk.getClient(KMS, clientConfig) })
  const official = sdk.buildClient(sdk.CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT)
  return [
    {
      name: 'ours',
      encrypt: async (suite, plaintext) =>
        (await lib.encrypt(oursKeyring, plaintext, { algorithmSuite: suite, encryptionContext: ENCRYPTION_CONTEXT })).ciphertext,
      decrypt: async (ciphertext) => (await lib.decrypt(oursKeyring, ciphertext, { encryptionContext: ENCRYPTION_CONTEXT })).plaintext,
    },
    {
      name: 'official',
      encrypt: async (suite, plaintext) =>
        (await official.encrypt(officialKeyring, plaintext, { suiteId: suite, encryptionContext: { ...ENCRYPTION_CONTEXT } })).result,
      decrypt: async (ciphertext) => (await official.decrypt(officialKeyring, ciphertext)).plaintext,
    },
  ]
}

async function roundTrips(kms, list, plaintext) {
  heading('KMS round trips per message (single-key keyring, counted by the emulator)')
  const rows = []
  for (const suite of SUITES) {
    for (const c of list) {
      const messages = []
      kms.resetCalls()
      for (let i = 0; i < CFG.countOps; i++) messages.push(await c.encrypt(suite, plaintext))
      const encryptCalls = kms.calls.length / CFG.countOps
      const encryptDetail = describeCalls(kms.calls)
      kms.resetCalls()
      for (const message of messages) {
        const out = await c.decrypt(message)
        if (Buffer.compare(Buffer.from(out), plaintext) !== 0) throw new Error(`${c.name} round trip changed the plaintext`)
      }
      const decryptCalls = kms.calls.length / CFG.countOps
      const decryptDetail = describeCalls(kms.calls)
      for (const [op, calls, detail] of [['encrypt', encryptCalls, encryptDetail], ['decrypt', decryptCalls, decryptDetail]]) {
        const ok = calls === 1
        rows.push({ contender: c.name, suite: hex(suite), op, calls: fmtNum(calls, 2), detail, target: c.name === 'ours' ? '1' : '-', result: c.name === 'ours' ? (ok ? 'PASS' : 'FAIL') : '' })
        if (c.name === 'ours') targets.push({ figure: `${hex(suite)} ${op}: KMS calls per message`, value: fmtNum(calls, 2), target: '= 1', ok })
      }
    }
  }
  printTable(
    [
      { key: 'contender', title: 'contender', align: 'left' },
      { key: 'suite', title: 'suite', align: 'left' },
      { key: 'op', title: 'op', align: 'left' },
      { key: 'calls', title: 'KMS calls/msg', align: 'right' },
      { key: 'detail', title: 'operations seen', align: 'left' },
      { key: 'target', title: 'target', align: 'right' },
      { key: 'result', title: 'result', align: 'left' },
    ],
    rows,
    log,
  )
}

function describeCalls(calls) {
  const counts = new Map()
  for (const call of calls) counts.set(call.operation, (counts.get(call.operation) ?? 0) + 1)
  return [...counts].map(([operation, n]) => `${operation} x${n}`).join(', ') || 'none'
}

async function latency(list, plaintext, opsPerRound) {
  const size = plaintext.length >= 1 << 20 ? `${plaintext.length >> 20} MiB` : `${plaintext.length >> 10} KiB`
  heading(`Latency of ${size} messages through the emulator${INJECTED_LATENCY_MS ? ` (+${INJECTED_LATENCY_MS} ms per KMS call)` : ''}, median us/op`)
  const rows = []
  for (const suite of SUITES) {
    // Decrypts cycle through distinct messages, so each imports its own signer's key (see DISTINCT_MESSAGES).
    const decryptors = new Map()
    for (const c of list) decryptors.set(c.name, cyclingDecryptor(c.decrypt, await distinctMessages((p) => c.encrypt(suite, p), plaintext)))
    for (const op of ['encrypt', 'decrypt']) {
      const samples = new Map(list.map((c) => [c.name, []]))
      const run = (c) => (op === 'encrypt' ? c.encrypt(suite, plaintext) : decryptors.get(c.name)())
      for (const c of list) for (let i = 0; i < CFG.warmup; i++) await run(c)
      for (let round = 0; round < CFG.rounds; round++) {
        const order = round % 2 === 0 ? list : [...list].reverse()
        for (const c of order) {
          const times = []
          for (let i = 0; i < opsPerRound; i++) {
            const t = performance.now()
            await run(c)
            times.push((performance.now() - t) * 1000)
          }
          samples.get(c.name).push(median(times))
        }
      }
      const ours = samples.get('ours')
      const official = samples.get('official')
      rows.push({
        suite: hex(suite),
        op,
        ours: fmtNum(median(ours), 0),
        official: fmtNum(median(official), 0),
        speedup: fmtRatio(pairedRatio(official, ours)),
      })
    }
  }
  printTable(
    [
      { key: 'suite', title: 'suite', align: 'left' },
      { key: 'op', title: 'op', align: 'left' },
      { key: 'ours', title: 'ours us/op', align: 'right' },
      { key: 'official', title: 'official us/op', align: 'right' },
      { key: 'speedup', title: 'official/ours', align: 'right' },
    ],
    rows,
    log,
  )
  log('  each figure includes the HTTP round trip to the emulator on loopback (the emulator runs in this process)')
}

async function main() {
  const started = performance.now()
  const { lib, testing } = await loadOursWithEmulator()
  const kms = await testing.startKmsEmulator({ regions: [REGION] })
  try {
    const key = kms.createKey({ region: REGION })
    if (INJECTED_LATENCY_MS > 0) kms.faults.latency(INJECTED_LATENCY_MS)
    const list = await contenders(lib, kms.endpoint, key.arn)
    const plaintext = randomFillSync(Buffer.alloc(1024))
    await roundTrips(kms, list, plaintext)
    await latency(list, plaintext, CFG.opsPerRound)
    await latency(list, randomFillSync(Buffer.alloc(1 << 20)), CFG.largeOpsPerRound)
  } finally {
    await kms.close()
  }
  heading('Targets')
  for (const t of targets) log(`  ${t.ok ? 'PASS' : 'FAIL'}  ${t.figure}: ${t.value} (target ${t.target})`)
  log(`  ${targets.filter((t) => t.ok).length}/${targets.length} targets met`)
  log(`\ntotal time: ${((performance.now() - started) / 1000).toFixed(1)} s`)
  if (STRICT && targets.some((t) => !t.ok)) process.exitCode = 1
}

main().catch((error) => {
  console.error(error)
  process.exitCode = 1
})
