// Data-key caching benchmark for kms-envelope: operations per second for 1 KiB messages through AWS KMS
// keyrings on the local KMS emulator (kms-envelope/testing) with 2 ms injected into every KMS call, with
// and without a caching materials manager, ours vs the official AWS Encryption SDK (@aws-crypto/client-node)
// in the same run.
//
//   npx tsup && node bench/cache.mjs [--quick] [--strict]
//
// --strict  exit with status 1 when a target is missed (otherwise only a crash does, so `npm run bench`
//           goes on to the benchmarks after this one)
//
// Contenders, for suites 0x0478 and 0x0578:
//   ours          KmsKeyring                                   (one KMS call per message)
//   ours+cache    CachingMaterialsManager + LocalMaterialsCache
//   official      KmsKeyringNode                               (one KMS call per message)
//   official+cache NodeCachingMaterialsManager + getLocalCryptographicMaterialsCache
// Both caches: capacity 100, maxAge 10 minutes, maxMessagesEncrypted 1000 (so a cached run still makes one
// KMS call per 1000 encrypts). Operations run one at a time; rounds alternate between contenders and the
// cached ratio is the median of per-round ratios. Target: ours+cache at least 2x official+cache.
//
// For the signing suite (0x0578) both sides spend most of a cached operation in one ECDSA P-384 signature
// (encrypt) or verification (decrypt) through OpenSSL, which no caching removes. The run measures that bare
// cost on the same machine and prints, for information, the ceiling it puts on the ratio (official+cache
// time / bare ECDSA time), the ratio of the time beyond it, and, measured side by side, ours+cache on 0x0578
// against a bare ECDSA operation followed by ours+cache on 0x0478 (0x0578 with nothing added but the ECDSA
// step). Targets are judged on the plain ratio.

import { createSign, createVerify, generateKeyPairSync, randomFillSync } from 'node:crypto'
import v8 from 'node:v8'
import vm from 'node:vm'
import { loadOursWithEmulator } from './lib/contenders.mjs'
import { fmtNum, fmtRatio, hex, median, pairedRatio, printTable } from './lib/stats.mjs'

const QUICK = process.argv.includes('--quick')
const STRICT = process.argv.includes('--strict')
const CFG = QUICK
  ? { rounds: 3, cachedOps: 200, uncachedOps: 20, warmup: 50 }
  : { rounds: 7, cachedOps: 1500, uncachedOps: 100, warmup: 300 }
const SUITES = [0x0478, 0x0578]
const LATENCY_MS = 2
const TARGET_RATIO = 2
const REGION = 'us-east-1'
const CREDENTIALS = { accessKeyId: 'AKIDBENCHMARK', secretAccessKey: 'benchmark-secret' }
const ENCRYPTION_CONTEXT = Object.freeze({ purpose: 'benchmark', tenant: 'acme-corp' })
const CACHE = { capacity: 100, maxAge: 10 * 60_000, maxMessagesEncrypted: 1000 }

// A full collection before each contender's round, so one contender's garbage is not collected on the
// other's time (both run in this process). Enabled at run time: the npm script is plain `node bench/cache.mjs`.
v8.setFlagsFromString('--expose-gc')
const collectGarbage = vm.runInNewContext('gc')

const log = (line = '') => console.log(line)
const heading = (text) => log(`\n== ${text} ${'='.repeat(Math.max(0, 96 - text.length))}`)

