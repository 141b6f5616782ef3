// The examples keep working: `npm run demo` (the README's first command), `npm run example:dynamodb` and
// `npm run example:custom-manager` each run in a child process under tsx, against the KMS emulator (and
// dynalite) they start themselves, and must print what they promise. (examples/browser-offline is driven in
// the browsers by test/browser.test.ts; its server's decrypt timeout is checked here.)
import { execFile } from 'node:child_process'
import { request } from 'node:http'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startKmsEmulator, type KmsEmulator } from '../src/testing/index.js'
import { encrypt, KmsRsaKeyring } from '../src/index.js'
import { startExampleServer } from '../examples/browser-offline/server.js'

/** Runs examples/<name> as `npm run` does, without the settings that point the demo at real AWS. */
async function runExample(name: string): Promise<string> {
  const example = fileURLToPath(new URL(`../examples/${name}`, import.meta.url))
  const env = { ...process.env }
  delete env.KMS_KEY_ARN
  delete env.KMS_REPLICA_REGION
  const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', example], { timeout: 60_000, env })
  return stdout
}

describe('examples', () => {
  it('demo.ts encrypts README.md under a multi-Region key and decrypts it through the replica, calling one Region each', async () => {
    const stdout = await runExample('demo.ts')
    expect(stdout).toMatch(/Encrypted \d+ bytes of README\.md into a \d+-byte message:\n {2}suite 0x0578, format v2, framed, frame length 4096/)
    expect(stdout).toMatch(/data key {2}wrapped by aws-kms arn:aws:kms:us-east-1:\d{12}:key\/mrk-[0-9a-f]{32} /)
    expect(stdout).toContain('  KMS calls: GenerateDataKey in us-east-1 x1\n')
    expect(stdout).toMatch(/Decrypted with the key in eu-west-1: \d+ bytes, identical to the file\.\n {2}KMS calls: Decrypt in eu-west-1 x1\n/)
    expect(stdout).toContain('Decrypt expecting another context is refused: ENCRYPTION_CONTEXT_MISMATCH: ')
  }, 60_000)

  it('demo.ts pointed at real AWS with a KMS_KEY_ARN that is no key ARN says so in one line and exits 1, without a stack trace', async () => {
    const example = fileURLToPath(new URL('../examples/demo.ts', import.meta.url))
    const env = { ...process.env, KMS_KEY_ARN: 'alias/demo' }
    const failure = await promisify(execFile)(process.execPath, ['--import', 'tsx', example], { timeout: 60_000, env }).then(
      () => undefined,
      (error: { code: number; stderr: string }) => error,
    )
    expect(failure?.code).toBe(1)
    expect(failure?.stderr).toMatch(/^The demo failed: INVALID_CONFIGURATION: KMS_KEY_ARN "alias\/demo" is not a valid AWS KMS ARN/m)
    expect(failure?.stderr).toContain('KMS_KEY_ARN')
    expect(failure?.stderr).not.toMatch(/^\s+at /m)
  }, 60_000)

  describe('demo.ts on "real AWS" (KMS_KEY_ARN set), through the AWS SDK\'s own endpoint setting pointed at an emulator', () => {
    let kms: KmsEmulator
    beforeAll(async () => {
      kms = await startKmsEmulator({ regions: ['us-east-1', 'eu-west-1'] })
    })
    afterAll(async () => {
      await kms.close()
    })

    /** Runs the demo as a user with AWS credentials would, the SDK sent to the emulator by AWS_ENDPOINT_URL_KMS. */
    async function runOnAws(settings: Record<string, string>): Promise<{ code: number; stdout: string; stderr: string }> {
      const example = fileURLToPath(new URL('../examples/demo.ts', import.meta.url))
      const env: Record<string, string | undefined> = { ...process.env, AWS_ENDPOINT_URL_KMS: kms.endpoint, AWS_ACCESS_KEY_ID: 'AKIDTEST', AWS_SECRET_ACCESS_KEY: 'test', ...settings }
      delete env.AWS_PROFILE
      delete env.AWS_SESSION_TOKEN
      if (settings.KMS_REPLICA_REGION === undefined) delete env.KMS_REPLICA_REGION
      return promisify(execFile)(process.execPath, ['--import', 'tsx', example], { timeout: 60_000, env }).then(
        ({ stdout, stderr }) => ({ code: 0, stdout, stderr }),
        (error: { code: number; stdout: string; stderr: string }) => error,
      )
    }

    it('a multi-Region key with KMS_REPLICA_REGION: encrypts in its Region, decrypts through the replica', async () => {
      const primary = kms.createKey({ region: 'us-east-1', multiRegion: true })
      const replica = kms.replicateKey(primary.arn, 'eu-west-1')
      kms.resetCalls()
      const { code, stdout } = await runOnAws({ KMS_KEY_ARN: primary.arn, KMS_REPLICA_REGION: 'eu-west-1' })
      expect(code).toBe(0)
      expect(stdout).toContain(`Using AWS KMS.\n  encrypt with ${primary.arn}\n  decrypt with ${replica.arn}\n`)
      expect(stdout).toMatch(/Decrypted with the key in eu-west-1: \d+ bytes, identical to the file\./)
      expect(kms.callCount({ region: 'us-east-1', operation: 'GenerateDataKey' })).toBe(1)
      expect(kms.callCount({ region: 'eu-west-1', operation: 'Decrypt' })).toBe(1)
    }, 60_000)

    it('an alias ARN is refused before any KMS call: decrypting needs the key ARN it points to', async () => {
      const key = kms.createKey({ region: 'us-east-1' })
      kms.createAlias('alias/demo-alias', key.arn)
      kms.resetCalls()
      const { code, stderr } = await runOnAws({ KMS_KEY_ARN: 'arn:aws:kms:us-east-1:111122223333:alias/demo-alias' })
      expect(code).toBe(1)
      expect(stderr).toMatch(/^The demo failed: INVALID_CONFIGURATION: KMS_KEY_ARN names an alias, .*: the demo also decrypts, and decrypting needs the key ARN/m)
      expect(kms.calls).toEqual([])
    }, 60_000)

    it('KMS_REPLICA_REGION with a single-Region key: says it is not used, then decrypts in the key\'s Region', async () => {
      const key = kms.createKey({ region: 'us-east-1' })
      const { code, stdout } = await runOnAws({ KMS_KEY_ARN: key.arn, KMS_REPLICA_REGION: 'eu-west-1' })
      expect(code).toBe(0)
      expect(stdout).toContain(`  KMS_REPLICA_REGION is not used: ${key.arn} is a single-Region key, so the demo decrypts in us-east-1.\n`)
      expect(stdout).toMatch(/Decrypted with the key in us-east-1: \d+ bytes, identical to the file\./)
    }, 60_000)

    it('a multi-Region key with no replica in KMS_REPLICA_REGION: the failure says that the key needs one there', async () => {
      const primary = kms.createKey({ region: 'us-east-1', multiRegion: true })
      const { code, stderr } = await runOnAws({ KMS_KEY_ARN: primary.arn, KMS_REPLICA_REGION: 'eu-west-1' })
      expect(code).toBe(1)
      expect(stderr).toMatch(/^The demo failed: NO_DECRYPTABLE_KEY: .*NotFoundException/m)
      expect(stderr).toContain('and a replica of it in KMS_REPLICA_REGION (eu-west-1)')
    }, 60_000)
  })

  it('dynamodb.ts writes and reads an item through the encrypted client and from a stream record, and a changed attribute fails the read', async () => {
    const stdout = await runExample('dynamodb.ts')
    expect(stdout).toMatch(/What DynamoDB stores \(a plain client\):\n {2}\{"card":\{"B":"<\d+ bytes>"\}/)
    expect(stdout).toContain('"aws_dbe_head":{"B":')
    expect(stdout).toMatch(/Read through the encrypted client:\n {2}\{"card":\{"S":"4111 1111 1111 1111"\}/)
    expect(stdout).toMatch(/Decrypted from a stream record's NewImage:\n {2}\{"card":\{"S":"4111 1111 1111 1111"\}/)
    expect(stdout).toContain('After changing "total" in the table, reading fails: ITEM_AUTHENTICATION_FAILED')
    expect(stdout).toContain('KMS calls: 1 GenerateDataKey, 1 Decrypt')
  }, 60_000)

  it('custom-manager.ts encrypts and decrypts for an allowed tenant and refuses the others, the last before any KMS call', async () => {
    const stdout = await runExample('custom-manager.ts')
    expect(stdout).toMatch(/Encrypted for tenant acme: \d+ bytes; context keys tenant, policy-version, aws-crypto-public-key/)
    expect(stdout).toContain('Decrypted by a reader that allows acme: "invoice #1001"')
    expect(stdout).toContain('Encrypting without a tenant: ENCRYPTION_CONTEXT_MISMATCH: The encryption context names no tenant.')
    expect(stdout).toContain('Encrypting for tenant initech: ENCRYPTION_CONTEXT_MISMATCH: Tenant "initech" is not allowed here.')
    expect(stdout).toContain(`Decrypting globex's message with the acme reader: ENCRYPTION_CONTEXT_MISMATCH: Tenant "globex" is not allowed here. (0 KMS calls)`)
  }, 60_000)

  it('browser-offline/server.ts answers a message 503 ABORTED when KMS takes longer than its decrypt timeout, and decrypts it once KMS answers', async () => {
    const example = await startExampleServer({ port: 0, decryptTimeoutMs: 300 })
    try {
      const { publicKey, keyId, encryptionContext } = (await (await fetch(new URL('public-key', example.url))).json()) as { publicKey: string; keyId: string; encryptionContext: Record<string, string> }
      const keyring = new KmsRsaKeyring({ keyId, encryptionAlgorithm: 'RSAES_OAEP_SHA_256', publicKey })
      const { ciphertext } = await encrypt(keyring, 'from the page', { encryptionContext })
      const post = async () => {
        const response = await fetch(new URL('messages', example.url), { method: 'POST', body: ciphertext })
        return { status: response.status, body: (await response.json()) as { code?: string; text?: string } }
      }
      example.emulator?.faults.latency(3000)
      const slow = await post()
      expect(slow).toMatchObject({ status: 503, body: { code: 'ABORTED' } })
      example.emulator?.faults.clear()
      expect(await post()).toMatchObject({ status: 200, body: { text: 'from the page' } })
      // Its answers hold decrypted text: another site's page, or one that reaches it under its own host name (DNS
      // rebinding), is refused before anything is decrypted.
      const decrypts = example.emulator?.callCount({ operation: 'Decrypt' })
      const port = new URL(example.url).port
      for (const headers of [{ origin: 'https://elsewhere.example' }, { host: `rebound.example:${port}`, origin: `http://rebound.example:${port}` }, { host: `rebound.example:${port}` }]) {
        const status = await new Promise<number | undefined>((resolve, reject) => {
          const sent = request(new URL('messages', example.url), { method: 'POST', headers }, (response) => {
            response.resume()
            resolve(response.statusCode)
          })
          sent.on('error', reject)
          sent.end(ciphertext)
        })
        expect(status, JSON.stringify(headers)).toBe(403)
      }
      expect(example.emulator?.callCount({ operation: 'Decrypt' })).toBe(decrypts)
    } finally {
      await example.close()
    }
  }, 60_000)
})
