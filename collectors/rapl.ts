// The `rapl` collector: RAPL energy counters and power limits from /sys/class/powercap, reading the
// root-only energy_uj files through a cap_dac_read_search security context when a plain read is refused.

import { join } from "../common/path.ts";
import type { FlagSet } from "../common/flags.ts";
import { closeRaw, preadRaw } from "../ffi/libc.ts";
import type { DeclaredContext } from "../privilege/declare.ts";
import type { SecurityManager } from "../privilege/security.ts";
import { type Collector, type CollectorContext, type MetricSink, NoDataError } from "./framework/collector.ts";
import { sanitizeMetricName } from "./framework/metric_sink.ts";
import { registerCollector } from "./framework/registry.ts";

/** The context root-only energy_uj files are opened in (their descriptors are read afterwards). */
export const RAPL_CONTEXT: DeclaredContext = {
  name: "rapl",
  caps: ["cap_dac_read_search"],
  flag: "collector.rapl",
  reason: "reads root-only /sys/class/powercap/*/energy_uj",
  uses: ["openFd"],
};

/** One powercap RAPL zone. */
export interface RaplZone {
  /** Zone name with the socket suffix of `package-N` removed. */
  name: string;
  index: number;
  /** Directory of the zone, joined from the sysfs root as given (a label value). */
  path: string;
}

/** Lists RAPL zones: each powercap entry with a readable `name`; `package-N` gives index N, others count up. */
export function raplZones(sysfs: string): RaplZone[] {
  const dir = join(sysfs, "class", "powercap");
  const entries = [...Deno.readDirSync(dir)].map((e) => e.name).sort();
  const counts = new Map<string, number>();
  const zones: RaplZone[] = [];
  for (const entry of entries) {
    let raw: string;
    try {
      raw = Deno.readTextFileSync(join(dir, entry, "name")).trim();
    } catch {
      continue;
    }
    const pkg = /^package-(\d+)$/.exec(raw);
    if (pkg) {
      zones.push({ name: "package", index: Number(pkg[1]), path: join(dir, entry) });
      continue;
    }
    const n = counts.get(raw) ?? 0;
    counts.set(raw, n + 1);
    zones.push({ name: raw, index: n, path: join(dir, entry) });
  }
  return zones;
}

/** Parses a non-negative integer sysfs value; throws naming the file when it is not one. */
export function parseSysfsUint(text: string, file: string): number {
  const t = text.trim();
  if (!/^\d+$/.test(t)) throw new Error(`${file}: not an unsigned integer: ${JSON.stringify(t.slice(0, 40))}`);
  return Number(t);
}

/** The power limit (watts) of the constraint with the longest time window, or undefined without constraints. */
export function longestWindowLimitWatts(zoneDir: string): number | undefined {
  let best: { window: number; n: number } | undefined;
  for (const e of Deno.readDirSync(zoneDir)) {
    const m = /^constraint_(\d+)_time_window_us$/.exec(e.name);
    if (!m) continue;
    const file = join(zoneDir, e.name);
    const window = parseSysfsUint(Deno.readTextFileSync(file), file);
    if (!best || window > best.window) best = { window, n: Number(m[1]) };
  }
  if (!best) return undefined;
  const file = join(zoneDir, `constraint_${best.n}_power_limit_uw`);
  return parseSysfsUint(Deno.readTextFileSync(file), file) / 1e6;
}

/**
 * Reads energy_uj files. Those a plain read refuses (root-only since kernel 5.10) are opened once in the
 * cap_dac_read_search context; the descriptors are kept in `held` and read from the calling thread with
 * pread afterwards, so a steady-state scrape needs no privileged Worker.
 */
