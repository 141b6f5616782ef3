// How the browser tests' WebDriver helper starts WebKitWebDriver: a port taken between freePort and the driver's
// listen, a driver that exits or hangs, and xvfb-run missing each end in a retry or an error that says what happened,
// never in a bare "did not answer" after the hook's time is up (a CI run once failed that way).
import { execFileSync } from 'node:child_process'
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { createServer, type Server } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { browserPath } from './helpers/browser.js'
import { freePort, startDriverProcess } from './helpers/webdriver.js'

const driver = browserPath('WebKit')
let taken: Server
let takenPort: number
let scratch: string

beforeAll(async () => {
  // Held by a program that answers HTTP, though not as a WebDriver would.
  taken = createServer((_request, response) => response.writeHead(404, { connection: 'close' }).end('{"value":null}'))
  await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve))
  takenPort = (taken.address() as { port: number }).port
  scratch = mkdtempSync(join(tmpdir(), 'webdriver-test-'))
})

afterAll(async () => {
  taken.closeAllConnections()
  await new Promise((resolve) => taken.close(resolve))
  rmSync(scratch, { recursive: true, force: true })
})

/** A port that is taken first, then free ones; counts the ports handed out. */
const takenThenFree = () => {
  const handedOut: number[] = []
  const pickPort = async () => {
    const port = handedOut.length === 0 ? takenPort : await freePort()
    handedOut.push(port)
    return port
  }
  return { pickPort, handedOut }
}

describe('startDriverProcess', () => {
  it('starts the driver again on another port when the first was taken (its holder answering HTTP), and the driver answers there', async () => {
    const { pickPort, handedOut } = takenThenFree()
    const running = await startDriverProcess(driver, { pickPort })
    try {
      // Two ports, or three if another xvfb-run took the same display at the same moment.
      expect(handedOut.length).toBeGreaterThanOrEqual(2)
      expect(running.base).toBe(`http://127.0.0.1:${handedOut.at(-1)}`)
      const status = (await (await fetch(`${running.base}/status`)).json()) as { value: { ready: boolean } }
      expect(status.value.ready).toBe(true)
    } finally {
      running.stop()
    }
  })

  it('gives up after the attempts asked for, saying for each how the driver exited and what it wrote', async () => {
    const pickPort = async () => takenPort
    const failure = startDriverProcess(driver, { pickPort, attempts: 2 })
    await expect(failure).rejects.toThrow(`${driver} did not start:\nattempt 1: exited (code 1) before answering on port ${takenPort}: `)
    const message = ((await failure.catch((error: Error) => error)) as Error).message
    expect(message.split('\n')).toHaveLength(3)
    // What the driver wrote (or xvfb-run, when another xvfb-run took the same display at the same moment).
    expect(message).toMatch(/^attempt 2: exited \(code 1\) before answering on port \d+: .*(Unable to listen|Xvfb failed to start)/m)
  })

  it('stops a driver that neither answers nor exits, and does not start it again', async () => {
    const hanging = join(scratch, 'hanging-driver')
    writeFileSync(hanging, `#!/bin/sh\nsleep 600\n`)
    chmodSync(hanging, 0o755)
    let picked = 0
    const pickPort = () => (picked++, freePort())
    const failure = startDriverProcess(hanging, { pickPort, answerWithinMs: 1_500 })
    await expect(failure).rejects.toThrow(/did not start:\nattempt 1: did not answer on http:\/\/127\.0\.0\.1:\d+ in time$/)
    expect(picked).toBe(1)
    // Its process group is ended: nothing of it is left running.
    await new Promise((resolve) => setTimeout(resolve, 300))
    expect(() => execFileSync('pgrep', ['-f', hanging])).toThrow()
  })

  it('says xvfb-run is missing when it cannot be started', async () => {
    const path = process.env.PATH
    process.env.PATH = scratch
    try {
      await expect(startDriverProcess(driver, { pickPort: freePort })).rejects.toThrow(/^cannot start xvfb-run \(apt-get install -y xvfb\): spawn xvfb-run ENOENT$/)
    } finally {
      process.env.PATH = path
    }
  })
})
