// Test helpers for the privilege layer: running tests/privilege/probe.ts as root or as another uid,
// a copy of the deno binary other users can execute, and /proc thread credential assertions.

import { join } from "node:path";
import { threadCredentials, type ThreadCreds } from "../../privilege/inspect.ts";
import { CEEMS_ENV, repoRoot, startCeems, worldExecutableDeno } from "./process.ts";

export { worldExecutableDeno };

/** Path of the probe program. */
export const probeTs = join(repoRoot, "tests/privilege/probe.ts");

let installed = false;
/** Makes sure node_modules exists (as root), since runs with --node-modules-dir=manual never create it. */
function ensureNodeModules(): void {
  if (installed) return;
  try {
    Deno.statSync(join(repoRoot, "node_modules/prom-client"));
  } catch {
    const r = new Deno.Command(Deno.execPath(), { args: ["install"], cwd: repoRoot, stdout: "null", stderr: "piped" })
      .outputSync();
    if (r.code !== 0) throw new Error(`deno install failed: ${new TextDecoder().decode(r.stderr)}`);
  }
  installed = true;
}

/** Runs the probe to completion; returns its JSON report and stderr. */
export async function runProbe(
  args: string[],
  opts: { uid?: number; gid?: number; env?: Record<string, string> } = {},
): Promise<{ code: number; report: Record<string, unknown>; stderr: string }> {
  ensureNodeModules();
  const deno = opts.uid ? worldExecutableDeno() : Deno.execPath();
  const out = await new Deno.Command(deno, {
    args: ["run", "-A", "--node-modules-dir=manual", probeTs, ...args],
    uid: opts.uid,
    gid: opts.gid,
    env: { ...CEEMS_ENV, ...opts.env },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  const stdout = dec.decode(out.stdout);
  const stderr = dec.decode(out.stderr);
  const line = stdout.split("\n").find((l) => l.startsWith("{"));
  if (!line) throw new Error(`probe printed no report (code ${out.code}):\n${stdout}\n${stderr}`);
  return { code: out.code, report: JSON.parse(line), stderr };
}

/** Thread credentials as the probe reports them (hex masks as strings). */
export interface ReportedThread {
  tid: number;
  name: string;
  uid: number[];
  gid: number[];
  capPrm: string;
  capEff: string;
  capInh: string;
  capAmb: string;
}

/**
 * Asserts the dropped state on every thread: uid/gid all four fields = `id`, CapEff, CapInh and
 * CapAmb zero, the main thread's CapPrm exactly `mask` and no thread's CapPrm outside it or between.
 */
export function assertDropped(threads: (ThreadCreds | ReportedThread)[], pid: number, mask: bigint, id = 65534): void {
  const big = (v: bigint | string) => typeof v === "bigint" ? v : BigInt("0x" + v);
  if (!threads.some((t) => t.tid === pid)) throw new Error(`main thread ${pid} missing from report`);
  for (const t of threads) {
    const where = `thread ${t.tid} (${t.name})`;
    if (t.uid.length !== 4 || t.uid.some((u) => u !== id)) throw new Error(`${where}: Uid ${t.uid}`);
    if (t.gid.length !== 4 || t.gid.some((g) => g !== id)) throw new Error(`${where}: Gid ${t.gid}`);
    if (big(t.capEff) !== 0n) throw new Error(`${where}: CapEff ${t.capEff}`);
    if (big(t.capInh) !== 0n) throw new Error(`${where}: CapInh ${t.capInh}`);
    if (big(t.capAmb) !== 0n) throw new Error(`${where}: CapAmb ${t.capAmb}`);
    const prm = big(t.capPrm);
    if (t.tid === pid && prm !== mask) {
      throw new Error(`main thread CapPrm ${prm.toString(16)}, expected exactly ${mask.toString(16)}`);
    }
    // Runtime threads that existed before the drop lose everything in the uid switch; threads main
    // created afterwards inherit main's permitted set. Nothing else is acceptable.
    if (prm !== 0n && prm !== mask) throw new Error(`${where}: CapPrm ${prm.toString(16)} (expected 0 or ${mask})`);
  }
}

/**
 * Samples every thread of `pid` until `done` resolves; returns violations: a non-zero effective set on
 * main or a runtime thread (tokio, V8), on a thread still alive at the end (Workers are gone by then),
 * or outside `allowed`.
 */
export async function sampleEffective(pid: number, allowed: bigint, done: Promise<unknown>): Promise<{
  samples: number;
  raisedSeen: number;
  violations: string[];
}> {
  const raised = new Map<number, bigint>();
  const runtimeThreads = new Set<number>();
  let finished = false;
  done.finally(() => finished = true);
  let samples = 0;
  while (!finished) {
    try {
      for (const t of threadCredentials(pid)) {
        if (t.capEff === 0n) continue;
        raised.set(t.tid, t.capEff);
        if (t.tid === pid || /^(tokio|V8 )/.test(t.name)) runtimeThreads.add(t.tid);
      }
    } catch {
      break; // process gone
    }
    samples++;
    await new Promise((r) => setTimeout(r, 3));
  }
  await done;
  const alive = new Set((() => {
    try {
      return threadCredentials(pid).map((t) => t.tid);
    } catch {
      return [];
    }
  })());
  const violations: string[] = [];
  for (const [tid, eff] of raised) {
    if (runtimeThreads.has(tid)) violations.push(`main or runtime thread ${tid} had CapEff ${eff.toString(16)}`);
    if (alive.has(tid)) violations.push(`thread ${tid} with CapEff ${eff.toString(16)} still alive`);
    if ((eff & ~allowed) !== 0n) violations.push(`thread ${tid} CapEff ${eff.toString(16)} outside allowed`);
  }
  return { samples, raisedSeen: raised.size, violations };
}

/** A ceems subprocess started by startAs. */
export interface StartedCeems {
  pid: number;
  base: string;
  /** Sends `signal`, waits, returns exit code and stderr. */
  stop(signal?: Deno.Signal): Promise<{ code: number; stderr: string }>;
  /** Everything written to stderr so far. */
  stderr(): string;
}

/**
 * Starts `ceems <args>` on a free port as root or as `uid` (through a world-executable deno and
 * --node-modules-dir=manual, so no cache or download is needed) and waits for /health.
 */
export async function startAs(args: string[], opts: { uid?: number; gid?: number } = {}): Promise<StartedCeems> {
  ensureNodeModules();
  const p = await startCeems(args, {
    uid: opts.uid,
    gid: opts.gid,
    deno: opts.uid ? worldExecutableDeno() : undefined,
    runFlags: ["--node-modules-dir=manual"],
    readyTimeoutMs: 30_000,
  });
  return { pid: p.child.pid, base: p.base, stop: p.stop, stderr: p.stderr };
}
