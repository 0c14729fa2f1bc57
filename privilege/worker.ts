// The disposable privileged Worker: for each security context of its batch, raises exactly that context's
// capabilities on its own thread (raw capset), runs the operations synchronously and lowers them in `finally`.
/// <reference lib="deno.worker" />

import { gettid } from "../ffi/libc.ts";
import { capgetThread, capsetThread, maskOf } from "./capset.ts";
import { type Capability, type OpResult, type PrivilegedOp, runOpSync } from "./ops.ts";

/** One security context's work inside a Worker request. */
export interface WorkerItem {
  context: string;
  caps: Capability[];
  ops: PrivilegedOp[];
  /** The operation kinds the context declares (privilege/declare.ts); others are refused unrun. */
  allowed: PrivilegedOp["kind"][];
}

/** What the manager posts to the Worker: the contexts of one batch, run one after the other. */
export interface WorkerRequest {
  items: WorkerItem[];
}

/** Outcome of one item. */
export interface WorkerItemReply {
  results: OpResult[];
  /** Effective mask seen while this item was raised, for tests and debugging (as a hex string). */
  raisedEffective: string;
}

/** What the Worker posts back. */
export interface WorkerReply {
  tid: number;
  items: WorkerItemReply[];
}

/** Raises exactly `item.caps`, runs its ops, and lowers the effective set again, whatever happens. */
function runItem(item: WorkerItem, permitted: bigint): WorkerItemReply {
  const want = maskOf(item.caps);
  const refused = item.ops.find((op) => !item.allowed.includes(op.kind));
  if (refused) {
    const error = `security context ${item.context}: ${refused.kind} is not declared for it`;
    return { results: item.ops.map(() => ({ ok: false, error })), raisedEffective: "0" };
  }
  if ((want & ~permitted) !== 0n) {
    const error = `security context ${item.context}: capabilities ${item.caps.join(",")} not all permitted`;
    return { results: item.ops.map(() => ({ ok: false, error })), raisedEffective: "0" };
  }
  let raisedEffective = 0n;
  try {
    capsetThread({ permitted, effective: want, inheritable: 0n });
    raisedEffective = capgetThread().effective;
    return { results: item.ops.map(runOpSync), raisedEffective: raisedEffective.toString(16) };
  } finally {
    capsetThread({ permitted, effective: 0n, inheritable: 0n });
  }
}

function handle(req: WorkerRequest): WorkerReply {
  const tid = gettid();
  const permitted = capgetThread().permitted;
  try {
    return { tid, items: req.items.map((item) => runItem(item, permitted)) };
  } finally {
    // Nothing stays on this thread: permitted goes too, so even a late native call cannot raise again.
    capsetThread({ permitted: 0n, effective: 0n, inheritable: 0n });
  }
}

self.onmessage = (ev: MessageEvent<WorkerRequest>) => {
  self.postMessage(handle(ev.data));
};
