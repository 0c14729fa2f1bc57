// The disposable privileged Worker: raises exactly its context's capabilities on its own thread (raw
// capset), runs the operations synchronously, drops every capability in `finally`, posts plain data.
/// <reference lib="deno.worker" />

import { gettid } from "../ffi/libc.ts";
import { capgetThread, capsetThread, maskOf } from "./capset.ts";
import { type Capability, type OpResult, type PrivilegedOp, runOpSync } from "./ops.ts";

/** What the manager posts to the Worker. */
export interface WorkerRequest {
  context: string;
  caps: Capability[];
  ops: PrivilegedOp[];
}

/** What the Worker posts back. */
export interface WorkerReply {
  tid: number;
  results: OpResult[];
  /** Effective mask seen while raised, for tests and debugging (as a hex string). */
  raisedEffective: string;
}

function handle(req: WorkerRequest): WorkerReply {
  const tid = gettid();
  const want = maskOf(req.caps);
  const start = capgetThread();
  if ((want & ~start.permitted) !== 0n) {
    const error = `security context ${req.context}: capabilities ${req.caps.join(",")} not all permitted`;
    return { tid, results: req.ops.map(() => ({ ok: false, error })), raisedEffective: "0" };
  }
  let results: OpResult[];
  let raisedEffective = 0n;
  try {
    capsetThread({ permitted: start.permitted, effective: want, inheritable: 0n });
    raisedEffective = capgetThread().effective;
    results = req.ops.map(runOpSync);
  } finally {
    // Nothing stays on this thread: permitted goes too, so even a late native call cannot raise again.
    capsetThread({ permitted: 0n, effective: 0n, inheritable: 0n });
  }
  return { tid, results, raisedEffective: raisedEffective.toString(16) };
}

self.onmessage = (ev: MessageEvent<WorkerRequest>) => {
  self.postMessage(handle(ev.data));
};
