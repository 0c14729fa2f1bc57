// process_* metrics about the running ceems process (CPU time, memory, start time, file
// descriptors), read cheaply from one /proc/self/stat per scrape and written to a scrape's metric sink.

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

/** Where {@link emitProcessMetrics} writes: the exporter's scrape sink (collectors/framework/metric_sink.ts). */
export interface ProcessMetricSink {
  gauge(name: string, help: string, labels: Record<string, string>, value: number): void;
  counter(name: string, help: string, labels: Record<string, string>, value: number): void;
}

/** Writes the process_* families (client_golang's names and help texts) from one snapshot. */
export function emitProcessMetrics(sink: ProcessMetricSink, snap: ProcessSnapshot = processSnapshot()): void {
  sink.counter(
    "process_cpu_seconds_total",
    "Total user and system CPU time spent in seconds.",
    {},
    snap.cpuUser + snap.cpuSystem,
  );
  sink.gauge("process_resident_memory_bytes", "Resident memory size in bytes.", {}, snap.residentBytes);
  sink.gauge("process_virtual_memory_bytes", "Virtual memory size in bytes.", {}, snap.virtualBytes);
  sink.gauge(
    "process_start_time_seconds",
    "Start time of the process since unix epoch in seconds.",
    {},
    snap.startTime,
  );
  if (snap.openFds !== undefined) sink.gauge("process_open_fds", "Number of open file descriptors.", {}, snap.openFds);
  if (snap.maxFds !== undefined) {
    sink.gauge("process_max_fds", "Maximum number of open file descriptors.", {}, snap.maxFds);
  }
}
