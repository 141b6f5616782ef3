// One-shot decrypt of a signed message in the background range (256 KiB to 8 MiB) begins its signature
// check with the public key from the message's context before the keyrings run; a smaller one when its
// materials manager is still at work as the event loop turns (a KMS call). These tests pin down when the
// check begins, that the early answer is used only for the key the materials manager returns, and that it
// never changes which error a bad message gets.
import { createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { nodeBackend } from '../src/backend/node.js'
import { webCryptoBackend } from '../src/backend/webcrypto.js'
import { decryptWith } from '../src/decrypt.js'
import { parseHeader } from '../src/format/header.js'
import { DefaultMaterialsManager, decrypt, encrypt } from '../src/index.js'
import { FRAMES_PER_TURN } from '../src/next-turn.js'
import type { CompleteDecryptionMaterials, DecryptionRequest, Keyring, MaterialsManager } from '../src/types.js'
import { aesKeyring, rejectionOf, unhandledRejectionsDuring } from './helpers/fixtures.js'

const keyring = aesKeyring()
const MiB = 1024 * 1024

async function signedMessage(size: number): Promise<{ plaintext: Uint8Array; ciphertext: Uint8Array }> {
  const plaintext = new Uint8Array(size).fill(5)
  const { ciphertext } = await encrypt(keyring, plaintext, { algorithmSuite: 0x0578, frameLength: 65536 })
  return { plaintext, ciphertext }
}

/** The default manager, with the verification key it returns replaced. */
function managerWithKey(verificationKey: (original: KeyObject) => unknown): MaterialsManager {
  const inner = new DefaultMaterialsManager(keyring)
  return {
    getEncryptionMaterials: (request, backend) => inner.getEncryptionMaterials(request, backend),
    async getDecryptionMaterials(request: DecryptionRequest, backend): Promise<CompleteDecryptionMaterials> {
      const materials = await inner.getDecryptionMaterials(request, backend)
      return Object.assign({}, materials, { verificationKey: verificationKey(materials.verificationKey as KeyObject) })
    },
  }
}

/** The same public key as another KeyObject: the early check's answer is for its own object only. */
const anotherObject = (original: KeyObject) => createPublicKey({ key: original.export({ format: 'der', type: 'spki' }), format: 'der', type: 'spki' })

/** The AES keyring, holding its answer back until `release` is called, noting how many checks had begun. */
function heldKeyring(verifyCalls: () => number): { keyring: Keyring; checksBeforeUnwrap: number[]; release: () => void } {
  const checksBeforeUnwrap: number[] = []
  let release = (): void => undefined
  const held = new Promise<void>((resolve) => (release = resolve))
  return {
    checksBeforeUnwrap,
    release: () => release(),
    keyring: {
      onEncrypt: (materials, backend) => keyring.onEncrypt(materials, backend),
      async onDecrypt(materials, keys, backend) {
        checksBeforeUnwrap.push(verifyCalls())
        await held
        return keyring.onDecrypt(materials, keys, backend)
      },
    },
  }
}

afterEach(() => vi.restoreAllMocks())

describe('signature check begun before the keyrings', () => {
  it('starts before the keyring answers, and the message is verified once', async () => {
    const { plaintext, ciphertext } = await signedMessage(MiB)
    const verifyMessage = vi.spyOn(nodeBackend, 'verifyMessage')
    const held = heldKeyring(() => verifyMessage.mock.calls.length)
    const decrypting = decrypt(held.keyring, ciphertext)
    await vi.waitFor(() => expect(held.checksBeforeUnwrap).toHaveLength(1))
    await vi.waitFor(() => expect(verifyMessage).toHaveBeenCalledTimes(1))
    held.release()
    const { plaintext: decrypted } = await decrypting
    expect(Buffer.compare(decrypted, plaintext)).toBe(0)
    expect(verifyMessage).toHaveBeenCalledTimes(1)
  })

  it('a small message: begun once the keyring has kept the event loop waiting, and verified once', async () => {
    const { plaintext, ciphertext } = await signedMessage(1000)
    const verifyMessage = vi.spyOn(nodeBackend, 'verifyMessage')
    const held = heldKeyring(() => verifyMessage.mock.calls.length)
    const decrypting = decrypt(held.keyring, ciphertext)
    await vi.waitFor(() => expect(held.checksBeforeUnwrap).toEqual([0])) // not begun when the keyring was called
    await new Promise((resolve) => setImmediate(resolve))
    expect(verifyMessage).toHaveBeenCalledTimes(1) // begun while the keyring waits
    held.release()
    const { plaintext: decrypted } = await decrypting
    expect(Buffer.compare(decrypted, plaintext)).toBe(0)
    expect(verifyMessage).toHaveBeenCalledTimes(1)
  })

  it('a small message with a waiting keyring: a bad signature is refused, and so is another signer\'s key', async () => {
    const { ciphertext } = await signedMessage(1000)
    const tampered = Uint8Array.from(ciphertext)
    tampered.set([(tampered.at(-10) as number) ^ 1], tampered.length - 10)
    const slow = heldKeyring(() => 0)
    setTimeout(slow.release, 5)
    expect(((await rejectionOf(decrypt(slow.keyring, tampered))) as { code?: string }).code).toBe('SIGNATURE_INVALID')
    const stranger = generateKeyPairSync('ec', { namedCurve: 'secp384r1' }).publicKey
    const waitingManager = managerWithKey(() => stranger)
    const slowManager: MaterialsManager = {
      getEncryptionMaterials: (request, backend) => waitingManager.getEncryptionMaterials(request, backend),
      getDecryptionMaterials: async (request, backend) => {
        await new Promise((resolve) => setTimeout(resolve, 5))
        return waitingManager.getDecryptionMaterials(request, backend)
      },
    }
    const verifyMessage = vi.spyOn(nodeBackend, 'verifyMessage')
    expect(((await rejectionOf(decrypt(slowManager, ciphertext))) as { code?: string }).code).toBe('SIGNATURE_INVALID')
    expect(verifyMessage).toHaveBeenCalledTimes(2)
    expect(verifyMessage.mock.calls[1]?.[1]).toBe(stranger)
  })

  it('is not begun for a message checked before decrypting (small with a prompt keyring, or over 8 MiB), then or later', async () => {
    const verifyMessage = vi.spyOn(nodeBackend, 'verifyMessage')
    for (const size of [1000, 9 * MiB]) {
      const { ciphertext } = await signedMessage(size)
      await decrypt(keyring, ciphertext)
      // The turn a waiting check would begin on has come and gone.
      await new Promise((resolve) => setImmediate(resolve))
      await new Promise((resolve) => setImmediate(resolve))
    }
    expect(verifyMessage).not.toHaveBeenCalled()
  })

  it('two small messages whose keyrings wait, the second begun once the first is checking: each check begins once', async () => {
    const [first, second] = await Promise.all([signedMessage(1000), signedMessage(2000)])
    const verifyMessage = vi.spyOn(nodeBackend, 'verifyMessage')
    const heldFirst = heldKeyring(() => verifyMessage.mock.calls.length)
    const heldSecond = heldKeyring(() => verifyMessage.mock.calls.length)
    const decryptingFirst = decrypt(heldFirst.keyring, first.ciphertext)
    await vi.waitFor(() => expect(verifyMessage).toHaveBeenCalledTimes(1))
    const decryptingSecond = decrypt(heldSecond.keyring, second.ciphertext)
    await vi.waitFor(() => expect(heldSecond.checksBeforeUnwrap).toEqual([1]))
    await new Promise((resolve) => setImmediate(resolve))
    await new Promise((resolve) => setImmediate(resolve))
    expect(verifyMessage).toHaveBeenCalledTimes(2)
    // One check of each message, not a second one of the first.
    const checked = verifyMessage.mock.calls.map(([, , message]) => message as Uint8Array)
    const prefixOf = (whole: Uint8Array, part: Uint8Array) => Buffer.compare(whole.subarray(0, part.length), part) === 0
    expect([prefixOf(first.ciphertext, checked[0]!), prefixOf(second.ciphertext, checked[1]!)]).toEqual([true, true])
    heldFirst.release()
    heldSecond.release()
    expect(Buffer.compare((await decryptingFirst).plaintext, first.plaintext)).toBe(0)
    expect(Buffer.compare((await decryptingSecond).plaintext, second.plaintext)).toBe(0)
    expect(verifyMessage).toHaveBeenCalledTimes(2)
  })

  it("a manager returning another signer's key: the message is checked with that key and refused", async () => {
    const { ciphertext } = await signedMessage(MiB)
    const stranger = generateKeyPairSync('ec', { namedCurve: 'secp384r1' }).publicKey
    const verifyMessage = vi.spyOn(nodeBackend, 'verifyMessage')
    const error = await rejectionOf(decrypt(managerWithKey(() => stranger), ciphertext))
    expect((error as { code?: string }).code).toBe('SIGNATURE_INVALID')
    expect(verifyMessage).toHaveBeenCalledTimes(2) // the early check (which verifies) is not taken
    expect(verifyMessage.mock.calls[1]?.[1]).toBe(stranger)
  })

  it('a manager returning the same key as another object: checked again with it, and accepted', async () => {
    const { plaintext, ciphertext } = await signedMessage(MiB)
    const verifyMessage = vi.spyOn(nodeBackend, 'verifyMessage')
    const { plaintext: decrypted } = await decrypt(managerWithKey(anotherObject), ciphertext)
    expect(Buffer.compare(decrypted, plaintext)).toBe(0)
    expect(verifyMessage).toHaveBeenCalledTimes(2)
  })

  it('a bad signature is refused when the early check is taken', async () => {
    const { ciphertext } = await signedMessage(MiB)
    const tampered = Uint8Array.from(ciphertext)
    tampered.set([(tampered.at(-10) as number) ^ 1], tampered.length - 10)
    const verifyMessage = vi.spyOn(nodeBackend, 'verifyMessage')
    expect((await rejectionOf(decrypt(keyring, tampered)) as { code?: string }).code).toBe('SIGNATURE_INVALID')
    expect(verifyMessage).toHaveBeenCalledTimes(1)
  })

  it('the keyring failing while the check runs: its error, as without the check', async () => {
    const { ciphertext } = await signedMessage(MiB)
    const error = await rejectionOf(decrypt(aesKeyring(32, 'key-1', 8), ciphertext))
    expect((error as { code?: string }).code).toBe('NO_DECRYPTABLE_KEY')
  })

  it('a failing decrypt ends only once its background check has: a loop that never yields piles none up', async () => {
    // Each check's answer comes back on a turn of the event loop, which a loop of awaited decrypts that fail at
    // once never takes; the check (and node:crypto's copy of the message) stayed alive until it did.
    const { ciphertext } = await signedMessage(300 * 1024)
    let begun = 0
    let ended = 0
    const counting = {
      ...nodeBackend,
      verifyMessage(...args: Parameters<typeof nodeBackend.verifyMessage>) {
        begun++
        return nodeBackend.verifyMessage(...args).finally(() => void ended++)
      },
    }
    for (let round = 0; round < 5; round++) {
      const error = await rejectionOf(decryptWith(counting, aesKeyring(32, 'key-1', 8), ciphertext, {}))
      expect((error as { code?: string }).code).toBe('NO_DECRYPTABLE_KEY')
      expect({ round, begun, ended }).toEqual({ round, begun: round + 1, ended: round + 1 })
    }
  })

  it('a backend whose verification rejects, under a failing keyring: the keyring\'s error and no unhandled rejection', async () => {
    const { ciphertext } = await signedMessage(MiB)
    const unhandled = await unhandledRejectionsDuring(async () => {
      const broken = { ...nodeBackend, verifyMessage: () => Promise.reject(new Error('broken verifier')) }
      const error = await rejectionOf(decryptWith(broken, aesKeyring(32, 'key-1', 8), ciphertext, {}))
      expect((error as { code?: string }).code).toBe('NO_DECRYPTABLE_KEY')
    })
    expect(unhandled).toEqual([])
  })

  it('a frame failing after the event loop has turned, while the check with the manager\'s key rejects: the frame\'s error and no unhandled rejection', async () => {
    // More frames than one turn opens (FRAMES_PER_TURN), and a key from the manager that is not the early check's
    // object, so the message is verified again with it, by a backend whose verification rejects.
    const frameLength = 64
    const { ciphertext } = await encrypt(keyring, new Uint8Array(300 * 1024).fill(5), { algorithmSuite: 0x0578, frameLength })
    const tampered = Uint8Array.from(ciphertext)
    tampered[parseHeader(ciphertext).length + FRAMES_PER_TURN * (4 + 12 + frameLength + 16) + 4 + 12]! ^= 1 // frame FRAMES_PER_TURN + 1
    const unhandled = await unhandledRejectionsDuring(async () => {
      let verifications = 0
      const rejecting = {
        ...nodeBackend,
        verifyMessage: (...args: Parameters<typeof nodeBackend.verifyMessage>) =>
          ++verifications === 1 ? nodeBackend.verifyMessage(...args) : Promise.reject(new Error('broken verifier')),
      }
        const error = await rejectionOf(decryptWith(rejecting, managerWithKey(anotherObject), tampered, {}))
      expect((error as { code?: string; message?: string }).code).toBe('FRAME_AUTHENTICATION_FAILED')
      expect((error as Error).message).toContain(`Frame ${FRAMES_PER_TURN + 1} `)
      expect(verifications).toBe(2)
    })
    expect(unhandled).toEqual([])
  })

  it('a public key in the context that is not a point: the manager reports it', async () => {
    const { ciphertext } = await signedMessage(MiB)
    const text = Buffer.from(ciphertext).toString('latin1')
    const at = text.indexOf('aws-crypto-public-key') + 'aws-crypto-public-key'.length + 2 // past the value's length
    expect(text.slice(at, at + 1)).toMatch(/^A$/) // a compressed point starts 0x02 or 0x03
    const mutated = Buffer.from(ciphertext)
    mutated.write('BQ', at, 'latin1') // 0x05: no point encoding
    const verifyMessage = vi.spyOn(nodeBackend, 'verifyMessage')
    const error = await rejectionOf(decrypt(keyring, mutated))
    expect((error as { code?: string }).code).toBe('SIGNATURE_INVALID')
    expect((error as Error).message).toMatch(/not a valid P-384 point/)
    expect(verifyMessage).not.toHaveBeenCalled()
  })

  it('WebCrypto backend: the early check is taken too (one verification)', async () => {
    const { plaintext, ciphertext } = await signedMessage(MiB)
    const verifyMessage = vi.spyOn(webCryptoBackend, 'verifyMessage')
    const { plaintext: decrypted } = await decryptWith(webCryptoBackend, keyring, ciphertext, {})
    expect(Buffer.compare(decrypted, plaintext)).toBe(0)
    expect(verifyMessage).toHaveBeenCalledTimes(1)
  })
})
