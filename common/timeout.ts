// The one timeout error of the product (named "TimeoutError" like the DOMException of AbortSignal.timeout,
// so either is recognised by name) and a helper that bounds a promise with it.

/** Something did not finish within its time budget. */
export class TimeoutError extends Error {
  constructor(readonly what: string, readonly timeoutMs: number) {
    super(`${what}: timed out after ${timeoutMs} ms`);
    this.name = "TimeoutError";
  }
}

/** Whether `e` is a timeout: a TimeoutError, or the DOMException an AbortSignal.timeout raises. */
export function isTimeout(e: unknown): boolean {
  return (e as Error | undefined)?.name === "TimeoutError";
}

/**
 * Resolves as `p` does, or rejects with TimeoutError(`what`, `ms`) once `ms` have passed; the timer never
 * keeps the process alive longer than `p` does, and is cleared when `p` settles.
 */
export async function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new TimeoutError(what, ms)), ms);
  });
  try {
    return await Promise.race([p, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
