/** The next turn of the event loop (a macrotask): I/O that has completed is delivered before it. */
export const nextTurn: (callback: () => void) => unknown =
  typeof setImmediate === 'function' ? setImmediate : (callback) => setTimeout(callback, 0)

/** Resolves at the next turn of the event loop: for loops of synchronous work that a hostile input can make long. */
export const turn = (): Promise<void> => new Promise((resolve) => nextTurn(resolve))