async function contenders(lib, endpoint, keyArn) {
  const { KMS } = await import('@aws-sdk/client-kms')
  const clientConfig = { endpoint, credentials: CREDENTIALS }
  const keyring = new lib.KmsKeyring({ generatorKeyId: keyArn, clientSupplier: lib.defaultKmsClientSupplier({ clientConfig }) })
  const oursCached = new lib.CachingMaterialsManager({
    keyring,
    cache: new lib.LocalMaterialsCache({ capacity: CACHE.capacity }),
    maxAge: CACHE.maxAge,
    maxMessagesEncrypted: CACHE.maxMessagesEncrypted,
  })
  const mod = await import('@aws-crypto/client-node')
  const sdk = mod.buildClient ? mod : mod.default
  const officialKeyring = new sdk.KmsKeyringNode({ generatorKeyId: keyArn, clientProvider: sdk.getClient(KMS, clientConfig) })
  const officialCached = new sdk.NodeCachingMaterialsManager({
    backingMaterials: officialKeyring,
    cache: sdk.getLocalCryptographicMaterialsCache(CACHE.capacity),
    maxAge: CACHE.maxAge,
    maxMessagesEncrypted: CACHE.maxMessagesEncrypted,
  })
  const official = sdk.buildClient(sdk.CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT)
  const ours = (name, manager, cached) => ({
    name,
    cached,
    encrypt: async (suite, plaintext) =>
      (await lib.encrypt(manager, plaintext, { algorithmSuite: suite, encryptionContext: ENCRYPTION_CONTEXT })).ciphertext,
    decrypt: async (ciphertext) => (await lib.decrypt(manager, ciphertext, { encryptionContext: ENCRYPTION_CONTEXT })).plaintext,
  })
  const theirs = (name, manager, cached) => ({
    name,
    cached,
    encrypt: async (suite, plaintext) =>
      (await official.encrypt(manager, plaintext, { suiteId: suite, encryptionContext: { ...ENCRYPTION_CONTEXT } })).result,
    decrypt: async (ciphertext) => (await official.decrypt(manager, ciphertext)).plaintext,
  })
  return [
    ours('ours', keyring, false),
    ours('ours+cache', oursCached, true),
    theirs('official', officialKeyring, false),
    theirs('official+cache', officialCached, true),
  ]
}

/** Operations per second of `ops` sequential calls. */
async function opsPerSecond(run, ops) {
  const started = performance.now()
  for (let i = 0; i < ops; i++) await run()
  return (ops * 1000) / (performance.now() - started)
}

/** Median microseconds of one bare P-384 signature (or verification) over a signed 1 KiB message's bytes. */
function bareEcdsa() {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-384' })
  const signed = randomFillSync(Buffer.alloc(1400))
  const signature = createSign('sha384').update(signed).sign({ key: privateKey, dsaEncoding: 'der' })
  const time = (op) => {
    const rounds = []
    for (let round = 0; round < 5; round++) {
      const started = performance.now()
      for (let i = 0; i < 200; i++) op()
      rounds.push(((performance.now() - started) * 1000) / 200)
    }
    return median(rounds)
  }
  const op = {
    encrypt: () => createSign('sha384').update(signed).sign({ key: privateKey, dsaEncoding: 'der' }),
    decrypt: () => createVerify('sha384').update(signed).verify(publicKey, signature),
  }
  return { encrypt: time(op.encrypt), decrypt: time(op.decrypt), op }
}

/**
 * Median microseconds, in alternating rounds of the same loop, of ours+cache on 0x0578 (`signed`) and of a bare
 * ECDSA operation followed by ours+cache on 0x0478 (`unsigned`): the second is what the signing suite would cost
 * if it added nothing but the ECDSA step, with the processor caches as that step leaves them (colder: the work
 * after it runs slower than in a loop of its own).
 */
async function signedAgainstChained(signed, ecdsaOp, unsigned) {
  const loops = {
    signed,
    chained: async () => {
      ecdsaOp()
      await unsigned()
    },
  }
  const rounds = { signed: [], chained: [] }
  for (let round = 0; round < 7; round++) {
    for (const [name, loop] of Object.entries(loops)) {
      const started = performance.now()
      for (let i = 0; i < 200; i++) await loop()
      rounds[name].push(((performance.now() - started) * 1000) / 200)
    }
  }
  return { signedUs: median(rounds.signed), chainedUs: median(rounds.chained) }
}

