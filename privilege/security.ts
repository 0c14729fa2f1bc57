// The security manager collectors and servers use for privileged work: `run(context, ops)` executes
// operations needing the context's capabilities on a throwaway Worker thread; `exec` runs commands.

import { TimeoutError, withTimeout } from "../common/timeout.ts";
import { maskOf } from "./capset.ts";
import type { ExecOutcome, ExecRequest } from "./exec.ts";
import { abortOf } from "./exec_collect.ts";
import { foreignRun, newMarker, runLocal, sweepLeftovers } from "./exec_local.ts";
import type { RootExecRequest } from "./exec_spawn.ts";
import type { RootExecReply } from "./exec_worker.ts";
import { descendantsOf, procInfo } from "./janitor.ts";
import type { ContextUse, DeclaredContext } from "./declare.ts";
import type { Capability, OpResult, PrivilegedOp } from "./ops.ts";
import { ALL_OP_KINDS, runOpSync } from "./ops.ts";
import type { WorkerReply, WorkerRequest } from "./worker.ts";
import { EXEC_WORKER_URL, WORKER_URL } from "./worker_source.ts";

export type { Capability, OpResult, PrivilegedOp } from "./ops.ts";
export type { ExecOutcome, ExecRequest } from "./exec.ts";

/** A named security context and the capabilities its operations need. */
export interface SecurityContext {
  name: string;
  caps: Capability[];
  /** Upper bound for the whole call (default 5 s). */
  timeoutMs?: number;
}

/** How a command runs: as root (uid/gid 0, from a context holding cap_setuid+cap_setgid) or as the process. */
export interface ExecOptions {
  asRoot: boolean;
}

/** Runs privileged operations and commands on behalf of collectors. */
export interface SecurityManager {
  /** Runs `ops` with the context's capabilities raised; one result per op, in order. */
  run(context: SecurityContext, ops: PrivilegedOp[]): Promise<OpResult[]>;
  /**
   * Runs a command (absolute path, fixed environment, only stdio open, output capped, killed with every
   * descendant at its deadline) and resolves with how it ended; rejects only when it cannot be started.
   */
  exec(context: SecurityContext, req: ExecRequest, opts: ExecOptions): Promise<ExecOutcome>;
}

/** Runs operations on the calling thread with whatever credentials the process has (unmanaged). */
export class InlineSecurityManager implements SecurityManager {
  run(_context: SecurityContext, ops: PrivilegedOp[]): Promise<OpResult[]> {
    return Promise.resolve(ops.map(runOpSync));
  }

  /** Runs the command from this thread; as root it asks for uid/gid 0 (the process must be root). */
  exec(_context: SecurityContext, req: ExecRequest, opts: ExecOptions): Promise<ExecOutcome> {
    return runLocal(req, opts.asRoot ? { uid: 0, gid: 0 } : undefined);
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

const DEFAULT_CALL_TIMEOUT_MS = 5_000;

/** The context that kills what a root command left running (declared with it: privilege/declare.ts). */
export const EXEC_SWEEP_CONTEXT: SecurityContext = { name: "exec_sweep", caps: ["cap_kill"] };

function taskGone(tid: number): boolean {
  try {
    Deno.statSync(`/proc/self/task/${tid}`);
    return false;
  } catch {
    return true;
  }
}

/** terminate() is asynchronous at the OS level: waits (bounded, ~0.5 s) until the thread has exited. */
async function threadGone(tid: number): Promise<void> {
  for (let i = 0; i < 500 && !taskGone(tid); i++) await new Promise((r) => setTimeout(r, 1));
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
    /** Module the root-exec Workers start from. */
    readonly execWorkerUrl: string = EXEC_WORKER_URL,
    /**
     * The declared contexts (privilege/declare.ts): a call in a context not declared, with other
     * capabilities, or running what the context does not declare, fails unrun. Absent: not checked (tests).
     */
    readonly declared?: ReadonlyMap<string, DeclaredContext>,
  ) {}

  /** Why a call is refused by the declarations, or undefined. */
  #undeclared(context: SecurityContext, uses: ContextUse[]): string | undefined {
    if (!this.declared) return undefined;
    const d = this.declared.get(context.name);
    if (!d) return `${context.name}: security context not declared`;
    const caps = (c: Capability[]) => [...c].sort().join(",");
    if (caps(d.caps) !== caps(context.caps)) {
      return `${context.name}: capabilities ${caps(context.caps)} differ from the declared ${caps(d.caps)}`;
    }
    const bad = uses.filter((u) => !d.uses.includes(u));
    return bad.length ? `${context.name}: ${bad.join(",")} not declared for this context` : undefined;
  }

