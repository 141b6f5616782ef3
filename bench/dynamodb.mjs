// DynamoDB item encryptor benchmark: items per second to encrypt and decrypt a 1 KB item with 10 attributes,
// through a KmsKeyring on the local KMS emulator (kms-envelope/testing, +2 ms per KMS call), with and without
// the caching materials manager, next to raw node:crypto doing the same item's cryptography in one process.
//
//   npx tsup && node bench/dynamodb.mjs [--quick]
//
// Contenders, for suites 0x6700 (HMAC recipient tag) and 0x6701 (HMAC tag + ECDSA P-384 signature):
//   ours          KmsKeyring: one KMS call per item (GenerateDataKey on encrypt, Decrypt on decrypt)
//   ours+cache    CachingMaterialsManager + LocalMaterialsCache over the same keyring
//   browser+cache the same through the browser build (kms-envelope/dynamodb's WebCrypto build, here on Node's
//                 WebCrypto): what a page, a Worker or a React Native app with WebCrypto pays per item
//   node:crypto   the floor: per item one HKDF, AES-256-GCM of the 6 encrypted attributes, SHA-384 of them,
//                 one HMAC-SHA384, and for 0x6701 one ECDSA P-384 sign (encrypt) or verify (decrypt); no KMS,
//                 no serialization, no header
// There is no official JavaScript implementation of this format to compare with.
//
// The item format binds each item's table name and primary key into its encryption context, and cached
// materials are only reused for the same context: "ours+cache" therefore rewrites and re-reads the same item
// (an update-heavy or read-heavy workload on one key); "ours" writes a fresh key every time.
import { createCipheriv, createDecipheriv, createHash, createHmac, createSign, createVerify, generateKeyPairSync, hkdfSync, randomBytes } from 'node:crypto'
import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { loadOursWithEmulator } from './lib/contenders.mjs'
import { fmtNum, fmtRatio, median, printTable } from './lib/stats.mjs'

const QUICK = process.argv.includes('--quick')
const CFG = QUICK ? { rounds: 3, cachedOps: 200, uncachedOps: 30, floorOps: 500 } : { rounds: 5, cachedOps: 1000, uncachedOps: 100, floorOps: 3000 }
const SUITES = [0x6700, 0x6701]
const LATENCY_MS = 2
const REGION = 'us-east-1'
const TABLE = 'orders'
const CREDENTIALS = { accessKeyId: 'AKIDBENCHMARK', secretAccessKey: 'benchmark-secret' }
const DYNAMODB = new URL('../dist/dynamodb/index.js', import.meta.url)
const BROWSER = new URL('../dist/browser/index.js', import.meta.url)
const BROWSER_DYNAMODB = new URL('../dist/browser/dynamodb/browser.js', import.meta.url)

const log = (line = '') => console.log(line)
const heading = (text) => log(`\n== ${text} ${'='.repeat(Math.max(0, 96 - text.length))}`)

const ACTIONS = {
  pk: 'SIGN_ONLY',
  sk: 'SIGN_ONLY',
  name: 'ENCRYPT_AND_SIGN',
  email: 'ENCRYPT_AND_SIGN',
  address: 'ENCRYPT_AND_SIGN',
  card: 'ENCRYPT_AND_SIGN',
  history: 'ENCRYPT_AND_SIGN',
  avatar: 'ENCRYPT_AND_SIGN',
  status: 'SIGN_ONLY',
  note: 'DO_NOTHING',
}
const ENCRYPTED = Object.keys(ACTIONS).filter((name) => ACTIONS[name] === 'ENCRYPT_AND_SIGN')

/** A 1 KB item with 10 attributes of mixed types. */
function item(pk) {
  return {
    pk: { S: pk },
    sk: { S: 'profile' },
    name: { S: 'Ada Lovelace-Byron, Countess of Lovelace' },
    email: { S: 'ada.lovelace@analytical-engine.example.org' },
    address: { M: { street: { S: '12 St James Square' }, city: { S: 'London' }, postcode: { S: 'SW1Y 4JH' }, country: { S: 'GB' } } },
    card: { M: { number: { S: '4111 1111 1111 1111' }, expires: { S: '12/2030' }, holder: { S: 'A. A. LOVELACE' } } },
    history: { L: Array.from({ length: 8 }, (_, i) => ({ M: { order: { S: `o-${1000 + i}` }, total: { N: `${(i * 13.37).toFixed(2)}` } } })) },
    avatar: { B: new Uint8Array(randomBytes(320)) },
    status: { S: 'active' },
    note: { S: 'prefers email; no calls before 10am' },
  }
}

