// The disposable Worker that runs one command as root: spawns it synchronously with the context's
// capabilities (exec_spawn.ts), then, holding none, reads its output asynchronously up to the deadline.
/// <reference lib="deno.worker" />

import { gettid } from "../ffi/libc.ts";
import { capgetThread } from "./capset.ts";
import type { ExecOutcome } from "./exec.ts";
import { collectOutput } from "./exec_collect.ts";
import { type RootExecRequest, spawnAsRoot } from "./exec_spawn.ts";

/** What the exec Worker posts back. */
export interface RootExecReply {
  outcome?: ExecOutcome;
  error?: string;
  /** The thread's permitted set (hex) once the child runs: always 0. */
  permittedAfterSpawn: string;
  /** Kernel tid of the Worker's thread. */
  tid?: number;
}

self.onmessage = (ev: MessageEvent<RootExecRequest>) => {
  const tid = gettid();
  let child: Deno.ChildProcess;
  try {
    child = spawnAsRoot(ev.data);
  } catch (e) {
    const reply: RootExecReply = { error: (e as Error).message, permittedAfterSpawn: "0", tid };
    self.postMessage(reply);
    return;
  }
  const permittedAfterSpawn = capgetThread().permitted.toString(16);
  collectOutput(child, ev.data.req).then(
    (outcome) => self.postMessage({ outcome, permittedAfterSpawn, tid } satisfies RootExecReply),
    (e) => self.postMessage({ error: (e as Error).message, permittedAfterSpawn, tid } satisfies RootExecReply),
  );
};
