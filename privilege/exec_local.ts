// Runs commands from the calling thread without any capability (capability-free tools; every tool when the
// process is unmanaged), asynchronously, and cleans up after them: deadline kills, orphans, zombies.

import { prctl } from "../ffi/libc.ts";
import { EXEC_MARKER, type ExecOutcome, type ExecRequest, spawnChild } from "./exec.ts";
import { collectOutput } from "./exec_collect.ts";
import { childrenOf, descendantsOf, envOf, killPids, procInfo, reapZombieChildren } from "./janitor.ts";

const PR_SET_CHILD_SUBREAPER = 36;

/** Direct children started here whose exit status Deno has not collected yet. */
const live = new Set<number>();
/** Markers of the runs still going (their descendants are not leftovers yet). */
const liveMarkers = new Set<string>();
let seq = 0;
let owning = false;
let foreignRuns = 0;

/**
 * Makes this process the subreaper of everything it starts (orphans of a command's children come back
 * to it instead of init, so they can be found and killed) and the reaper of all its children. Called once
 * by the security set-up of a ceems process; tests running collectors in-process do not call it.
 */
export function adoptOrphans(): void {
  prctl(PR_SET_CHILD_SUBREAPER, 1n);
  owning = true;
}

/** A fresh marker for one run: `<pid>.<n>`. */
export function newMarker(): string {
  return `${Deno.pid}.${++seq}`;
}

/** Counts a run started elsewhere (a root exec on a Worker) whose children must not be reaped from here. */
export function foreignRun<T>(p: Promise<T>): Promise<T> {
  foreignRuns++;
  return p.finally(() => foreignRuns--);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Kills what finished runs left among this process's own-uid children (orphans carrying one of our
 * markers, and their descendants), then reaps: the killed ones, and, once `adoptOrphans` was called, every
 * other exited child that is not a live run's (children of root runs only while none is going, or when
 * `rootRunDone`: the caller is the root run that just ended, and waits for its killed leftovers too).
 */
export async function sweepLeftovers(extraKilled: number[] = [], rootRunDone = false): Promise<void> {
  const me = Deno.uid();
  const mine = `${Deno.pid}.`;
  const targets: number[] = [];
  for (const pid of childrenOf(Deno.pid)) {
    if (live.has(pid)) continue;
    const info = procInfo(pid);
    if (!info || info.uid !== me || info.state === "Z") continue;
    const m = envOf(pid, EXEC_MARKER);
    if (!m?.startsWith(mine) || liveMarkers.has(m)) continue;
    targets.push(pid, ...descendantsOf(pid));
  }
  const killed = new Set([...killPids(targets), ...extraKilled]);
  const foreignOk = rootRunDone ? foreignRuns <= 1 : foreignRuns === 0;
  const pick = (p: { pid: number; uid: number }) =>
    killed.has(p.pid) || (owning && !live.has(p.pid) && (p.uid === me || foreignOk));
  // Leftovers of a root run die from the sweep's SIGKILL: wait (bounded) until they are reaped too.
  const foreignLeft = () => rootRunDone && foreignOk && descendantsOf(Deno.pid).some((p) => procInfo(p)?.uid !== me);
  for (let i = 0; i < 100; i++) {
    for (const pid of reapZombieChildren(pick)) killed.delete(pid);
    const pending = [...killed].filter((p) => procInfo(p) !== undefined);
    if (pending.length === 0 && !foreignLeft()) return;
    await sleep(10);
  }
}

/**
 * Runs `req` as a child of the calling thread (with `ids` as its uid/gid: only for a process that may set
 * them). At the deadline or past the output cap the child and its descendants are killed; leftovers of
 * finished runs are swept either way. Throws only when the command cannot be started.
 */
export async function runLocal(req: ExecRequest, ids?: { uid: number; gid: number }): Promise<ExecOutcome> {
  const marker = newMarker();
  const child = spawnChild(req, marker, ids);
  const pid = child.pid;
  live.add(pid);
  liveMarkers.add(marker);
  child.status.catch(() => {}).finally(() => live.delete(pid));
  let killed: number[] = [];
  try {
    const outcome = await collectOutput(child, req);
    if (outcome.status !== "exited") {
      killed = killPids([pid, ...descendantsOf(pid)]);
      await Promise.race([child.status.catch(() => {}), sleep(1000)]);
    }
    return outcome;
  } finally {
    liveMarkers.delete(marker);
    await sweepLeftovers(killed.filter((p) => p !== pid));
  }
}
