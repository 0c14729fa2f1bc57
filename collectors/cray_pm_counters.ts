// The `cray_pm_counters` collector: HPE Cray /sys/cray/pm_counters energy, power, power cap and
// temperature per domain (node, cpu, memory, accelN, ...) as ceems_cray_pm_counters_* gauges.

import { join } from "../common/path.ts";
import { type Collector, type CollectorContext, type MetricSink, NoDataError } from "./framework/collector.ts";
import { registerCollector } from "./framework/registry.ts";

/** Metric name and help per file suffix of a domain. */
const kinds: [string, string, string][] = [
  ["energy", "ceems_cray_pm_counters_energy_joules", "Current energy value in joules"],
  ["power", "ceems_cray_pm_counters_power_watts", "Current power value in watts"],
  ["power_cap", "ceems_cray_pm_counters_power_limit_watts", "Current power limit value in watts"],
  ["temp", "ceems_cray_pm_counters_temp_celsius", "Current temperature value in celsius"],
];

/** Domains (with their file prefix) found in the pm_counters directory listing; `node` has no prefix. */
export function pmDomains(files: string[]): Map<string, string> {
  const out = new Map<string, string>();
  for (const f of [...files].sort()) {
    const m = /^(?:((?:cpu|memory|accel)[0-9]*)_)?(?:energy|power|temp)(?:_cap)?$/.exec(f);
    if (!m) continue;
    const domain = m[1] ?? "node";
    if (!out.has(domain)) out.set(domain, m[1] ? `${m[1]}_` : "");
  }
  return out;
}

/** Parses a pm_counters value (`873 W 1734094386309238 us`): the leading unsigned integer. */
export function parsePmValue(text: string, file: string): number {
  const first = text.trim().split(" ")[0];
  if (!/^\d+$/.test(first)) throw new Error(`${file}: no leading integer in ${JSON.stringify(text.slice(0, 40))}`);
  return Number(first);
}

class CrayPmCountersCollector implements Collector {
  constructor(private sysfs: string, private hostname: string) {}

  update(sink: MetricSink): void {
    const dir = join(this.sysfs, "cray", "pm_counters");
    let files: string[];
    try {
      files = [...Deno.readDirSync(dir)].map((e) => e.name);
    } catch (e) {
      if (e instanceof Deno.errors.NotFound || e instanceof Deno.errors.PermissionDenied) {
        throw new NoDataError(`no pm_counters: ${(e as Error).message}`);
      }
      throw e;
    }
    const errors: string[] = [];
    for (const [domain, prefix] of pmDomains(files)) {
      for (const [suffix, name, help] of kinds) {
        const file = join(dir, prefix + suffix);
        let text: string;
        try {
          text = Deno.readTextFileSync(file);
        } catch (e) {
          if (!(e instanceof Deno.errors.NotFound)) errors.push(`${file}: ${(e as Error).message}`);
          continue;
        }
        try {
          const v = parsePmValue(text, file);
          if (v > 0) sink.gauge(name, help, { hostname: this.hostname, domain }, v);
        } catch (e) {
          errors.push((e as Error).message);
        }
      }
    }
    if (errors.length) throw new Error(errors.join("; "));
  }
}

registerCollector({
  name: "cray_pm_counters",
  defaultEnabled: false,
  help: "HPE Cray pm_counters energy and power",
  create: (ctx: CollectorContext) => new CrayPmCountersCollector(ctx.paths.sysfs, ctx.hostname),
});
