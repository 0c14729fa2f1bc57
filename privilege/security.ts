// The security manager collectors and servers use for privileged work: `run(context, ops)` executes
// operations that need the capabilities a context names. This version runs them inline.

import type { Capability, OpResult, PrivilegedOp } from "./ops.ts";
import { runOpSync } from "./ops.ts";

export type { Capability, OpResult, PrivilegedOp } from "./ops.ts";

/** A named security context and the capabilities its operations need. */
export interface SecurityContext {
  name: string;
  caps: Capability[];
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
