/**
 * The platform's setImmediate while it works. Next.js's Edge runtime has one that throws when called (as it has
 * for each Node API it lacks), so the first failed call hands over to setTimeout for good.
 */
let immediate: ((callback: () => void) => unknown) | undefined = globalThis.setImmediate

/** The next turn of the event loop (a macrotask): I/O that has completed is delivered before it. */
export const nextTurn = (callback: () => void): unknown => {
  if (immediate)
    try {
      return immediate(callback)
    } catch {
      immediate = undefined
    }
  return setTimeout(callback, 0)
}

/** Resolves at the next turn of the event loop: for loops of synchronous work that a hostile input can make long. */
export const turn = (): Promise<void> => new Promise((resolve) => nextTurn(resolve))

/**
 * Frames a decrypt opens in one turn of the event loop (a stream: in one output chunk). Each costs about 3 µs whatever
 * its length, which whoever writes a message chooses: 33 MB of 1-byte frames held the thread for 3.5 seconds in one
 * call, and a stream written them as one chunk also for 433 MB of frame views. 16 MiB at the default frame length.
 */
export const FRAMES_PER_TURN = 4096
