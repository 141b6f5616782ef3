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

/** A driver that answers: its HTTP base, and how to stop its process group. */
interface RunningDriver {
  base: string
  stop(): void
}

/**
 * Starts `driver` (under `xvfb-run`, since the browser needs a display) on a port from `pickPort` and waits until it
 * answers. A driver that exits first (another process took the port between `freePort` and the driver's listen, or
 * Xvfb did not start) is started again on another port, up to `attempts` times; the error then carries what it
 * wrote to stderr. A driver that neither answers nor exits in `answerWithinMs` is stopped and reported.
 */
export async function startDriverProcess(
  driver: string,
  { pickPort = freePort, attempts = 3, answerWithinMs = 30_000 }: { pickPort?: () => Promise<number>; attempts?: number; answerWithinMs?: number } = {},
): Promise<RunningDriver> {
  const failures: string[] = []
  for (let attempt = 1; attempt <= attempts; attempt++) {
    const port = await pickPort()
    const child: ChildProcess = spawn('xvfb-run', ['-a', driver, `--port=${port}`], { stdio: ['ignore', 'ignore', 'pipe'], detached: true })
    let stderr = ''
    child.stderr?.on('data', (chunk: Buffer) => void (stderr = (stderr + chunk.toString()).slice(-2000)))
    const exited = new Promise<{ spawnFailed: boolean; why: string }>((resolve) => {
      child.once('error', (error) => resolve({ spawnFailed: true, why: error.message }))
      child.once('exit', (code, signal) => resolve({ spawnFailed: false, why: `exited (${signal ?? `code ${code}`}) before answering on port ${port}` }))
    })
    const stop = () => {
      try {
        process.kill(-(child.pid as number), 'SIGTERM')
      } catch {
        // already gone
      }
    }
    const base = `http://127.0.0.1:${port}`
    const polling = new AbortController()
    const outcome = await Promise.race([exited, answering(base, Date.now() + answerWithinMs, polling.signal)])
    polling.abort()
    if (outcome === true) return { base, stop }
    stop()
    if (typeof outcome !== 'string' && outcome.spawnFailed) throw new Error(`cannot start xvfb-run (apt-get install -y xvfb): ${outcome.why}`)
    const written = stderr.trim()
    failures.push(`attempt ${attempt}: ${typeof outcome === 'string' ? outcome : outcome.why}${written === '' ? '' : `: ${written}`}`)
    // Only an early exit is worth another port; a driver that hung would hang again.
    if (typeof outcome === 'string') break
  }
  throw new Error(`${driver} did not start:\n${failures.join('\n')}`)
}

/** Resolves true once `base` answers GET /status, or why not at `deadline`; gives up quietly once `stopped` aborts. */
async function answering(base: string, deadline: number, stopped: AbortSignal): Promise<true | string> {
  for (;;) {
    try {
      const response = await fetch(`${base}/status`, { signal: AbortSignal.any([stopped, AbortSignal.timeout(5_000)]) })
      // Another program that holds the port may answer too, though not as a WebDriver would.
      if (response.ok) return true
      await response.body?.cancel()
    } catch {
      if (stopped.aborted) return 'stopped'
    }
    if (Date.now() >= deadline) return `did not answer on ${base} in time`
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
}

/**
 * Starts `driver` (see startDriverProcess) and opens a session with these capabilities. Its process group is ended
 * by `close`.
 */
export async function startWebDriver(driver: string, capabilities: Record<string, unknown>): Promise<WebDriverSession> {
  const { base, stop } = await startDriverProcess(driver)
  const call = async (method: string, path: string, body?: unknown): Promise<unknown> => {
    const response = await fetch(`${base}${path}`, { method, headers: { 'content-type': 'application/json' }, body: body === undefined ? null : JSON.stringify(body) })
    const { value } = (await response.json()) as { value: unknown }
    if (!response.ok) throw new Error(`WebDriver ${method} ${path}: ${JSON.stringify(value).slice(0, 2000)}`)
    return value
  }
  try {
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
