/** The next turn of the event loop (a macrotask): I/O that has completed is delivered before it. */
export const nextTurn: (callback: () => void) => unknown =
  typeof setImmediate === 'function' ? setImmediate : (callback) => setTimeout(callback, 0)
