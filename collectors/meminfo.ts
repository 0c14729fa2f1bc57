// The `meminfo` collector: node memory from /proc/meminfo as ceems_meminfo_<Key>_bytes gauges,
// MemTotal, MemFree and MemAvailable by default, every field with --collector.meminfo.all-stats.

import { join } from "../common/path.ts";
import type { Collector, CollectorContext, MetricSink } from "./framework/collector.ts";
import { registerCollector } from "./framework/registry.ts";

const defaultKeys = ["MemTotal_bytes", "MemFree_bytes", "MemAvailable_bytes"];

/** Parses /proc/meminfo into metric-name suffixes (`Active(anon)` → `Active_anon_bytes`) and values. */
export function parseMeminfo(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split("\n")) {
    if (!line.trim()) continue;
    const m = /^([^:]+):\s+(\d+)(?:\s+(kB))?\s*$/.exec(line);
    if (!m) throw new Error(`malformed meminfo line: ${JSON.stringify(line.slice(0, 60))}`);
    let key = m[1].replace(/\((.*)\)/, "_$1");
    let value = Number(m[2]);
    if (m[3]) {
      value *= 1024;
      key += "_bytes";
    }
    out.set(key, value);
  }
  return out;
}

class MeminfoCollector implements Collector {
  constructor(private procfs: string, private hostname: string, private allStats: boolean) {}

  update(sink: MetricSink): void {
    const info = parseMeminfo(Deno.readTextFileSync(join(this.procfs, "meminfo")));
    const keys = this.allStats ? [...info.keys()] : defaultKeys;
    for (const key of keys) {
      const name = `ceems_meminfo_${key}`;
      const help = `Memory information field ${key}.`;
      const v = info.get(key) ?? 0;
      if (key.endsWith("_total")) sink.counter(name, help, { hostname: this.hostname }, v);
      else sink.gauge(name, help, { hostname: this.hostname }, v);
    }
  }
}

registerCollector({
  name: "meminfo",
  defaultEnabled: true,
  help: "Node memory from /proc/meminfo",
  registerFlags(flags) {
    flags.add({ name: "collector.meminfo.all-stats", kind: "bool", help: "Export every field of /proc/meminfo." });
    flags.alias("collector.meminfo.all.stats", "collector.meminfo.all-stats");
  },
  options: (f) => ({ allStats: f.bool("collector.meminfo.all-stats") }),
  create: (ctx: CollectorContext, o: { allStats: boolean }) =>
    new MeminfoCollector(ctx.paths.procfs, ctx.hostname, o.allStats),
});
