// Result cache of /usage/current (as CEEMS: 15 minutes per request URL with from/to rounded down to 15
// minutes), keyed also by the users the request is scoped to so that no user is ever served another's rows.

/** CEEMS's cache TTL of /usage/current and the step its from/to are rounded down to. */
export const USAGE_CACHE_TTL_MS = 15 * 60_000;

/** A bounded TTL cache of usage answers. */
export class UsageCache<T = unknown> {
  readonly #entries = new Map<string, { rows: T; expiresAt: number }>();

  /** @param maxEntries oldest entries are dropped beyond this many. */
  constructor(readonly ttlMs = USAGE_CACHE_TTL_MS, readonly maxEntries = 1000) {}

  /** The cached answer and its expiry (epoch ms) for `key`, unless absent or expired. */
  get(key: string, now = Date.now()): { rows: T; expiresAt: number } | undefined {
    const e = this.#entries.get(key);
    if (!e) return undefined;
    if (e.expiresAt <= now) {
      this.#entries.delete(key);
      return undefined;
    }
    return e;
  }

  /** Caches `rows` (an answer) under `key` for the TTL. */
  set(key: string, rows: T, now = Date.now()): void {
    if (this.#entries.size >= this.maxEntries) {
      for (const [k, e] of this.#entries) if (e.expiresAt <= now) this.#entries.delete(k);
      // Still full: drop the oldest (Map iteration is insertion order).
      while (this.#entries.size >= this.maxEntries) this.#entries.delete(this.#entries.keys().next().value!);
    }
    this.#entries.delete(key);
    this.#entries.set(key, { rows, expiresAt: now + this.ttlMs });
  }

  /** Number of live or not yet purged entries. */
  get size(): number {
    return this.#entries.size;
  }
}

/** Rounds epoch ms down to a multiple of `stepMs` (CEEMS's common.Round on Unix seconds). */
export function roundDown(ms: number, stepMs = USAGE_CACHE_TTL_MS): number {
  return Math.floor(ms / stepMs) * stepMs;
}

/**
 * The cache key of a usage request: path, its query parameters in a canonical order with the rounded window in
 * place of from/to, and the users it is scoped to (undefined = all, for admins).
 */
export function usageCacheKey(
  path: string,
  q: URLSearchParams,
  win: { fromMs: number; toMs: number },
  users: string[] | undefined,
): string {
  const params = [...q].filter(([k]) => k !== "from" && k !== "to").map(([k, v]) => `${k}=${v}`).sort();
  params.push(`from=${win.fromMs / 1000}`, `to=${win.toMs / 1000}`);
  return `${path}?${params.join("&")}\0${users ? users.join("\0") : "*"}`;
}
