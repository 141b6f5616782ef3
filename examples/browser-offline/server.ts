/**
 * Offline encryption in the browser with a KMS RSA public key. Run it with `npm run example:browser` and open
 * the URL it prints.
 *
 * The page (index.html) loads kms-envelope's standalone browser bundle, fetches the public half of a KMS RSA
 * key from this server (GET /public-key, cached by createKmsPublicKeyCache), encrypts text or a file with
 * KmsRsaKeyring without any AWS call or credential, and posts the message (POST /messages). This server then
 * decrypts it through KMS Decrypt and shows what it got.
 *
 * By default it runs on the local KMS emulator (kms-envelope/testing). For real AWS KMS, give it an RSA key
 * of key usage ENCRYPT_DECRYPT and normal AWS credentials:
 *   KMS_RSA_KEY_ARN=arn:aws:kms:us-east-1:…:key/… npm run example:browser
 * PORT sets the port (default 8787; any free port if that one is taken).
 */
import { readFile } from 'node:fs/promises'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { build } from 'esbuild'
import {
  createKmsPublicKeyCache,
  decrypt,
  defaultKmsClientSupplier,
  KmsRsaKeyring,
  type EnvelopeError,
  type KmsClientSupplier,
} from '../../src/index.js'
import { startKmsEmulator, type KmsEmulator } from '../../src/testing/index.js'

const ENCRYPTION_ALGORITHM = 'RSAES_OAEP_SHA_256'
/** What the page binds every message to; the server requires it on decrypt. */
const ENCRYPTION_CONTEXT = { purpose: 'browser-upload' }
const MAX_MESSAGE_BYTES = 20 * 1024 * 1024
/** The longest a decrypt waits on KMS: past it, the request is answered 503 and the KMS request is cancelled. */
const DECRYPT_TIMEOUT_MS = 5_000

export interface ExampleServer {
  readonly url: string
  readonly keyArn: string
  /** Where the key lives: the emulator's endpoint, or "AWS KMS". */
  readonly kmsLocation: string
  /** The local KMS emulator it runs on; undefined on AWS KMS. */
  readonly emulator: KmsEmulator | undefined
  close(): Promise<void>
}

/** The <script> build (global `KmsEnvelope`) as npm ships it, built from source so the example needs no prior build. */
async function browserBundle(): Promise<string> {
  const result = await build({
    entryPoints: [fileURLToPath(new URL('../../src/standalone.ts', import.meta.url))],
    bundle: true,
    format: 'iife',
    globalName: 'KmsEnvelope',
    platform: 'browser',
    target: 'es2022',
    minify: true,
    write: false,
    external: ['@aws-sdk/client-kms'],
    logLevel: 'silent',
  })
  return result.outputFiles[0]?.text ?? ''
}

async function readBody(request: IncomingMessage): Promise<Uint8Array> {
  const chunks: Buffer[] = []
  let length = 0
  for await (const chunk of request) {
    length += (chunk as Buffer).length
    if (length > MAX_MESSAGE_BYTES) throw new Error(`the message is larger than ${MAX_MESSAGE_BYTES} bytes`)
    chunks.push(chunk as Buffer)
  }
  return new Uint8Array(Buffer.concat(chunks))
}

function describePlaintext(plaintext: Uint8Array): { text?: string; base64Head?: string } {
  try {
    return { text: new TextDecoder('utf-8', { fatal: true }).decode(plaintext) }
  } catch {
    return { base64Head: Buffer.from(plaintext.subarray(0, 48)).toString('base64') }
  }
}

