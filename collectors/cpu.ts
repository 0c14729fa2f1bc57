// The `cpu` collector: node CPU time per mode from /proc/stat and the logical/physical core
// counts from /proc/cpuinfo, as ceems_cpu_seconds_total, ceems_cpu_count, ceems_cpu_per_core_count.

import { join } from "../common/path.ts";
import type { Collector, CollectorContext, MetricSink } from "./framework/collector.ts";
import { registerCollector } from "./framework/registry.ts";

/** Clock ticks per second of /proc/stat (USER_HZ, 100 on every Linux architecture we run on). */
const userHz = 100;
const modes = ["user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal"] as const;

/** Aggregate CPU times (seconds) and the number of per-CPU lines of /proc/stat. */
export interface CpuStat {
  times: Record<(typeof modes)[number], number>;
  cpus: number;
}

/** Parses /proc/stat text. */
export function parseProcStat(text: string): CpuStat {
  let times: CpuStat["times"] | undefined;
  let cpus = 0;
  for (const line of text.split("\n")) {
    if (line.startsWith("cpu ")) {
      const f = line.trim().split(/\s+/).slice(1).map(Number);
      if (f.length < 4 || f.some((n) => !Number.isFinite(n))) throw new Error("malformed cpu line in stat");
      times = Object.fromEntries(modes.map((m, i) => [m, (f[i] ?? 0) / userHz])) as CpuStat["times"];
    } else if (/^cpu\d+ /.test(line)) {
      cpus++;
    }
  }
  if (!times) throw new Error("no aggregate cpu line in stat");
  return { times, cpus };
}

/** Logical CPUs per physical core from /proc/cpuinfo (at least 1). */
export function parsePerCoreCount(text: string): number {
  let logical = 0;
  const coresPerSocket = new Map<string, number>();
  let physId = "0";
  for (const line of text.split("\n")) {
    const i = line.indexOf(":");
    if (i < 0) continue;
    const key = line.slice(0, i).trim();
    const val = line.slice(i + 1).trim();
    if (key === "processor") logical++;
    else if (key === "physical id") physId = val;
    else if (key === "cpu cores") coresPerSocket.set(physId, Number(val) || 0);
  }
  let physical = 0;
  for (const n of coresPerSocket.values()) physical += n;
  if (logical === 0 || physical === 0) return 1;
  return Math.max(1, Math.floor(logical / physical));
}

class CpuCollector implements Collector {
  #last?: CpuStat["times"];
  #perCore?: number;
  constructor(private procfs: string, private hostname: string) {}

  update(sink: MetricSink): void {
    const stat = parseProcStat(Deno.readTextFileSync(join(this.procfs, "stat")));
    this.#perCore ??= parsePerCoreCount(Deno.readTextFileSync(join(this.procfs, "cpuinfo")));
    const times = this.#guard(stat.times);
    const h = { hostname: this.hostname };
    for (const m of modes) {
      sink.counter("ceems_cpu_seconds_total", "Seconds the CPUs spent in each mode.", { ...h, mode: m }, times[m]);
    }
    sink.gauge("ceems_cpu_count", "Number of CPUs.", h, stat.cpus);
    sink.gauge("ceems_cpu_per_core_count", "Number of logical CPUs per physical core.", h, this.#perCore);
  }

  /** Keeps counters monotonic; an idle jump back of 3 s or more means a reset (CPU hot-plug). */
  #guard(times: CpuStat["times"]): CpuStat["times"] {
    const last = this.#last;
    if (last && last.idle - times.idle >= 3) {
      this.#last = times;
      return times;
    }
    const out = { ...times };
    if (last) {
      for (const m of modes) if (out[m] < last[m]) out[m] = last[m];
    }
    this.#last = out;
    return out;
  }
}

registerCollector({
  name: "cpu",
  defaultEnabled: true,
  help: "Node CPU time per mode and CPU counts",
  create: (ctx: CollectorContext) => new CpuCollector(ctx.paths.procfs, ctx.hostname),
});
