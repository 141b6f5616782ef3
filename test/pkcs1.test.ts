import { spawnSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import {
  constants,
  createHash,
  createHmac,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  publicEncrypt,
  randomBytes,
  type KeyObject,
} from 'node:crypto'
import fc from 'fast-check'
import { beforeAll, describe, expect, it, vi } from 'vitest'
import { pkcs1DecryptImplicitRejection } from '../src/backend/node-pkcs1.js'
import { KeyringError } from '../src/errors.js'
import { isAllZero } from '../src/format/bytes.js'
import { CHILD_TIMEOUT, nodeBufferPool, thrownBy } from './helpers/fixtures.js'
import { pkcs1NodeOptions } from './helpers/official.js'

interface RsaPair {
  readonly bits: number
  readonly k: number
  readonly privateKey: KeyObject
  readonly publicKey: KeyObject
}

function makePair(bits: number): RsaPair {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: bits })
  return { bits, k: bits / 8, privateKey, publicKey }
}

const pkcs1Encrypt = (pair: RsaPair, message: Uint8Array): Buffer =>
  publicEncrypt({ key: pair.publicKey, padding: constants.RSA_PKCS1_PADDING }, message)

/** Raw RSA over a hand-built encoded message, to craft ciphertexts with any padding we like. */
const rawEncrypt = (pair: RsaPair, em: Uint8Array): Buffer =>
  publicEncrypt({ key: pair.publicKey, padding: constants.RSA_NO_PADDING }, em)

/** 0x00 0x02 PS 0x00 M with PS nonzero, then `tamper` applied. */
function encodedMessage(k: number, message: Uint8Array, tamper: (em: Buffer) => void = () => {}): Buffer {
  const em = Buffer.alloc(k)
  em[1] = 0x02
  const psEnd = k - message.length - 1
  for (let i = 2; i < psEnd; i++) em[i] = 1 + (randomBytes(1)[0]! % 255)
  em[psEnd] = 0x00
  em.set(message, psEnd + 1)
  tamper(em)
  return em
}

/** 512-bit keys whose private exponents take each shape DER gives them (test/fixtures/pkcs1/README.md). */
const EXPONENT_KEYS = JSON.parse(readFileSync(new URL('./fixtures/pkcs1/exponent-keys.json', import.meta.url), 'utf8')) as Record<string, string>

let rsa2048: RsaPair
let rsa4096: RsaPair
let other2048: RsaPair

beforeAll(() => {
  rsa2048 = makePair(2048)
  rsa4096 = makePair(4096)
  other2048 = makePair(2048)
}, 120_000)