async function measure(kms, list, plaintext) {
  const rows = []
  const targets = []
  const floors = []
  const ecdsa = bareEcdsa()
  const messagesBySuite = new Map()
  for (const suite of SUITES) {
    // One message per contender, each decrypted by the contender that wrote it.
    const messages = new Map()
    messagesBySuite.set(suite, messages)
    for (const c of list) {
      const message = await c.encrypt(suite, plaintext)
      if (Buffer.compare(Buffer.from(await c.decrypt(message)), plaintext) !== 0) throw new Error(`${c.name} round trip changed the plaintext`)
      messages.set(c.name, message)
    }
    for (const op of ['encrypt', 'decrypt']) {
      const run = (c) => (op === 'encrypt' ? () => c.encrypt(suite, plaintext) : () => c.decrypt(messages.get(c.name)))
      const samples = new Map(list.map((c) => [c.name, []]))
      const calls = new Map(list.map((c) => [c.name, { ops: 0, calls: 0 }]))
      for (const c of list) {
        const warm = run(c)
        for (let i = 0; i < (c.cached ? CFG.warmup : 5); i++) await warm()
      }
      for (let round = 0; round < CFG.rounds; round++) {
        const order = round % 2 === 0 ? list : [...list].reverse()
        for (const c of order) {
          const ops = c.cached ? CFG.cachedOps : CFG.uncachedOps
          kms.resetCalls()
          // Minor, not full: a forced full GC discards optimized code, and recompiling it during the timed
          // sample competes with the work of every contender on a 2-core machine (see bench/stream.mjs).
          collectGarbage({ type: 'minor' })
          samples.get(c.name).push(await opsPerSecond(run(c), ops))
          const tally = calls.get(c.name)
          tally.ops += ops
          tally.calls += kms.calls.length
        }
      }
      const perSecond = (name) => median(samples.get(name))
      const cachedRatio = pairedRatio(samples.get('ours+cache'), samples.get('official+cache'))
      for (const c of list) {
        const tally = calls.get(c.name)
        rows.push({
          suite: hex(suite),
          op,
          contender: c.name,
          ops: fmtNum(perSecond(c.name), 0),
          calls: fmtNum((tally.calls / tally.ops) * 1000, 1),
          vsUncached: c.cached ? fmtRatio(perSecond(c.name) / perSecond(c.name.replace('+cache', ''))) : '',
          vsOfficial: c.name === 'ours+cache' ? fmtRatio(cachedRatio) : c.name === 'ours' ? fmtRatio(pairedRatio(samples.get('ours'), samples.get('official'))) : '',
        })
      }
      const figure = `${hex(suite)} ${op}: ours+cache / official+cache ops/s`
      if (suite !== 0x0578) {
        targets.push({ figure, value: fmtRatio(cachedRatio), target: `>= ${TARGET_RATIO}x`, ok: cachedRatio >= TARGET_RATIO })
        continue
      }
      const bareUs = ecdsa[op]
      const oursUs = 1e6 / perSecond('ours+cache')
      const officialUs = 1e6 / perSecond('official+cache')
      const ceiling = officialUs / bareUs
      const beyond = (officialUs - bareUs) / Math.max(oursUs - bareUs, 1)
      const oursCached = list.find((c) => c.name === 'ours+cache')
      const unsignedMessage = messagesBySuite.get(0x0478).get('ours+cache')
      const { signedUs, chainedUs } = await signedAgainstChained(
        run(oursCached),
        ecdsa.op[op],
        op === 'encrypt' ? () => oursCached.encrypt(0x0478, plaintext) : () => oursCached.decrypt(unsignedMessage),
      )
      floors.push({ figure: `${hex(suite)} ${op}`, bareUs, oursUs, officialUs, ceiling, beyond, signedUs, chainedUs })
      // Judged on the plain ratio like every other row; the ECDSA-bound figures are information only.
      targets.push({
        figure,
        value: fmtRatio(cachedRatio),
        target: `>= ${TARGET_RATIO}x`,
        ok: cachedRatio >= TARGET_RATIO,
        note: `bare ECDSA caps the ratio at ${fmtRatio(ceiling)}; time beyond it: ${fmtRatio(beyond)} the official's`,
      })
    }
  }
  return { rows, targets, floors }
}

