// A command's stdout as text, or one error line: the deadline (TimeoutError), too much output, a non-zero
// exit status with the first line of stderr. What collectors call to run their tools.

import { TimeoutError } from "../common/timeout.ts";
import { MAX_OUTPUT_BYTES } from "./exec.ts";
import type { ExecOptions, ExecRequest, SecurityContext, SecurityManager } from "./security.ts";

/**
 * Runs `req` in `context` and returns its stdout. Throws TimeoutError at the deadline, and an Error
 * naming the command when it cannot start, prints more than the cap, or exits non-zero.
 */
export async function commandOutput(
  security: SecurityManager,
  context: SecurityContext,
  req: ExecRequest,
  opts: ExecOptions,
): Promise<string> {
  const what = req.cmd.join(" ");
  let o;
  try {
    o = await security.exec(context, req, opts);
  } catch (e) {
    throw new Error(`${what}: ${(e as Error).message}`);
  }
  if (o.status === "timeout") throw new TimeoutError(what, req.timeoutMs);
  if (o.status === "aborted") throw new Error(`${what}: aborted (${req.signal?.reason ?? "stopping"})`);
  if (o.status === "overflow") throw new Error(`${what}: output over ${req.maxBytes ?? MAX_OUTPUT_BYTES} bytes`);
  if (o.code !== 0) {
    const why = o.stderr.trim().split("\n")[0]?.slice(0, 200) ?? "";
    throw new Error(`${what} exited with status ${o.code}${why ? `: ${why}` : ""}`);
  }
  return o.stdout;
}