describe('pkcs1DecryptImplicitRejection: valid ciphertexts', () => {
  it('round-trips publicEncrypt(RSA_PKCS1_PADDING) for 2048 and 4096-bit keys and 16/24/32-byte keys', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(16, 24, 32).chain((n) => fc.uint8Array({ minLength: n, maxLength: n })),
        fc.boolean(),
        (dataKey, big) => {
          const pair = big ? rsa4096 : rsa2048
          const result = pkcs1DecryptImplicitRejection(pair.privateKey, pkcs1Encrypt(pair, dataKey), dataKey.length)
          expect(result).toBeInstanceOf(Uint8Array)
          expect(Buffer.from(result).toString('hex')).toBe(Buffer.from(dataKey).toString('hex'))
        },
      ),
      { numRuns: 30 },
    )
  })

  it('accepts the boundaries: exactly 8 padding bytes (message of k-11 bytes) and a 1-byte message', () => {
    const longest = randomBytes(rsa2048.k - 11)
    const c1 = rawEncrypt(rsa2048, encodedMessage(rsa2048.k, longest))
    expect(Buffer.from(pkcs1DecryptImplicitRejection(rsa2048.privateKey, c1, longest.length))).toEqual(longest)

    const one = Uint8Array.of(0x00) // a zero message byte must not be taken for the separator
    const c2 = rawEncrypt(rsa2048, encodedMessage(rsa2048.k, one))
    expect(Array.from(pkcs1DecryptImplicitRejection(rsa2048.privateKey, c2, 1))).toEqual([0x00])
  })

  it('agrees with OpenSSL PKCS1 decryption (in a child Node, with --security-revert=CVE-2023-46809 on Node 20)', () => {
    const cases = [rsa2048, rsa4096].flatMap((pair) =>
      [16, 24, 32].map((n) => {
        const dataKey = randomBytes(n)
        return { pair, dataKey, ciphertext: pkcs1Encrypt(pair, dataKey) }
      }),
    )
    // The wrong-length case: valid padding, so OpenSSL returns the 31-byte message; we expect 32.
    const short = randomBytes(31)
    const wrongLength = rawEncrypt(rsa2048, encodedMessage(rsa2048.k, short))

    const script = `
      const crypto = require('node:crypto')
      const input = JSON.parse(require('node:fs').readFileSync(0, 'utf8'))
      const out = input.map(({ pem, ct }) => {
        try {
          return crypto.privateDecrypt({ key: pem, padding: crypto.constants.RSA_PKCS1_PADDING }, Buffer.from(ct, 'hex')).toString('hex')
        } catch (error) {
          return 'error: ' + error.message
        }
      })
      // Node prints its security-revert warning on stdout, so mark where our output starts.
      process.stdout.write('\\n@@RESULT@@' + JSON.stringify(out))
    `
    const pem = (pair: RsaPair) => pair.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string
    const input = [
      ...cases.map(({ pair, ciphertext }) => ({ pem: pem(pair), ct: ciphertext.toString('hex') })),
      { pem: pem(rsa2048), ct: wrongLength.toString('hex') },
    ]
    const child = spawnSync(process.execPath, [...pkcs1NodeOptions(), '-e', script], {
      input: JSON.stringify(input),
      encoding: 'utf8',
      ...CHILD_TIMEOUT,
    })
    expect(child.status, child.stderr).toBe(0)
    const marker = child.stdout.indexOf('@@RESULT@@')
    expect(marker, child.stdout).toBeGreaterThanOrEqual(0)
    const reference = JSON.parse(child.stdout.slice(marker + '@@RESULT@@'.length)) as string[]
    expect(reference).toHaveLength(cases.length + 1)

    cases.forEach(({ pair, dataKey, ciphertext }, i) => {
      const ours = Buffer.from(pkcs1DecryptImplicitRejection(pair.privateKey, ciphertext, dataKey.length)).toString('hex')
      expect(reference[i]).toBe(dataKey.toString('hex'))
      expect(ours).toBe(reference[i])
    })

    expect(reference[cases.length]).toBe(short.toString('hex'))
    const ours = pkcs1DecryptImplicitRejection(rsa2048.privateKey, wrongLength, 32)
    expect(ours).toHaveLength(32)
    expect(Buffer.from(ours).subarray(1).equals(short)).toBe(false)
  })
})

