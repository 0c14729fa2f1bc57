// Reads a started command's stdout and stderr asynchronously, up to a cap, until it exits and closes them
// or its deadline passes; at the deadline it returns at once and leaves the killing to the caller.

import type { ExecOutcome, ExecRequest } from "./exec.ts";
import { MAX_OUTPUT_BYTES } from "./exec.ts";

class Overflow extends Error {}

function joinChunks(chunks: Uint8Array[]): string {
  const all = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let off = 0;
  for (const c of chunks) {
    all.set(c, off);
    off += c.length;
  }
  return new TextDecoder().decode(all);
}

/**
 * Collects `child`'s output. Resolves with status "exited" once both pipes reached end-of-file and the
 * child exited, "timeout" at `req.timeoutMs` (without waiting for end-of-file: an orphan may hold the
 * pipe), "overflow" as soon as the output passes the cap. Never rejects.
 */
export async function collectOutput(child: Deno.ChildProcess, req: ExecRequest): Promise<ExecOutcome> {
  const max = req.maxBytes ?? MAX_OUTPUT_BYTES;
  const out: Uint8Array[] = [];
  const err: Uint8Array[] = [];
  let total = 0;
  const pump = async (stream: ReadableStream<Uint8Array>, into: Uint8Array[]) => {
    const reader = stream.getReader();
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return;
      total += value.length;
      if (total > max) {
        reader.cancel().catch(() => {});
        throw new Overflow();
      }
      into.push(value);
    }
  };
  let timer: ReturnType<typeof setTimeout> | undefined;
  const deadline = new Promise<"timeout">((resolve) => timer = setTimeout(() => resolve("timeout"), req.timeoutMs));
  const aborted = abortOf(req.signal);
  const finished = Promise.all([pump(child.stdout, out), pump(child.stderr, err), child.status]);
  finished.catch(() => {}); // the pumps may fail after we returned (killed child, overflow)
  const result = (status: ExecOutcome["status"], code: number | null): ExecOutcome => ({
    status,
    code,
    stdout: joinChunks(out),
    stderr: joinChunks(err),
    pid: child.pid,
  });
  try {
    const r = await Promise.race([finished, deadline, aborted.promise]);
    if (r === "timeout" || r === "aborted") return result(r, null);
    return result("exited", r[2].code);
  } catch (e) {
    if (e instanceof Overflow) return result("overflow", null);
    throw e;
  } finally {
    clearTimeout(timer);
    aborted.release();
  }
}

/** A promise resolving "aborted" when `signal` fires (never, without one), and how to stop listening. */
export function abortOf(signal?: AbortSignal): { promise: Promise<"aborted">; release: () => void } {
  if (!signal) return { promise: new Promise(() => {}), release: () => {} };
  let onAbort = () => {};
  const promise = new Promise<"aborted">((resolve) => {
    onAbort = () => resolve("aborted");
    if (signal.aborted) resolve("aborted");
    else signal.addEventListener("abort", onAbort, { once: true });
  });
  return { promise, release: () => signal.removeEventListener("abort", onAbort) };
}