function itemBytes(value) {
  return JSON.stringify(value, (_, v) => (v instanceof Uint8Array ? 'x'.repeat(v.length) : v)).length
}

async function perSecond(run, ops) {
  const started = performance.now()
  for (let i = 0; i < ops; i++) await run(i)
  return (ops * 1000) / (performance.now() - started)
}

/** node:crypto doing the item's cryptography with no KMS and no format: the floor. */
function floor(suite) {
  const key = randomBytes(32)
  const hmacKey = randomBytes(32)
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-384' })
  const plaintexts = ENCRYPTED.map((name) => Buffer.from(JSON.stringify(item('floor')[name])))
  const seal = () => {
    const root = Buffer.from(hkdfSync('sha512', key, Buffer.alloc(0), 'AWS_DBE_DERIVE_KEY', 32))
    const hash = createHash('sha384')
    const sealed = plaintexts.map((plaintext, index) => {
      const iv = Buffer.alloc(12)
      iv.writeUInt32BE(index, 8)
      const cipher = createCipheriv('aes-256-gcm', root, iv)
      const out = Buffer.concat([cipher.update(plaintext), cipher.final(), cipher.getAuthTag()])
      hash.update(out)
      return out
    })
    const digest = hash.digest()
    const tag = createHmac('sha384', hmacKey).update(digest).digest()
    const signature = suite === 0x6701 ? createSign('sha384').update(digest).sign(privateKey) : undefined
    return { root, sealed, digest, tag, signature }
  }
  const sample = seal()
  return {
    encrypt: () => seal(),
    decrypt: () => {
      const root = Buffer.from(hkdfSync('sha512', key, Buffer.alloc(0), 'AWS_DBE_DERIVE_KEY', 32))
      const hash = createHash('sha384')
      for (const out of sample.sealed) hash.update(out)
      const digest = hash.digest()
      createHmac('sha384', hmacKey).update(digest).digest()
      if (sample.signature !== undefined && !createVerify('sha384').update(digest).verify(publicKey, sample.signature)) throw new Error('floor verify')
      sample.sealed.forEach((out, index) => {
        const iv = Buffer.alloc(12)
        iv.writeUInt32BE(index, 8)
        const decipher = createDecipheriv('aes-256-gcm', root, iv)
        decipher.setAuthTag(out.subarray(out.length - 16))
        decipher.update(out.subarray(0, out.length - 16))
        decipher.final()
      })
    },
  }
}

