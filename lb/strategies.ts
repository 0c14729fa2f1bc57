// Backend selection strategies: round-robin (one rotating index, dead servers skipped),
// least-connection (fewest requests in flight) and resource-based (retention covers the query).

import type { Strategy } from "./config.ts";
import type { Backend } from "./backend.ts";

/** What a strategy may look at when choosing. */
export interface PickContext {
  /** Earliest time (ms since epoch) the query reads, when known. */
  queryStartMs?: number;
  /** Backends already tried for this request (skipped). */
  exclude?: Set<Backend>;
}

/** Chooses one live backend of a list, or undefined when none is alive. */
export type Picker = (backends: Backend[], ctx: PickContext) => Backend | undefined;

function live(backends: Backend[], ctx: PickContext): Backend[] {
  return backends.filter((b) => b.alive && !ctx.exclude?.has(b));
}

/** Round-robin over live backends with one rotating counter. */
export function roundRobin(): Picker {
  let next = 0;
  return (backends, ctx) => {
    const n = backends.length;
    for (let i = 0; i < n; i++) {
      const b = backends[(next + i) % n];
      if (b.alive && !ctx.exclude?.has(b)) {
        next = (next + i + 1) % n;
        return b;
      }
    }
    return undefined;
  };
}

/** The live backend with the fewest requests in flight (first one on ties). */
export function leastConnection(): Picker {
  return (backends, ctx) => {
    let best: Backend | undefined;
    for (const b of live(backends, ctx)) if (!best || b.active < best.active) best = b;
    return best;
  };
}

/**
 * Among live backends whose retention covers the query's start, the one with the fewest requests in
 * flight; with none covering it, the one with the longest retention.
 */
export function resourceBased(now = () => Date.now()): Picker {
  const lc = leastConnection();
  return (backends, ctx) => {
    const alive = live(backends, ctx);
    if (ctx.queryStartMs === undefined) return lc(alive, {});
    const age = now() - ctx.queryStartMs;
    const covering = alive.filter((b) => b.retentionMs >= age);
    if (covering.length) return lc(covering, {});
    let best: Backend | undefined;
    for (const b of alive) if (!best || b.retentionMs > best.retentionMs) best = b;
    return best;
  };
}

/** The picker for a configured strategy name. */
export function pickerFor(strategy: Strategy): Picker {
  switch (strategy) {
    case "least-connection":
      return leastConnection();
    case "resource-based":
      return resourceBased();
    default:
      return roundRobin();
  }
}