describe('pkcs1DecryptImplicitRejection: implicit rejection', () => {
  const realKey = Buffer.alloc(32, 0xa5)
  const badEncodings: Record<string, (em: Buffer) => void> = {
    'first byte not 0x00': (em) => { em[0] = 0x01 },
    'block type 0x01 instead of 0x02': (em) => { em[1] = 0x01 },
    'block type 0x00 instead of 0x02': (em) => { em[1] = 0x00 },
    'zero in PS at index 9 (7 padding bytes)': (em) => { em[9] = 0x00 },
    'zero in PS at index 2 (no padding bytes)': (em) => { em[2] = 0x00 },
    'no 0x00 separator': (em) => { em.fill(0x5a, 2) },
    'separator one byte early (33-byte message)': (em) => { em[em.length - 34] = 0x00 },
    'separator one byte late (31-byte message)': (em) => { em[em.length - 33] = 0x01; em[em.length - 32] = 0x00 },
  }

  for (const [name, tamper] of Object.entries(badEncodings)) {
    it(`returns a deterministic synthetic key for: ${name}`, () => {
      const em = encodedMessage(rsa2048.k, realKey, tamper)
      const c = rawEncrypt(rsa2048, em)
      const first = pkcs1DecryptImplicitRejection(rsa2048.privateKey, c, 32)
      const second = pkcs1DecryptImplicitRejection(rsa2048.privateKey, c, 32)
      expect(first).toHaveLength(32)
      expect(Buffer.from(second)).toEqual(Buffer.from(first))
      expect(Buffer.from(first).equals(realKey)).toBe(false)
      expect(Buffer.from(first).equals(em.subarray(em.length - 32))).toBe(false)
      expect(Buffer.from(first)).toEqual(expectedSynthetic(rsa2048, c, 32))
    })
  }

  it('flipped ciphertext bytes give deterministic, distinct synthetic keys and never throw', () => {
    const dataKey = randomBytes(32)
    const good = pkcs1Encrypt(rsa2048, dataKey)
    const seen = new Set<string>()
    fc.assert(
      fc.property(fc.integer({ min: 1, max: rsa2048.k - 1 }), fc.integer({ min: 1, max: 255 }), (position, flip) => {
        const bad = Buffer.from(good)
        bad[position]! ^= flip
        const first = Buffer.from(pkcs1DecryptImplicitRejection(rsa2048.privateKey, bad, 32))
        const second = Buffer.from(pkcs1DecryptImplicitRejection(rsa2048.privateKey, bad, 32))
        expect(first).toHaveLength(32)
        expect(second).toEqual(first)
        expect(first.equals(dataKey)).toBe(false)
        expect(first).toEqual(expectedSynthetic(rsa2048, bad, 32))
        seen.add(`${bad.toString('hex')}:${first.toString('hex')}`)
      }),
      { numRuns: 25 },
    )
    const outputs = new Set([...seen].map((entry) => entry.split(':')[1]))
    expect(outputs.size).toBe(seen.size) // different ciphertexts, different synthetic keys
  })

  it('synthetic keys have expectedLength bytes and depend on the private key, not on the KeyObject', () => {
    const c = rawEncrypt(rsa2048, encodedMessage(rsa2048.k, realKey, (em) => { em[1] = 0x03 }))
    for (const length of [1, 16, 24, 32, 33, 64, 100, rsa2048.k - 11]) {
      const synthetic = pkcs1DecryptImplicitRejection(rsa2048.privateKey, c, length)
      expect(synthetic).toHaveLength(length)
      expect(Buffer.from(synthetic)).toEqual(expectedSynthetic(rsa2048, c, length))
    }
    const ours = Buffer.from(pkcs1DecryptImplicitRejection(rsa2048.privateKey, c, 32))
    const reimported = createPrivateKey({
      key: rsa2048.privateKey.export({ type: 'pkcs1', format: 'der' }),
      format: 'der',
      type: 'pkcs1',
    })
    expect(reimported).not.toBe(rsa2048.privateKey)
    expect(Buffer.from(pkcs1DecryptImplicitRejection(reimported, c, 32))).toEqual(ours)
    // The same bytes under another key of the same size. Clearing the top bits keeps the value below
    // both moduli (each at least 2^2047), so neither raw RSA call can refuse it as too large.
    const below = Uint8Array.from(c)
    below[0] = (below[0] as number) & 0x3f
    const underFirst = Buffer.from(pkcs1DecryptImplicitRejection(rsa2048.privateKey, below, 32))
    expect(Buffer.from(pkcs1DecryptImplicitRejection(other2048.privateKey, below, 32)).equals(underFirst)).toBe(false)
  })

  it("leaves no copy of a synthetic key in Node's shared pool of small buffers", () => {
    const good = pkcs1Encrypt(rsa2048, randomBytes(32))
    const pool = nodeBufferPool()
    const synthetics: Uint8Array[] = []
    for (const [position, length] of [[3, 32], [77, 16], [150, 100], [200, 64], [255, 33]] as const) {
      const bad = Buffer.from(good)
      bad[position]! ^= 0x5a
      synthetics.push(pkcs1DecryptImplicitRejection(rsa2048.privateKey, bad, length))
      pool.look()
    }
    expect(pool.copiesOf(synthetics)).toBe(0)
  })

  it.each(Object.entries(EXPONENT_KEYS))('reads a private exponent of each DER shape (%s) as the specification pads it', (_shape, pem) => {
    const privateKey = createPrivateKey(pem)
    const pair: RsaPair = { bits: 512, k: 64, privateKey, publicKey: createPublicKey(privateKey) }
    const c = rawEncrypt(pair, encodedMessage(pair.k, randomBytes(32), (em) => { em[1] = 0x01 }))
    expect(Buffer.from(pkcs1DecryptImplicitRejection(privateKey, c, 32))).toEqual(expectedSynthetic(pair, c, 32))
  })

  it('reads the private exponent from a DER export it zeroes, never from a JWK (whose strings nothing can clear)', () => {
    const privateKey = createPrivateKey(rsa2048.privateKey.export({ type: 'pkcs8', format: 'pem' }))
    const exported: { format: unknown; bytes: unknown }[] = []
    const prototype = Object.getPrototypeOf(privateKey) as KeyObject
    const exportKey = prototype.export
    const spy = vi.spyOn(prototype, 'export').mockImplementation(function (this: KeyObject, ...args: Parameters<KeyObject['export']>) {
      const bytes = Reflect.apply(exportKey, this, args) as unknown
      exported.push({ format: (args[0] as { format?: unknown } | undefined)?.format, bytes })
      return bytes as ReturnType<KeyObject['export']>
    })
    try {
      const c = rawEncrypt(rsa2048, encodedMessage(rsa2048.k, realKey, (em) => { em[0] = 0x01 }))
      const synthetic = Buffer.from(pkcs1DecryptImplicitRejection(privateKey, c, 32))
      expect(exported.map(({ format }) => format)).toEqual(['der'])
      expect(isAllZero(exported[0]!.bytes as Uint8Array)).toBe(true)
      expect(synthetic).toEqual(expectedSynthetic(rsa2048, c, 32))
    } finally {
      spy.mockRestore()
    }
  })

  it('a private key whose DER cannot be read fails with a KeyringError that says so, its cause attached', () => {
    const privateKey = createPrivateKey(rsa2048.privateKey.export({ type: 'pkcs8', format: 'pem' }))
    const spy = vi.spyOn(Object.getPrototypeOf(privateKey) as KeyObject, 'export').mockReturnValue(Buffer.of(0x30, 0x03, 0x02, 0x01, 0x00) as never)
    try {
      const c = pkcs1Encrypt(rsa2048, randomBytes(32))
      const error = thrownBy(() => pkcs1DecryptImplicitRejection(privateKey, c, 32))
      expect(error).toBeInstanceOf(KeyringError)
      expect((error as KeyringError).message).toBe('Cannot read the RSA private exponent')
      expect((error as KeyringError).cause).toBeInstanceOf(TypeError)
    } finally {
      spy.mockRestore()
    }
  })

  it('works for 4096-bit keys too', () => {
    const c = rawEncrypt(rsa4096, encodedMessage(rsa4096.k, realKey, (em) => { em[5] = 0x00 }))
    const result = Buffer.from(pkcs1DecryptImplicitRejection(rsa4096.privateKey, c, 32))
    expect(result.equals(realKey)).toBe(false)
    expect(result).toEqual(expectedSynthetic(rsa4096, c, 32))
  })
})

