// Where the load balancer analyses queries: inline when they are small (microseconds), on a Worker
// thread with a deadline when they are large, so no query keeps the event loop from other requests.

import { analyseAll, type QueryAnalysis, type QueryShape } from "./promql_access.ts";
import type { AnalysisReply, AnalysisRequest } from "./query_worker.ts";

/** Queries up to this many characters in total are analysed inline (well under a millisecond). */
export const INLINE_CHARS = 1024;

/** Longest analysis of a large query before it is refused and the worker replaced. */
export const ANALYSIS_TIMEOUT_MS = 2_000;

type Pending = { resolve(a: QueryAnalysis): void; timer: ReturnType<typeof setTimeout>; msg: AnalysisRequest };

/** Analyses queries (see {@link analyseAll}) without stalling the event loop. */
export class QueryAnalyser {
  #worker?: Worker;
  /** Whether the current worker has loaded (one still starting is slow, not stuck: it is not replaced). */
  #ready = false;
  #pending = new Map<number, Pending>();
  #next = 1;

  constructor(readonly timeoutMs = ANALYSIS_TIMEOUT_MS, readonly inlineChars = INLINE_CHARS) {}

  /** The module of the analysis Worker (its files must be readable after a privilege drop). */
  static readonly workerUrl: URL = new URL("./query_worker.ts", import.meta.url);

  analyse(queries: string[], label: string, shape: QueryShape = "expression"): Promise<QueryAnalysis> {
    const chars = queries.reduce((n, q) => n + q.length, 0);
    if (chars <= this.inlineChars) return Promise.resolve(analyseAll(queries, label, shape));
    const id = this.#next++;
    return new Promise((resolve) => this.#send({ resolve, msg: { id, queries, label, shape } }));
  }

  /** Posts a question to the worker (started if needed) with its own deadline. */
  #send(p: Omit<Pending, "timer">): void {
    const worker = this.#worker ??= this.#spawn();
    const id = p.msg.id;
    const timer = setTimeout(() => {
      if (!this.#pending.delete(id)) return;
      p.resolve({ ok: false, status: 400, reason: `query too complex: not analysed within ${this.timeoutMs} ms` });
      // Only the slow question is refused: the others queued behind it go to a fresh worker.
      if (this.#ready) this.#replace();
    }, this.timeoutMs);
    this.#pending.set(id, { ...p, timer });
    worker.postMessage(p.msg);
  }

  /** Replaces a stuck worker; the questions it still held are asked again of the new one. */
  #replace(): void {
    this.#worker?.terminate();
    this.#worker = undefined;
    const again = [...this.#pending.values()];
    this.#pending.clear();
    for (const p of again) {
      clearTimeout(p.timer);
      this.#send(p);
    }
  }

  #spawn(): Worker {
    const w = new Worker(QueryAnalyser.workerUrl.href, { type: "module" });
    this.#ready = false;
    w.onmessage = (e: MessageEvent<AnalysisReply>) => {
      if (!e.data.analysis) {
        this.#ready = true;
        return;
      }
      const p = this.#pending.get(e.data.id);
      if (!p) return;
      this.#pending.delete(e.data.id);
      clearTimeout(p.timer);
      p.resolve(e.data.analysis);
    };
    w.onerror = (e) => {
      e.preventDefault();
      this.#restart(`query analysis failed: ${e.message}`);
    };
    return w;
  }

  /** Drops the worker (a stuck or failed one); questions it held are refused, the next large one starts another. */
  #restart(reason = "query analysis was interrupted"): void {
    this.#worker?.terminate();
    this.#worker = undefined;
    for (const p of this.#pending.values()) {
      clearTimeout(p.timer);
      p.resolve({ ok: false, status: 400, reason });
    }
    this.#pending.clear();
  }

  close(): void {
    this.#restart("load balancer stopping");
  }
}
