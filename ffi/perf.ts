// perf_event_open(2) through libc's syscall(): opening counting events per process or per cgroup and
// CPU, and reading them with the time_enabled/time_running read format used for multiplex scaling.

import { closeRaw, errno, ErrnoError, libc, O_DIR_RDONLY, openRaw, readRaw, syscallNumbers } from "./libc.ts";

const PERF_FLAG_FD_CLOEXEC = 1n << 3n;
const PERF_FLAG_PID_CGROUP = 1n << 2n;
const PERF_FORMAT_TOTAL_TIME_ENABLED = 1n;
const PERF_FORMAT_TOTAL_TIME_RUNNING = 2n;
/** PERF_ATTR_SIZE_VER7. */
const attrSize = 128;

/** perf_event_attr.type values. */
export const PerfType = { hardware: 0, software: 1, tracepoint: 2, hwCache: 3 } as const;

/** One event to open: perf type and config. */
export interface PerfEventSpec {
  type: number;
  config: number;
}

/** Where an event counts: a process (with its future children) or a cgroup on one CPU. */
export type PerfTarget =
  | { pid: number; inherit: boolean }
  | { cgroupPath: string; cpu: number };

function attrFor(ev: PerfEventSpec, inherit: boolean): Uint8Array<ArrayBuffer> {
  const buf = new Uint8Array(attrSize);
  const v = new DataView(buf.buffer);
  v.setUint32(0, ev.type, true);
  v.setUint32(4, attrSize, true);
  v.setBigUint64(8, BigInt(ev.config), true);
  v.setBigUint64(32, PERF_FORMAT_TOTAL_TIME_ENABLED | PERF_FORMAT_TOTAL_TIME_RUNNING, true);
  // Flag bits: disabled(0)=0, inherit(1), exclude_hv(6).
  let flags = 1n << 6n;
  if (inherit) flags |= 1n << 1n;
  v.setBigUint64(40, flags, true);
  return buf;
}

function perfEventOpen(attr: Uint8Array<ArrayBuffer>, pid: number, cpu: number, flags: bigint): number {
  const fd = Number(libc().syscall5(syscallNumbers().perfEventOpen, attr, BigInt(pid), BigInt(cpu), -1n, flags));
  if (fd < 0) throw new ErrnoError("perf_event_open", errno());
  return fd;
}

/**
 * Opens one counting event on a target and returns its raw fd (synchronous, for privileged ops).
 * Throws ErrnoError (code ENOENT when the PMU lacks the event, EACCES/EPERM without CAP_PERFMON).
 */
export function perfOpenSync(ev: PerfEventSpec, target: PerfTarget): number {
  if ("pid" in target) {
    return perfEventOpen(attrFor(ev, target.inherit), target.pid, -1, PERF_FLAG_FD_CLOEXEC);
  }
  const dirFd = openRaw(target.cgroupPath, O_DIR_RDONLY);
  try {
    return perfEventOpen(attrFor(ev, false), dirFd, target.cpu, PERF_FLAG_FD_CLOEXEC | PERF_FLAG_PID_CGROUP);
  } finally {
    closeRaw(dirFd);
  }
}

/**
 * Opens a tracepoint perf event (PERF_TYPE_TRACEPOINT, config = the tracepoint id from tracefs) on every
 * process, on one CPU; returns the raw fd, for attaching a BPF program to it (synchronous, for privileged
 * ops: CAP_PERFMON). A BPF program attached through any one of these events runs for the tracepoint on
 * every CPU (it hangs off the tracepoint, not the event), so one event on one CPU is enough for that.
 */
export function perfTracepointOpenSync(tracepointId: number, cpu = 0): number {
  return perfEventOpen(
    attrFor({ type: PerfType.tracepoint, config: tracepointId }, false),
    -1,
    cpu,
    PERF_FLAG_FD_CLOEXEC,
  );
}

/** One reading of a counter. */
export interface PerfReading {
  value: bigint;
  timeEnabled: bigint;
  timeRunning: bigint;
}

const readBuf = new Uint8Array(24);

/** Reads a counter fd (no capability needed). */
export function perfRead(fd: number): PerfReading {
  const n = readRaw(fd, readBuf);
  if (n < 24) throw new ErrnoError(`short perf read (${n} bytes) on fd ${fd}`, 5);
  const v = new DataView(readBuf.buffer);
  return {
    value: v.getBigUint64(0, true),
    timeEnabled: v.getBigUint64(8, true),
    timeRunning: v.getBigUint64(16, true),
  };
}

/** The multiplex-scaled count: value × enabled / running (0 when the event never ran). */
export function scaledCount(r: PerfReading): number {
  if (r.timeRunning === 0n) return 0;
  if (r.timeRunning === r.timeEnabled) return Number(r.value);
  return Number(r.value) * (Number(r.timeEnabled) / Number(r.timeRunning));
}

/** Closes a perf fd. */
export function perfClose(fd: number): void {
  closeRaw(fd);
}

/** Online CPU numbers from a sysfs cpu list ("0-3,6"). */
export function parseCpuList(text: string): number[] {
  const out: number[] = [];
  for (const part of text.trim().split(",")) {
    if (!part) continue;
    const [a, b] = part.split("-").map(Number);
    if (!Number.isInteger(a)) continue;
    for (let c = a; c <= (Number.isInteger(b) ? b : a); c++) out.push(c);
  }
  return out;
}