describe('pkcs1DecryptImplicitRejection: input validation', () => {
  function expectKeyringError(run: () => unknown, pair: RsaPair): KeyringError {
    const caught = thrownBy(run)
    expect(caught).toBeInstanceOf(KeyringError)
    const error = caught as KeyringError
    expect(error.code).toBe('KEYRING_FAILURE')
    const jwk = pair.privateKey.export({ format: 'jwk' })
    const text = `${error.message} ${String(error)} ${String(error.cause ?? '')}`
    for (const secret of [jwk.d!, jwk.p!, jwk.q!]) {
      expect(text).not.toContain(secret)
      expect(text).not.toContain(Buffer.from(secret, 'base64url').toString('hex'))
      expect(text).not.toContain(Buffer.from(secret, 'base64url').toString('base64'))
    }
    return error
  }

  it('throws KeyringError when the ciphertext length is not the modulus length', () => {
    const c = pkcs1Encrypt(rsa2048, randomBytes(32))
    for (const wrong of [c.subarray(1), Buffer.concat([c, Buffer.of(0)]), new Uint8Array(0), randomBytes(rsa4096.k)]) {
      const error = expectKeyringError(() => pkcs1DecryptImplicitRejection(rsa2048.privateKey, wrong, 32), rsa2048)
      expect(error.message).toBe(`RSA ciphertext is ${wrong.length} bytes, expected 256 (the modulus length)`)
    }
    const one = expectKeyringError(() => pkcs1DecryptImplicitRejection(rsa2048.privateKey, c.subarray(0, 1), 32), rsa2048)
    expect(one.message).toBe('RSA ciphertext is 1 byte, expected 256 (the modulus length)')
  })

  it('throws KeyringError for an expectedLength outside 1..k-11', () => {
    const c = pkcs1Encrypt(rsa2048, randomBytes(32))
    for (const length of [0, -1, 1.5, Number.NaN, rsa2048.k - 10, rsa2048.k]) {
      const error = expectKeyringError(() => pkcs1DecryptImplicitRejection(rsa2048.privateKey, c, length), rsa2048)
      expect(error.message).toBe('Expected key length must be an integer from 1 to 245')
    }
  })

  it('wraps the raw RSA failure for a ciphertext not below the modulus, with the cause', () => {
    const n = Buffer.from(rsa2048.privateKey.export({ format: 'jwk' }).n!, 'base64url')
    expect(n).toHaveLength(rsa2048.k)
    const error = expectKeyringError(() => pkcs1DecryptImplicitRejection(rsa2048.privateKey, n, 32), rsa2048)
    expect(error.cause).toBeInstanceOf(Error)
    expectKeyringError(() => pkcs1DecryptImplicitRejection(rsa2048.privateKey, Buffer.alloc(rsa2048.k, 0xff), 32), rsa2048)
  })

  it('refuses a public key, and a private key of another type, by their own check', () => {
    const c = pkcs1Encrypt(rsa2048, randomBytes(32))
    const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey
    for (const key of [rsa2048.publicKey, ec]) {
      expect(expectKeyringError(() => pkcs1DecryptImplicitRejection(key, c, 32), rsa2048).message).toBe('PKCS1 decryption needs an RSA private key')
    }
  })

  it('logs nothing on implicit rejection', () => {
    const spies = (['log', 'info', 'warn', 'error', 'debug'] as const).map((m) => vi.spyOn(console, m))
    try {
      const bad = pkcs1Encrypt(rsa2048, randomBytes(32))
      bad[100]! ^= 0xff
      expect(pkcs1DecryptImplicitRejection(rsa2048.privateKey, bad, 32)).toHaveLength(32)
      for (const spy of spies) expect(spy).not.toHaveBeenCalled()
    } finally {
      for (const spy of spies) spy.mockRestore()
    }
  })
})

/** Independent restatement of the derivation, so a silent change to it fails here. */
function expectedSynthetic(pair: RsaPair, ciphertext: Uint8Array, length: number): Buffer {
  const d = Buffer.from(pair.privateKey.export({ format: 'jwk' }).d!, 'base64url')
  const dPadded = Buffer.concat([Buffer.alloc(pair.k - d.length), d])
  const kdk = createHmac('sha256', createHash('sha256').update(dPadded).digest()).update(ciphertext).digest()
  const label = Buffer.from('kms-envelope PKCS1 implicit rejection')
  const bits = Buffer.alloc(2)
  bits.writeUInt16BE(length * 8)
  const blocks: Buffer[] = []
  for (let i = 0; i * 32 < length; i++) {
    const counter = Buffer.alloc(2)
    counter.writeUInt16BE(i)
    blocks.push(createHmac('sha256', kdk).update(Buffer.concat([counter, label, bits])).digest())
  }
  return Buffer.concat(blocks).subarray(0, length)
}
