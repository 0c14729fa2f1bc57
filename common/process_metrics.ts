// process_* metrics about the running ceems process (CPU time, memory, start time, file
// descriptors), read cheaply from one /proc/self/stat per scrape, for the exporter-metrics registry.

import client from "prom-client";

const pageSize = 4096;
const userHz = 100;

/** A snapshot of the process's own resource usage. */
export interface ProcessSnapshot {
  cpuUser: number;
  cpuSystem: number;
  residentBytes: number;
  virtualBytes: number;
  startTime: number;
  openFds?: number;
  maxFds?: number;
}

let bootTime: number | undefined;

function readBootTime(): number {
  if (bootTime === undefined) {
    const m = /^btime (\d+)$/m.exec(Deno.readTextFileSync("/proc/stat"));
    bootTime = m ? Number(m[1]) : 0;
  }
  return bootTime;
}

/** Parses /proc/self/stat (fields after the parenthesised command name). */
export function parseSelfStat(text: string, boot: number): Omit<ProcessSnapshot, "openFds" | "maxFds"> {
  const f = text.slice(text.lastIndexOf(")") + 2).split(" ");
  // f[0] is field 3 (state); utime=14, stime=15, starttime=22, vsize=23, rss=24 (1-based in proc(5)).
  return {
    cpuUser: Number(f[11]) / userHz,
    cpuSystem: Number(f[12]) / userHz,
    startTime: boot + Number(f[19]) / userHz,
    virtualBytes: Number(f[20]),
    residentBytes: Number(f[21]) * pageSize,
  };
}

let maxFds: number | undefined;

/** Reads the current snapshot; descriptor counts are left out when /proc/self/fd is not readable. */
export function processSnapshot(): ProcessSnapshot {
  const snap: ProcessSnapshot = parseSelfStat(Deno.readTextFileSync("/proc/self/stat"), readBootTime());
  try {
    let n = 0;
    for (const _ of Deno.readDirSync("/proc/self/fd")) n++;
    snap.openFds = n;
  } catch {
    // Not readable once the process is non-dumpable after the privilege drop.
  }
  if (maxFds === undefined) {
    const m = /^Max open files\s+(\d+)/m.exec(Deno.readTextFileSync("/proc/self/limits"));
    maxFds = m ? Number(m[1]) : -1;
  }
  if (maxFds >= 0) snap.maxFds = maxFds;
  return snap;
}

/** Registers process_* metrics on `registry`, all fed by one snapshot per scrape. */
export function registerProcessMetrics(registry: client.Registry): void {
  let cached: { at: number; snap: ProcessSnapshot } | undefined;
  const snap = () => {
    const now = performance.now();
    if (!cached || now - cached.at > 50) cached = { at: now, snap: processSnapshot() };
    return cached.snap;
  };
  const gauge = (name: string, help: string, pick: (s: ProcessSnapshot) => number | undefined) =>
    new client.Gauge({
      name,
      help,
      registers: [registry],
      collect() {
        const v = pick(snap());
        if (v !== undefined) this.set(v);
      },
    });
  new client.Counter({
    name: "process_cpu_seconds_total",
    help: "Total user and system CPU time spent in seconds.",
    registers: [registry],
    collect() {
      const s = snap();
      this.reset();
      this.inc(s.cpuUser + s.cpuSystem);
    },
  });
  gauge("process_resident_memory_bytes", "Resident memory size in bytes.", (s) => s.residentBytes);
  gauge("process_virtual_memory_bytes", "Virtual memory size in bytes.", (s) => s.virtualBytes);
  gauge("process_start_time_seconds", "Start time of the process since unix epoch in seconds.", (s) => s.startTime);
  gauge("process_open_fds", "Number of open file descriptors.", (s) => s.openFds);
  gauge("process_max_fds", "Maximum number of open file descriptors.", (s) => s.maxFds);
}