async function main() {
  const started = performance.now()
  if (!existsSync(fileURLToPath(DYNAMODB))) throw new Error(`${fileURLToPath(DYNAMODB)} does not exist (run \`npx tsup\` first)`)
  const { lib, testing } = await loadOursWithEmulator()
  const { DynamoDbItemEncryptor } = await import(DYNAMODB.href)
  const browser = await import(BROWSER.href)
  const { DynamoDbItemEncryptor: BrowserItemEncryptor } = await import(BROWSER_DYNAMODB.href)
  const kms = await testing.startKmsEmulator({ regions: [REGION] })
  const rows = []
  try {
    const { arn } = kms.createKey({ region: REGION })
    kms.faults.latency(LATENCY_MS)
    const clientSupplier = lib.defaultKmsClientSupplier({ clientConfig: { endpoint: kms.endpoint, credentials: CREDENTIALS } })
    const keyring = new lib.KmsKeyring({ generatorKeyId: arn, clientSupplier })
    const browserKeyring = new browser.KmsKeyring({ generatorKeyId: arn, clientSupplier: browser.defaultKmsClientSupplier({ clientConfig: { endpoint: kms.endpoint, credentials: CREDENTIALS } }) })
    heading(`DynamoDB items: 1 KB, 10 attributes (6 encrypted), KMS emulator +${LATENCY_MS} ms per call, items/s one at a time`)
    log(`  item: ${itemBytes(item('u-000000'))} bytes as JSON; ${Object.values(ACTIONS).filter((a) => a === 'ENCRYPT_AND_SIGN').length} ENCRYPT_AND_SIGN, 3 SIGN_ONLY, 1 DO_NOTHING`)
    for (const suite of SUITES) {
      const config = { tableName: TABLE, partitionKeyName: 'pk', sortKeyName: 'sk', attributeActionsOnEncrypt: ACTIONS, allowedUnsignedAttributes: ['note'], algorithmSuite: suite }
      const plain = new DynamoDbItemEncryptor({ ...config, keyring })
      const cached = new DynamoDbItemEncryptor({
        ...config,
        materialsManager: new lib.CachingMaterialsManager({ keyring, cache: new lib.LocalMaterialsCache({ capacity: 1000 }), maxAge: 10 * 60_000, maxMessagesEncrypted: 100_000 }),
      })
      const inBrowser = new BrowserItemEncryptor({
        ...config,
        materialsManager: new browser.CachingMaterialsManager({ keyring: browserKeyring, cache: new browser.LocalMaterialsCache({ capacity: 1000 }), maxAge: 10 * 60_000, maxMessagesEncrypted: 100_000 }),
      })
      const one = item('u-cached')
      const stored = await plain.encryptItem(one)
      const storedCached = await cached.encryptItem(one)
      const storedInBrowser = await inBrowser.encryptItem(one)
      if ((await cached.decryptItem(storedInBrowser)).card.M.number.S !== one.card.M.number.S) throw new Error('the browser build wrote an item the Node build does not read')
      const decrypted = await cached.decryptItem(storedCached)
      if (decrypted.card.M.number.S !== one.card.M.number.S || Buffer.compare(decrypted.avatar.B, one.avatar.B) !== 0) throw new Error('round trip changed the item')
      const base = floor(suite)
      const results = { encrypt: {}, decrypt: {} }
      for (const op of ['encrypt', 'decrypt']) {
        const samples = { ours: [], 'ours+cache': [], 'browser+cache': [], 'node:crypto': [] }
        const calls = { ours: 0, 'ours+cache': 0, 'browser+cache': 0 }
        const ops = { ours: 0, 'ours+cache': 0, 'browser+cache': 0 }
        for (let round = 0; round < CFG.rounds; round++) {
          kms.resetCalls()
          samples.ours.push(await perSecond((i) => (op === 'encrypt' ? plain.encryptItem(item(`u-${round}-${i}`)) : plain.decryptItem(stored)), CFG.uncachedOps))
          calls.ours += kms.calls.length
          ops.ours += CFG.uncachedOps
          kms.resetCalls()
          samples['ours+cache'].push(await perSecond(() => (op === 'encrypt' ? cached.encryptItem(one) : cached.decryptItem(storedCached)), CFG.cachedOps))
          calls['ours+cache'] += kms.calls.length
          ops['ours+cache'] += CFG.cachedOps
          kms.resetCalls()
          samples['browser+cache'].push(await perSecond(() => (op === 'encrypt' ? inBrowser.encryptItem(one) : inBrowser.decryptItem(storedInBrowser)), CFG.cachedOps))
          calls['browser+cache'] += kms.calls.length
          ops['browser+cache'] += CFG.cachedOps
          samples['node:crypto'].push(await perSecond(() => base[op](), CFG.floorOps))
        }
        for (const name of Object.keys(samples)) results[op][name] = median(samples[name])
        for (const name of Object.keys(samples)) {
          rows.push({
            suite: `0x${suite.toString(16)}`,
            op,
            contender: name,
            rate: fmtNum(results[op][name], 0),
            calls: name in calls ? fmtNum((calls[name] / ops[name]) * 1000, 1) : '',
            speedup: name.endsWith('+cache') ? fmtRatio(results[op][name] / results[op].ours) : '',
            floor: name === 'node:crypto' ? '' : fmtRatio(results[op]['node:crypto'] / results[op][name]),
          })
        }
      }
    }
  } finally {
    await kms.close()
  }
  printTable(
    [
      { key: 'suite', title: 'suite', align: 'left' },
      { key: 'op', title: 'op', align: 'left' },
      { key: 'contender', title: 'contender', align: 'left' },
      { key: 'rate', title: 'items/s', align: 'right' },
      { key: 'calls', title: 'KMS calls/1000 items', align: 'right' },
      { key: 'speedup', title: 'cache speedup', align: 'right' },
      { key: 'floor', title: 'node:crypto floor / this', align: 'right' },
    ],
    rows,
    log,
  )
  log('  medians of rounds; "node:crypto floor / this": how many times slower than the bare cryptography of the same item')
  log('  no official JavaScript implementation of the DynamoDB item format exists to compare with')
  log(`\ntotal time: ${((performance.now() - started) / 1000).toFixed(1)} s`)
}

main().catch((error) => {
  console.error(error)
  process.exitCode = 1
})