  /** The operation kinds a context may run (all when declarations are not checked). */
  #allowed(context: SecurityContext): PrivilegedOp["kind"][] {
    const uses = this.declared?.get(context.name)?.uses ?? ALL_OP_KINDS;
    return uses.filter((u): u is PrivilegedOp["kind"] => u !== "exec-root");
  }

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
    const refused = this.#undeclared(context, ops.map((o) => o.kind));
    if (refused) {
      return Promise.resolve({ results: ops.map(() => ({ ok: false, error: refused })), tid: 0, raisedEffective: "0" });
    }
    const missing = this.missing(context.caps);
    if (missing.length) {
      const error = this.#missingText(context, missing);
      return Promise.resolve({
        results: ops.map(() => ({ ok: false, error })),
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
  #rootExecs: Promise<unknown> = Promise.resolve();

  /**
   * Runs a command. Capability-free: from the main thread, asynchronously. As root: one at a time, each on
   * its own Worker (exec_worker.ts) whose thread forks with the context's capabilities and then holds none;
   * afterwards whatever the command left running is killed from an `exec_sweep` context (cap_kill).
   */
  exec(context: SecurityContext, req: ExecRequest, opts: ExecOptions): Promise<ExecOutcome> {
    if (!opts.asRoot) return runLocal(req);
    const refused = this.#undeclared(context, ["exec-root"]);
    if (refused) return Promise.reject(new Error(refused));
    const missing = this.missing(context.caps);
    if (missing.length) return Promise.reject(new Error(this.#missingText(context, missing)));
    const run = this.#rootExecs.then(() => foreignRun(this.#rootExec(context, req)));
    this.#rootExecs = run.catch(() => {});
    return run;
  }

  #missingText(context: SecurityContext, missing: Capability[]): string {
    return `${context.name}: ` + missing
      .map((c) => `missing capability ${c}${this.neededBy.get(c) ? ` (needed by ${this.neededBy.get(c)})` : ""}`)
      .join("; ");
  }

  /** Details of the last root exec (tests): the exec Worker's tid and its permitted set once the child ran. */
  lastRootExec?: { tid: number; permittedAfterSpawn: string; swept: boolean };

  async #rootExec(context: SecurityContext, req: ExecRequest): Promise<ExecOutcome> {
    const { signal, ...posted } = req; // an AbortSignal stays here: the Worker is terminated instead
    const msg: RootExecRequest = {
      context: context.name,
      permitted: maskOf(context.caps).toString(16),
      req: posted,
      marker: newMarker(),
    };
    const aborted = abortOf(signal);
    this.workersStarted++;
    const worker = new Worker(this.execWorkerUrl, { type: "module", name: `exec-${context.name}`.slice(0, 60) });
    let reply: RootExecReply;
    try {
      const replied = withTimeout(
        new Promise<RootExecReply>((resolve, reject) => {
          worker.onmessage = (ev: MessageEvent<RootExecReply>) => resolve(ev.data);
          worker.onerror = (ev: ErrorEvent) => {
            ev.preventDefault();
            reject(new Error(`${context.name}: exec worker failed: ${ev.message}`));
          };
          worker.postMessage(msg);
        }),
        req.timeoutMs + 5_000,
        `${context.name}: exec worker`,
      );
      const r = await Promise.race([replied, aborted.promise]);
      replied.catch(() => {});
      reply = r === "aborted"
        ? { outcome: { status: "aborted", code: null, stdout: "", stderr: "", pid: 0 }, permittedAfterSpawn: "?" }
        : r;
    } catch (e) {
      reply = { error: (e as Error).message, permittedAfterSpawn: "?" };
    } finally {
      aborted.release();
      worker.terminate();
    }
    if (reply.tid) await threadGone(reply.tid);
    const swept = await this.#sweepRoot(reply.outcome?.status !== "exited");
    this.lastRootExec = { tid: reply.tid ?? 0, permittedAfterSpawn: reply.permittedAfterSpawn, swept };
    if (!reply.outcome) throw new Error(`${context.name}: ${reply.error}`);
    return reply.outcome;
  }

  /**
   * Kills (exec_sweep context) every live descendant running as another uid than ours, when there is one or
   * `force`; then reaps. Root runs are serialized, so all of them are leftovers. Returns whether it killed.
   */
  async #sweepRoot(force: boolean): Promise<boolean> {
    const me = Deno.uid();
    const foreign = () =>
      descendantsOf(Deno.pid).map(procInfo).filter((p) => p && p.uid !== me && p.state !== "Z").length;
    let swept = false;
    if (force || foreign() > 0) {
      const [r] = await this.run(EXEC_SWEEP_CONTEXT, [{ kind: "killForeignDescendants" }]);
      swept = r.ok;
    }
    await sweepLeftovers([], true);
    return swept;
  }

  /** Number of Workers started so far (tests check that one scrape's calls share one). */
  workersStarted = 0;

  async #flush(): Promise<void> {
    const batch = this.#pending;
    this.#pending = [];
    const timeoutMs = batch.reduce((t, c) => t + (c.context.timeoutMs ?? DEFAULT_CALL_TIMEOUT_MS), 0);
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
        timer = setTimeout(() => reject(new TimeoutError(`${names}: privileged call`, timeoutMs)), timeoutMs);
        const req: WorkerRequest = {
          items: batch.map((c) => ({
            context: c.context.name,
            caps: c.context.caps,
            ops: c.ops,
            allowed: this.#allowed(c.context),
          })),
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
    await threadGone(reply.tid);
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

  /** See SecurityManager.exec. */
  exec(context: SecurityContext, req: ExecRequest, opts: ExecOptions): Promise<ExecOutcome> {
    return this.#target.exec(context, req, opts);
  }
}
