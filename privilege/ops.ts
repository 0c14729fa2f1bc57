// The privileged operations a security context can run, as plain data in and plain data out, each
// implemented with synchronous calls only so it can run on a Worker thread while capabilities are raised.

import {
  type BpfAttachGroup,
  type BpfLoadResult,
  bpfLoadSync,
  bpfMapDelete,
  bpfMapDumpHex,
  fromHex,
} from "../ffi/libbpf.ts";
import { perfOpenSync, type PerfTarget } from "../ffi/perf.ts";
import { O_CLOEXEC, O_NONBLOCK, O_RDONLY, O_RDWR, openRaw } from "../ffi/libc.ts";
import { type AddedAcl, removeAddedAcl } from "./acl.ts";
import { killForeignDescendants } from "./janitor.ts";

/** Linux capability names as CEEMS and systemd spell them (lower case). */
export type Capability =
  | "cap_chown"
  | "cap_dac_override"
  | "cap_dac_read_search"
  | "cap_fowner"
  | "cap_kill"
  | "cap_setgid"
  | "cap_setuid"
  | "cap_setpcap"
  | "cap_net_admin"
  | "cap_sys_ptrace"
  | "cap_sys_admin"
  | "cap_sys_resource"
  | "cap_perfmon"
  | "cap_bpf";

/** One privileged operation. */
export type PrivilegedOp =
  /** Reads a whole file (at most maxBytes) as text. */
  | { kind: "readFile"; path: string; maxBytes?: number }
  /** Reads /proc/<pid>/environ of each pid under procfs; missing processes are skipped. */
  | { kind: "readEnviron"; procfs: string; pids: number[] }
  /** Opens a file and hands back the raw descriptor, which stays valid process-wide. */
  | { kind: "openFd"; path: string; write?: boolean; nonblock?: boolean }
  /**
   * Opens one perf counting event (perf type/config) on a process (pid, inherit) or on a cgroup
   * directory and CPU; returns the raw fd, readable afterwards without capabilities.
   */
  | { kind: "perfOpen"; type: number; config: number; target: PerfTarget }
  /**
   * Opens, loads and attaches a BPF object with the first attach group that works; returns the map and
   * link fds and the libbpf object/link pointers (as bigints, for detaching at shutdown).
   */
  | { kind: "bpfLoad"; objectPath: string; groups: BpfAttachGroup[]; maps: string[]; configMap?: string }
  /**
   * Reads every entry of a BPF map by fd, as [key, value] hex strings: for kernels that refuse map access
   * without CAP_BPF (older than 6.5 with unprivileged BPF disabled), where the main thread cannot read.
   */
  | { kind: "bpfMapRead"; fd: number; keySize: number; valueSize: number }
  /** Deletes keys (hex strings) of a BPF map by fd, on the same kernels; returns how many were asked. */
  | { kind: "bpfMapDelete"; fd: number; keys: string[] }
  /** Removes the ACL entries set-up added, each only if unchanged (shutdown clean-up; needs cap_fowner). */
  | { kind: "removeAddedAcls"; entries: AddedAcl[] }
  /**
   * Kills every descendant of this process running as another uid (what commands run as root left:
   * needs cap_kill); returns how many were signalled.
   */
  | { kind: "killForeignDescendants" };

const OP_KINDS: Record<PrivilegedOp["kind"], true> = {
  readFile: true,
  readEnviron: true,
  openFd: true,
  perfOpen: true,
  bpfLoad: true,
  bpfMapRead: true,
  bpfMapDelete: true,
  removeAddedAcls: true,
  killForeignDescendants: true,
};

/** Every operation kind (a context declares the ones it runs). */
export const ALL_OP_KINDS = Object.keys(OP_KINDS) as PrivilegedOp["kind"][];

/** Result of one operation: its value, or the error message. */
export type OpResult =
  | { ok: true; value: OpValue }
  | { ok: false; error: string; code?: string };

/** Values operations return: plain data that crosses a Worker boundary. */
export type OpValue =
  | string
  | number
  | Record<string, string[]>
  | BpfLoadResult
  | [string, string][];

const decoder = new TextDecoder();

function readFileOp(path: string, maxBytes = 16 << 20): string {
  const f = Deno.openSync(path, { read: true });
  try {
    const buf = new Uint8Array(Math.min(maxBytes, 1 << 16));
    const chunks: Uint8Array[] = [];
    let total = 0;
    while (total < maxBytes) {
      const n = f.readSync(buf);
      if (n === null || n === 0) break;
      chunks.push(buf.slice(0, n));
      total += n;
    }
    const all = new Uint8Array(total);
    let off = 0;
    for (const c of chunks) {
      all.set(c, off);
      off += c.length;
    }
    return decoder.decode(all);
  } finally {
    f.close();
  }
}

function readEnvironOp(procfs: string, pids: number[]): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const pid of pids) {
    try {
      out[String(pid)] = readFileOp(`${procfs}/${pid}/environ`, 1 << 20).split("\0").filter((s) => s);
    } catch {
      // The process ended or is not readable: skip it.
    }
  }
  return out;
}

function openFdOp(path: string, write: boolean, nonblock: boolean): number {
  // open(2) through FFI: Deno.FsFile cannot hand out its descriptor, and this one must outlive the Worker.
  return openRaw(path, (write ? O_RDWR : O_RDONLY) | O_CLOEXEC | (nonblock ? O_NONBLOCK : 0));
}

function removeAclsOp(entries: AddedAcl[]): number {
  let removed = 0;
  const errors: string[] = [];
  for (const a of entries) {
    try {
      if (removeAddedAcl(a) === "removed") removed++;
    } catch (e) {
      errors.push((e as Error).message);
    }
  }
  if (errors.length) throw new Error(errors.join("; "));
  return removed;
}

/** Runs one operation synchronously, catching its error into the result. */
export function runOpSync(op: PrivilegedOp): OpResult {
  try {
    switch (op.kind) {
      case "readFile":
        return { ok: true, value: readFileOp(op.path, op.maxBytes) };
      case "readEnviron":
        return { ok: true, value: readEnvironOp(op.procfs, op.pids) };
      case "openFd":
        return { ok: true, value: openFdOp(op.path, !!op.write, !!op.nonblock) };
      case "removeAddedAcls":
        return { ok: true, value: removeAclsOp(op.entries) };
      case "killForeignDescendants":
        return { ok: true, value: killForeignDescendants().length };
      case "perfOpen":
        return { ok: true, value: perfOpenSync({ type: op.type, config: op.config }, op.target) };
      case "bpfLoad":
        return { ok: true, value: bpfLoadSync(op.objectPath, op.groups, op.maps, op.configMap) };
      case "bpfMapRead":
        return { ok: true, value: bpfMapDumpHex(op.fd, op.keySize, op.valueSize) };
      case "bpfMapDelete":
        for (const k of op.keys) bpfMapDelete(op.fd, fromHex(k));
        return { ok: true, value: op.keys.length };
    }
  } catch (e) {
    return { ok: false, error: (e as Error).message, code: (e as { code?: string }).code };
  }
}