export async function startExampleServer(options: { port?: number; decryptTimeoutMs?: number } = {}): Promise<ExampleServer> {
  let emulator: KmsEmulator | undefined
  let keyArn = process.env.KMS_RSA_KEY_ARN ?? ''
  let clientSupplier: KmsClientSupplier
  let kmsLocation: string
  if (keyArn !== '') {
    clientSupplier = defaultKmsClientSupplier()
    kmsLocation = 'AWS KMS'
  } else {
    emulator = await startKmsEmulator({ regions: ['us-east-1'] })
    keyArn = emulator.createKey({ region: 'us-east-1', keySpec: 'RSA_2048', description: 'kms-envelope browser example' }).arn
    // The emulator does not check signatures; the AWS SDK still wants credentials to sign with.
    clientSupplier = defaultKmsClientSupplier({
      clientConfig: { endpoint: emulator.endpoint, credentials: { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'example' } },
    })
    kmsLocation = `the local KMS emulator at ${emulator.endpoint}`
  }
  const publicKeys = createKmsPublicKeyCache({ clientSupplier })
  const decryptKeyring = new KmsRsaKeyring({ keyId: keyArn, encryptionAlgorithm: ENCRYPTION_ALGORITHM, clientSupplier })
  const [page, bundle] = await Promise.all([readFile(new URL('./index.html', import.meta.url), 'utf8'), browserBundle()])

  const handle = async (request: IncomingMessage, response: ServerResponse) => {
    const path = new URL(request.url ?? '/', 'http://127.0.0.1').pathname
    const send = (status: number, type: string, body: string) => {
      response.writeHead(status, { 'content-type': type, 'cache-control': 'no-store' })
      response.end(body)
    }
    // Its answers hold decrypted text, so only its own page may call it: not a request for another host name (a
    // site whose name now resolves to this machine, DNS rebinding), nor one from another site's page.
    const { port } = server.address() as AddressInfo
    const host = request.headers.host ?? ''
    const origin = request.headers.origin
    if (![`127.0.0.1:${port}`, `localhost:${port}`].includes(host) || (origin !== undefined && origin !== `http://${host}`)) {
      const message = `This example server answers its own page only (http://127.0.0.1:${port}/); got host ${host || '(none)'}${origin === undefined ? '' : `, origin ${origin}`}.`
      return send(403, 'application/json', JSON.stringify({ ok: false, code: 'FORBIDDEN', message }))
    }
    if (request.method === 'GET' && path === '/') return send(200, 'text/html; charset=utf-8', page)
    if (request.method === 'GET' && path === '/kms-envelope.iife.js') return send(200, 'text/javascript; charset=utf-8', bundle)
    if (request.method === 'GET' && path === '/public-key') {
      const { keyId, pem } = await publicKeys.get(keyArn)
      return send(200, 'application/json', JSON.stringify({ keyId, publicKey: pem, encryptionAlgorithm: ENCRYPTION_ALGORITHM, encryptionContext: ENCRYPTION_CONTEXT }))
    }
    if (request.method === 'POST' && path === '/messages') {
      const message = await readBody(request)
      try {
        // A request's decrypt waits on KMS no longer than this: a KMS that does not answer holds no request for good.
        const signal = AbortSignal.timeout(options.decryptTimeoutMs ?? DECRYPT_TIMEOUT_MS)
        const { plaintext, header } = await decrypt(decryptKeyring, message, { encryptionContext: ENCRYPTION_CONTEXT, signal })
        console.log(`Decrypted a ${message.length}-byte message from the browser: ${plaintext.length} bytes of plaintext.`)
        return send(
          200,
          'application/json',
          JSON.stringify({
            ok: true,
            messageBytes: message.length,
            plaintextBytes: plaintext.length,
            ...describePlaintext(plaintext),
            algorithmSuite: `0x${header.algorithmSuiteId.toString(16).padStart(4, '0')}`,
            encryptionContext: header.encryptionContext,
            kmsCalls: emulator?.callCount({ operation: 'Decrypt' }),
          }),
        )
      } catch (error) {
        const { code, message: reason } = error as EnvelopeError
        return send(code === 'ABORTED' ? 503 : 400, 'application/json', JSON.stringify({ ok: false, code, message: reason }))
      }
    }
    return send(404, 'text/plain', 'not found')
  }

  const server: Server = createServer((request, response) => {
    handle(request, response).catch((error: unknown) => {
      response.writeHead(500, { 'content-type': 'text/plain' })
      response.end(String((error as Error)?.message ?? error))
    })
  })
  const listen = (port: number) =>
    new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen(port, '127.0.0.1', () => {
        server.off('error', reject)
        resolve()
      })
    })
  const requested = options.port ?? Number(process.env.PORT ?? 8787)
  try {
    await listen(requested)
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw error
    await listen(0)
  }
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`
  return {
    url,
    keyArn,
    kmsLocation,
    emulator,
    async close() {
      // A browser keeps spare connections open (preconnects that never send a request), which server.close()
      // alone would wait out until the headers timeout (60 s).
      const closed = new Promise<void>((resolve) => server.close(() => resolve()))
      server.closeAllConnections()
      await closed
      await emulator?.close()
    },
  }
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const example = await startExampleServer()
  console.log(`KMS RSA key ${example.keyArn} on ${example.kmsLocation}.`)
  console.log(`Open ${example.url} (WebCrypto needs a secure context: 127.0.0.1 is one). Ctrl-C stops the server.`)
  const stop = () => {
    example.close().then(() => process.exit(0), () => process.exit(1))
  }
  process.once('SIGINT', stop)
  process.once('SIGTERM', stop)
}
