// A small W3C WebDriver (classic, over HTTP) client for test/helpers/browser.ts: enough to drive WebKitGTK's
// MiniBrowser through Debian's WebKitWebDriver, which playwright and puppeteer cannot (they drive their own WebKit
// builds only). A session has one current window, so every command runs in turn, each window switched to first.
import { spawn, type ChildProcess } from 'node:child_process'
import { createServer } from 'node:net'

/** A port free on loopback a moment ago. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer()
    probe.once('error', reject)
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as { port: number }
      probe.close(() => resolve(port))
    })
  })
}

export interface WebDriverWindow {
  navigate(url: string): Promise<void>
  /** Runs `script` (a function's source) on `arg` in the page and resolves with its result, sent as JSON text. */
  evaluate(script: string, arg: unknown): Promise<unknown>
  close(): Promise<void>
}

export interface WebDriverSession {
  /** A new window (a tab), opened from the session's first, which stays blank. */
  newWindow(): Promise<WebDriverWindow>
  close(): Promise<void>
}

/**
 * Starts `driver` (under `xvfb-run`, since the browser needs a display) on a free port and opens a session with
 * these capabilities. Its process group is ended by `close`.
 */
export async function startWebDriver(driver: string, capabilities: Record<string, unknown>): Promise<WebDriverSession> {
  const port = await freePort()
  const child: ChildProcess = spawn('xvfb-run', ['-a', driver, `--port=${port}`], { stdio: 'ignore', detached: true })
  let failed: Error | undefined
  child.on('error', (error) => void (failed = new Error('cannot start xvfb-run (apt-get install -y xvfb)', { cause: error })))
  const stop = () => {
    try {
      process.kill(-(child.pid as number), 'SIGTERM')
    } catch {
      // already gone
    }
  }
  const base = `http://127.0.0.1:${port}`
  const call = async (method: string, path: string, body?: unknown): Promise<unknown> => {
    const response = await fetch(`${base}${path}`, { method, headers: { 'content-type': 'application/json' }, body: body === undefined ? null : JSON.stringify(body) })
    const { value } = (await response.json()) as { value: unknown }
    if (!response.ok) throw new Error(`WebDriver ${method} ${path}: ${JSON.stringify(value).slice(0, 2000)}`)
    return value
  }
  try {
    for (let attempt = 0; ; attempt++) {
      try {
        await call('GET', '/status')
        break
      } catch (error) {
        if (failed !== undefined) throw failed
        if (attempt === 100) throw new Error(`${driver} did not answer on port ${port}`, { cause: error })
        await new Promise((resolve) => setTimeout(resolve, 100))
      }
    }
    const { sessionId } = (await call('POST', '/session', { capabilities: { alwaysMatch: capabilities } })) as { sessionId: string }
    const session = `/session/${sessionId}`
    // The tests' own limits apply instead: WebDriver's default for a script is 30 s.
    await call('POST', `${session}/timeouts`, { script: 600_000, pageLoad: 60_000 })
    let queue: Promise<unknown> = Promise.resolve()
    let current = (await call('GET', `${session}/window`)) as string
    /** Runs `command` after every earlier one, in the window `handle`. */
    const inWindow = <T>(handle: string, command: () => Promise<T>): Promise<T> => {
      const next = queue.then(async () => {
        if (current !== handle) {
          await call('POST', `${session}/window`, { handle })
          current = handle
        }
        return command()
      })
      queue = next.catch(() => undefined)
      return next
    }
    const windowOf = (handle: string): WebDriverWindow => ({
      navigate: (url) => inWindow(handle, async () => void (await call('POST', `${session}/url`, { url }))),
      evaluate: (script, arg) =>
        inWindow(handle, async () => {
          const outcome = (await call('POST', `${session}/execute/async`, { script: RUN, args: [script, arg === undefined ? null : arg] })) as
            | { json: string }
            | { error: string }
          if ('error' in outcome) throw new Error(`in the page: ${outcome.error}`)
          return JSON.parse(outcome.json)
        }),
      close: () => inWindow(handle, async () => void (await call('DELETE', `${session}/window`))),
    })
    // New windows are opened from the first one, which stays open.
    const first = current
    return {
      newWindow: async () => windowOf(((await inWindow(first, () => call('POST', `${session}/window/new`, { type: 'tab' }))) as { handle: string }).handle),
      async close() {
        await queue
        await call('DELETE', session).catch(() => undefined)
        stop()
      },
    }
  } catch (error) {
    stop()
    throw error
  }
}

/** The script WebDriver runs: the function's source and its argument in, its result as JSON text (or the error) out. */
const RUN = `const [source, value, done] = arguments;
(async () => JSON.stringify((await (0, eval)('(' + source + ')')(value)) ?? null))().then(
  (json) => done({ json }),
  (error) => done({ error: String((error && error.stack) || error) }),
)`