export async function readEnergyFiles(
  paths: string[],
  security: SecurityManager,
  plainRead: (path: string) => string = Deno.readTextFileSync,
  held: Map<string, number> = new Map(),
): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const denied: string[] = [];
  for (const p of paths) {
    const fd = held.get(p);
    if (fd !== undefined) {
      try {
        out.set(p, decoder.decode(preadRaw(fd, 64, 0)));
        continue;
      } catch {
        // The descriptor went stale (zone removed, driver reloaded): open it again below.
        held.delete(p);
        closeQuietly(fd);
      }
    }
    try {
      out.set(p, plainRead(p));
    } catch (e) {
      if (e instanceof Deno.errors.PermissionDenied) denied.push(p);
      else throw e;
    }
  }
  if (denied.length) {
    const res = await security.run(RAPL_CONTEXT, denied.map((path) => ({ kind: "openFd" as const, path })));
    res.forEach((r, i) => {
      if (!r.ok) throw new Error(`opening ${denied[i]}: ${r.error}`);
      const fd = r.value as number;
      held.set(denied[i], fd);
      out.set(denied[i], decoder.decode(preadRaw(fd, 64, 0)));
    });
  }
  return out;
}

const decoder = new TextDecoder();

function closeQuietly(fd: number): void {
  try {
    closeRaw(fd);
  } catch {
    // already closed
  }
}

class RaplCollector implements Collector {
  /** Descriptors of root-only energy_uj files, opened once in a security context. */
  #held = new Map<string, number>();

  stop(): void {
    for (const fd of this.#held.values()) closeQuietly(fd);
    this.#held.clear();
  }

  constructor(
    private sysfs: string,
    private hostname: string,
    private zoneLabel: boolean,
    private security: SecurityManager,
  ) {}

  async update(sink: MetricSink): Promise<void> {
    let zones: RaplZone[];
    try {
      zones = raplZones(this.sysfs);
    } catch (e) {
      if (e instanceof Deno.errors.NotFound || e instanceof Deno.errors.PermissionDenied) {
        throw new NoDataError(`no powercap files: ${(e as Error).message}`);
      }
      throw e;
    }
    if (zones.length === 0) throw new NoDataError("no RAPL zones");
    const energy = await readEnergyFiles(
      zones.map((z) => join(z.path, "energy_uj")),
      this.security,
      Deno.readTextFileSync,
      this.#held,
    );
    const errors: string[] = [];
    for (const z of zones) {
      const base = { hostname: this.hostname, index: String(z.index), path: z.path };
      const zname = sanitizeMetricName(z.name);
      try {
        const file = join(z.path, "energy_uj");
        const joules = parseSysfsUint(energy.get(file)!, file) / 1e6;
        if (this.zoneLabel) {
          sink.counter(
            "ceems_rapl_joules_total",
            "Current RAPL value in joules",
            { ...base, rapl_zone: z.name },
            joules,
          );
        } else {
          sink.counter(`ceems_rapl_${zname}_joules_total`, `Current RAPL ${z.name} value in joules`, base, joules);
        }
        const limit = longestWindowLimitWatts(z.path);
        if (limit === undefined) continue;
        if (this.zoneLabel) {
          sink.counter(
            "ceems_rapl_power_limit_watts_total",
            "Current RAPL power limit in watts",
            { ...base, rapl_zone: z.name },
            limit,
          );
        } else {
          sink.counter(
            `ceems_rapl_${zname}_power_limit_watts_total`,
            `Current RAPL ${z.name} power limit in watts`,
            base,
            limit,
          );
        }
      } catch (e) {
        errors.push((e as Error).message);
      }
    }
    if (errors.length) throw new Error(errors.join("; "));
  }
}

function registerFlags(fs: FlagSet): void {
  fs.add({
    name: "collector.rapl.enable-zone-label",
    kind: "bool",
    help: "Enables RAPL zone labels (one metric name for all zones).",
  });
}

registerCollector({
  name: "rapl",
  defaultEnabled: true,
  help: "RAPL energy counters",
  registerFlags,
  options: (f) => ({ zoneLabel: f.bool("collector.rapl.enable-zone-label") }),
  security: () => ({ contexts: [RAPL_CONTEXT] }),
  create: (ctx: CollectorContext, o: { zoneLabel: boolean }) =>
    new RaplCollector(ctx.paths.sysfs, ctx.hostname, o.zoneLabel, ctx.security),
});
