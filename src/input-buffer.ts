import { EMPTY } from './format/bytes.js'

/**
 * Unconsumed stream input as one contiguous view. A chunk that arrives on an empty buffer is used in
 * place (no copy); bytes are copied only when they must join the next chunk, and `detach` copies the
 * leftover before the caller's chunk is handed back.
 */
export class InputBuffer {
  private store = EMPTY
  private start = 0
  private end = 0
  /** A view into a chunk the buffer does not own, while it has not been copied. */
  private borrowed: Uint8Array | undefined

  get bytes(): Uint8Array {
    return this.borrowed ?? this.store.subarray(this.start, this.end)
  }

  get length(): number {
    return this.borrowed?.length ?? this.end - this.start
  }

  push(chunk: Uint8Array): void {
    if (chunk.length === 0) return
    if (this.length === 0) {
      this.start = this.end = 0
      this.borrowed = chunk
      return
    }
    this.detach()
    this.reserve(chunk.length)
    this.store.set(chunk, this.end)
    this.end += chunk.length
  }

  /**
   * Append from `chunk` only until the buffer holds `target` bytes; returns what is left of the chunk.
   */
  take(chunk: Uint8Array, target: number): Uint8Array {
    const count = Math.max(0, Math.min(chunk.length, target - this.length))
    this.push(chunk.subarray(0, count))
    return chunk.subarray(count)
  }

  consume(count: number): void {
    if (this.borrowed !== undefined) {
      this.borrowed = count >= this.borrowed.length ? undefined : this.borrowed.subarray(count)
    } else {
      this.start += count
      if (this.start === this.end) this.start = this.end = 0
    }
  }

  /** Copy borrowed bytes into owned storage. */
  detach(): void {
    const borrowed = this.borrowed
    if (borrowed === undefined) return
    this.borrowed = undefined
    this.start = this.end = 0
    this.reserve(borrowed.length)
    this.store.set(borrowed, 0)
    this.end = borrowed.length
  }

  clear(): void {
    this.borrowed = undefined
    this.store = EMPTY
    this.start = this.end = 0
  }

  private reserve(extra: number): void {
    if (this.end + extra <= this.store.length) return
    const live = this.end - this.start
    const target = live + extra
    const grown = target <= this.store.length ? this.store : new Uint8Array(Math.max(target, this.store.length * 2, 1024))
    if (grown === this.store) this.store.copyWithin(0, this.start, this.end)
    else grown.set(this.store.subarray(this.start, this.end), 0)
    this.store = grown
    this.start = 0
    this.end = live
  }
}
