// Promises that callers' functions return where none is expected. Its own module, importing nothing: the
// browser's first load needs none of it, and a module shared with it would cost that load a chunk more.

/** Whether `value` is a promise (or any thenable). */
export function isThenable(value: unknown): value is PromiseLike<unknown> {
  return typeof (value as PromiseLike<unknown> | null | undefined)?.then === 'function'
}

/** Let a promise that nothing awaits reject quietly: an unhandled rejection ends a Node process. */
export function ignoreRejection(value: unknown): void {
  if (isThenable(value)) value.then(undefined, () => undefined)
}
