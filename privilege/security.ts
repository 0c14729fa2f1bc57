// The security manager collectors and servers use for privileged work: `run(context, ops)` executes
// operations needing the context's capabilities, on a throwaway Worker thread or inline when unmanaged.

import type { Capability, OpResult, PrivilegedOp } from "./ops.ts";
import { runOpSync } from "./ops.ts";
import type { WorkerReply, WorkerRequest } from "./worker.ts";

export type { Capability, OpResult, PrivilegedOp } from "./ops.ts";

/** A named security context and the capabilities its operations need. */
export interface SecurityContext {
  name: string;
  caps: Capability[];
  /** Upper bound for the whole call (default: the longest exec timeout + 2 s, at least 5 s). */
  timeoutMs?: number;
}

/** Runs privileged operations on behalf of collectors. */
export interface SecurityManager {
  /** Runs `ops` with the context's capabilities raised; one result per op, in order. */
  run(context: SecurityContext, ops: PrivilegedOp[]): Promise<OpResult[]>;
}

/** Runs operations on the calling thread with whatever credentials the process has. */
export class InlineSecurityManager implements SecurityManager {
  run(_context: SecurityContext, ops: PrivilegedOp[]): Promise<OpResult[]> {
    return Promise.resolve(ops.map(runOpSync));
  }
}

/** Details of one Worker-run call (tests and benchmarks). */
export interface RunDetails {
  results: OpResult[];
  /** Kernel tid of the Worker's thread (0 when the call ran inline). */
  tid: number;
  /** Effective mask the Worker saw while raised (hex). */
  raisedEffective: string;
}

import { WORKER_URL } from "./worker_source.ts";

function defaultTimeout(ops: PrivilegedOp[]): number {
  const execMax = Math.max(0, ...ops.map((o) => (o.kind === "exec" ? o.timeoutMs : 0)));
  return Math.max(5_000, execMax + 2_000);
}

function taskGone(tid: number): boolean {
  try {
    Deno.statSync(`/proc/self/task/${tid}`);
    return false;
  } catch {
    return true;
  }
}

/**
 * Runs each call in a fresh Worker that raises exactly the context's capabilities on its own thread.
 * Contexts needing a capability outside `permitted` fail every op with an error naming it and the flag.
 */
export class WorkerSecurityManager implements SecurityManager {
  constructor(
    readonly permitted: ReadonlySet<Capability>,
    /** Capability → flag that needs it, for error messages. */
    readonly neededBy: ReadonlyMap<Capability, string> = new Map(),
    /** Module the Workers start from. */
    readonly workerUrl: string = WORKER_URL,
  ) {}

  /** The capabilities of `caps` this manager cannot raise. */
  missing(caps: Capability[]): Capability[] {
    return caps.filter((c) => !this.permitted.has(c));
  }

  /** Runs the call; see SecurityManager.run. */
  async run(context: SecurityContext, ops: PrivilegedOp[]): Promise<OpResult[]> {
    return (await this.runDetailed(context, ops)).results;
  }

  /**
   * Runs the call and also reports the Worker's tid; resolves only once that thread is gone. Calls made in
   * the same event-loop turn (the collectors of one scrape start together) share one Worker, which runs
   * each context in turn with exactly that context's capabilities raised.
   */
  runDetailed(context: SecurityContext, ops: PrivilegedOp[]): Promise<RunDetails> {
    const missing = this.missing(context.caps);
    if (missing.length) {
      const error = missing
        .map((c) => `missing capability ${c}${this.neededBy.get(c) ? ` (needed by ${this.neededBy.get(c)})` : ""}`)
        .join("; ");
      return Promise.resolve({
        results: ops.map(() => ({ ok: false, error: `${context.name}: ${error}` })),
        tid: 0,
        raisedEffective: "0",
      });
    }
    if (context.caps.length === 0) {
      return Promise.resolve({ results: ops.map(runOpSync), tid: 0, raisedEffective: "0" });
    }
    return new Promise((resolve) => {
      this.#pending.push({ context, ops, resolve });
      if (this.#pending.length === 1) setTimeout(() => this.#flush(), 0);
    });
  }

  #pending: PendingCall[] = [];

  /** Number of Workers started so far (tests check that one scrape's calls share one). */
  workersStarted = 0;

  async #flush(): Promise<void> {
    const batch = this.#pending;
    this.#pending = [];
    const timeoutMs = batch.reduce((t, c) => t + (c.context.timeoutMs ?? defaultTimeout(c.ops)), 0);
    const names = batch.map((c) => c.context.name).join(",");
    this.workersStarted++;
    const worker = new Worker(this.workerUrl, { type: "module", name: `priv-${names}`.slice(0, 60) });
    let timer: ReturnType<typeof setTimeout> | undefined;
    let reply: WorkerReply;
    try {
      reply = await new Promise<WorkerReply>((resolve, reject) => {
        worker.onmessage = (ev: MessageEvent<WorkerReply>) => resolve(ev.data);
        worker.onerror = (ev: ErrorEvent) => {
          ev.preventDefault();
          reject(new Error(`${names}: privileged worker failed: ${ev.message}`));
        };
        timer = setTimeout(
          () => reject(new Error(`${names}: privileged call timed out after ${timeoutMs} ms`)),
          timeoutMs,
        );
        const req: WorkerRequest = {
          items: batch.map((c) => ({ context: c.context.name, caps: c.context.caps, ops: c.ops })),
        };
        worker.postMessage(req);
      });
    } catch (e) {
      clearTimeout(timer);
      worker.terminate();
      for (const c of batch) {
        c.resolve({
          results: c.ops.map(() => ({ ok: false, error: (e as Error).message })),
          tid: 0,
          raisedEffective: "0",
        });
      }
      return;
    }
    clearTimeout(timer);
    worker.terminate();
    // terminate() is asynchronous at the OS level: wait (bounded) until the thread has exited.
    for (let i = 0; i < 500 && !taskGone(reply.tid); i++) await new Promise((r) => setTimeout(r, 1));
    batch.forEach((c, i) => {
      const item = reply.items[i];
      c.resolve({ results: item.results, tid: reply.tid, raisedEffective: item.raisedEffective });
    });
  }
}

interface PendingCall {
  context: SecurityContext;
  ops: PrivilegedOp[];
  resolve: (d: RunDetails) => void;
}

/**
 * The manager handed to features constructed before setupSecurity (CEEMS builds collectors with the
 * start-up credentials, then drops): calls run inline until `use()` installs the real manager.
 */
export class DeferredSecurityManager implements SecurityManager {
  #target: SecurityManager = new InlineSecurityManager();

  /** Routes every later call to `m`. */
  use(m: SecurityManager): void {
    this.#target = m;
  }

  /** See SecurityManager.run. */
  run(context: SecurityContext, ops: PrivilegedOp[]): Promise<OpResult[]> {
    return this.#target.run(context, ops);
  }
}