async function main() {
  const started = performance.now()
  const { lib, testing } = await loadOursWithEmulator()
  const kms = await testing.startKmsEmulator({ regions: [REGION] })
  let result
  try {
    const key = kms.createKey({ region: REGION })
    kms.faults.latency(LATENCY_MS)
    const list = await contenders(lib, kms.endpoint, key.arn)
    const plaintext = randomFillSync(Buffer.alloc(1024))
    heading(`Data-key caching: 1 KiB messages through the KMS emulator (+${LATENCY_MS} ms per KMS call), ops/s, one at a time`)
    result = await measure(kms, list, plaintext)
  } finally {
    await kms.close()
  }
  printTable(
    [
      { key: 'suite', title: 'suite', align: 'left' },
      { key: 'op', title: 'op', align: 'left' },
      { key: 'contender', title: 'contender', align: 'left' },
      { key: 'ops', title: 'ops/s', align: 'right' },
      { key: 'calls', title: 'KMS calls/1000 ops', align: 'right' },
      { key: 'vsUncached', title: 'cache speedup', align: 'right' },
      { key: 'vsOfficial', title: 'ours/official', align: 'right' },
    ],
    result.rows,
    log,
  )
  log(`  caches: capacity ${CACHE.capacity}, maxAge ${CACHE.maxAge / 1000} s, maxMessagesEncrypted ${CACHE.maxMessagesEncrypted}`)
  log('  ours/official: median of per-round ratios (ours+cache vs official+cache; ours vs official without a cache)')
  heading('Signing suite: the bare ECDSA P-384 cost both sides pay per cached operation (node:crypto, this machine)')
  printTable(
    [
      { key: 'figure', title: 'suite op', align: 'left' },
      { key: 'bare', title: 'bare ECDSA us', align: 'right' },
      { key: 'ours', title: 'ours+cache us', align: 'right' },
      { key: 'official', title: 'official+cache us', align: 'right' },
      { key: 'ceiling', title: 'ceiling (official / bare)', align: 'right' },
      { key: 'beyond', title: 'time beyond bare: official / ours', align: 'right' },
      { key: 'signed', title: 'alone: ours+cache us', align: 'right' },
      { key: 'chained', title: 'alone: bare ECDSA + ours+cache 0x0478 us', align: 'right' },
    ],
    result.floors.map((f) => ({
      figure: f.figure,
      bare: fmtNum(f.bareUs, 0),
      ours: fmtNum(f.oursUs, 0),
      official: fmtNum(f.officialUs, 0),
      ceiling: fmtRatio(f.ceiling),
      beyond: fmtRatio(f.beyond),
      signed: fmtNum(f.signedUs, 0),
      chained: fmtNum(f.chainedUs, 0),
    })),
    log,
  )
  log('  sign (encrypt) or verify (decrypt) of 1400 bytes; the ceiling is the best ops/s ratio a zero-overhead implementation could reach')
  log('  "alone": ours without the official SDK running in between, in alternating rounds of one loop: ours+cache on 0x0578,')
  log('  and a bare ECDSA operation followed by ours+cache on 0x0478 (what 0x0578 would cost if it added only the ECDSA step;')
  log('  the work after that step runs on processor caches it left cold)')
  heading('Targets')
  for (const t of result.targets) log(`  ${t.ok ? 'PASS' : 'FAIL'}  ${t.figure}: ${t.value} (target ${t.target})${t.note ? ` — ${t.note}` : ''}`)
  log(`  ${result.targets.filter((t) => t.ok).length}/${result.targets.length} targets met`)
  log(`\ntotal time: ${((performance.now() - started) / 1000).toFixed(1)} s`)
  if (STRICT && result.targets.some((t) => !t.ok)) process.exitCode = 1
}

main().catch((error) => {
  console.error(error)
  process.exitCode = 1
})
