// The `netdev` collector: per-interface traffic counters from /proc/net/dev as ceems_netdev_*_total,
// filtered by --collector.netdev.device-include or --collector.netdev.device-exclude (mutually exclusive).

import { join } from "../common/path.ts";
import type { FlagSet } from "../common/flags.ts";
import type { Collector, CollectorContext, MetricSink } from "./framework/collector.ts";
import { registerCollector } from "./framework/registry.ts";

const receiveFields = ["bytes", "packets", "errors", "dropped", "fifo", "frame", "compressed", "multicast"];
const transmitFields = ["bytes", "packets", "errors", "dropped", "fifo", "colls", "carrier", "compressed"];

/** Parses /proc/net/dev into interface → 16 counters (receive then transmit). */
export function parseNetDev(text: string): Map<string, number[]> {
  const out = new Map<string, number[]>();
  const lines = text.split("\n");
  if (!lines[0]?.startsWith("Inter-") || !lines[1]?.includes("|bytes")) {
    throw new Error("net/dev: missing header");
  }
  for (const line of lines.slice(2)) {
    if (!line.trim()) continue;
    const colon = line.indexOf(":");
    if (colon < 0) throw new Error(`net/dev: malformed line ${JSON.stringify(line.slice(0, 60))}`);
    const name = line.slice(0, colon).trim();
    const fields = line.slice(colon + 1).trim().split(/\s+/);
    if (fields.length < 16 || fields.some((f) => !/^\d+$/.test(f))) {
      throw new Error(`net/dev: malformed counters for ${name}`);
    }
    out.set(name, fields.slice(0, 16).map(Number));
  }
  return out;
}

/** Compiles a device filter regex; throws naming the flag. */
function compile(flag: string, value: string): RegExp | undefined {
  if (!value) return undefined;
  try {
    return new RegExp(value);
  } catch (e) {
    throw new Error(`--${flag}: invalid regular expression: ${(e as Error).message}`);
  }
}

class NetdevCollector implements Collector {
  constructor(
    private procfs: string,
    private hostname: string,
    private include?: RegExp,
    private exclude?: RegExp,
  ) {}

  update(sink: MetricSink): void {
    const stats = parseNetDev(Deno.readTextFileSync(join(this.procfs, "net", "dev")));
    for (const [device, v] of stats) {
      if (this.include && !this.include.test(device)) continue;
      if (this.exclude && this.exclude.test(device)) continue;
      const labels = { hostname: this.hostname, device };
      receiveFields.forEach((f, i) =>
        sink.counter(`ceems_netdev_receive_${f}_total`, `Network device statistic receive_${f}.`, labels, v[i])
      );
      transmitFields.forEach((f, i) =>
        sink.counter(`ceems_netdev_transmit_${f}_total`, `Network device statistic transmit_${f}.`, labels, v[8 + i])
      );
    }
  }
}

function registerFlags(fs: FlagSet): void {
  fs.add({
    name: "collector.netdev.device-include",
    kind: "string",
    default: "",
    help: "Regexp of net devices to include (mutually exclusive to device-exclude).",
  });
  fs.add({
    name: "collector.netdev.device-exclude",
    kind: "string",
    default: "",
    help: "Regexp of net devices to exclude (mutually exclusive to device-include).",
  });
}

/** The netdev flags. */
interface NetdevOptions {
  include: string;
  exclude: string;
}

function create(ctx: CollectorContext, { include: inc, exclude: exc }: NetdevOptions): Collector {
  if (inc && exc) {
    throw new Error("--collector.netdev.device-include and --collector.netdev.device-exclude are mutually exclusive");
  }
  return new NetdevCollector(
    ctx.paths.procfs,
    ctx.hostname,
    compile("collector.netdev.device-include", inc),
    compile("collector.netdev.device-exclude", exc),
  );
}

registerCollector({
  name: "netdev",
  defaultEnabled: false,
  help: "Network interface counters",
  registerFlags,
  options: (f): NetdevOptions => ({
    include: f.string("collector.netdev.device-include"),
    exclude: f.string("collector.netdev.device-exclude"),
  }),
  create,
});
