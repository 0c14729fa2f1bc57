// The `hwmon` collector: power and energy sensors of /sys/class/hwmon (and their device/ directory) as
// ceems_hwmon_power_{current,min,max,avg}_watts and ceems_hwmon_energy_current_joules.

import { basename, dirname, join } from "../common/path.ts";
import { type Collector, type CollectorContext, type MetricSink, NoDataError } from "./framework/collector.ts";
import { registerCollector } from "./framework/registry.ts";

/** Metric name and help per `<type>_<property>` of a sensor file. */
const sensorMetrics: Record<string, [string, string]> = {
  power_input: ["ceems_hwmon_power_current_watts", "Current Power consumption in watts"],
  power_input_lowest: ["ceems_hwmon_power_min_watts", "Minimum Power consumption in watts"],
  power_input_highest: ["ceems_hwmon_power_max_watts", "Maximum Power consumption in watts"],
  power_average: ["ceems_hwmon_power_avg_watts", "Average Power consumption in watts"],
  energy_input: ["ceems_hwmon_energy_current_joules", "Current Energy consumption in joules"],
};

/** One power or energy sensor file. */
export interface HwmonSensor {
  type: string;
  num: number;
  property: string;
  file: string;
}

/** A monitor with its labels and sensors. */
export interface HwmonMonitor {
  chip: string;
  chipName: string;
  sensors: HwmonSensor[];
}

/** Lower-cases and replaces characters outside [a-z0-9:_] by `_`, trimming `_` at both ends. */
export function cleanName(s: string): string {
  return s.toLowerCase().replace(/[^a-z0-9:_]/g, "_").replace(/^_+|_+$/g, "");
}

/** Splits `power1_input_highest` into type, number and property; undefined if it does not fit. */
export function parseSensorFilename(name: string): { type: string; num: number; property: string } | undefined {
  const m = /^([^0-9]+)([0-9]*)(?:_(.+))?$/.exec(name);
  if (!m) return undefined;
  return { type: m[1], num: m[2] ? Number(m[2]) : 0, property: m[3] ?? "" };
}

function sensorsIn(dir: string): HwmonSensor[] {
  const out: HwmonSensor[] = [];
  for (const e of Deno.readDirSync(dir)) {
    const p = parseSensorFilename(e.name);
    if (p && sensorMetrics[`${p.type}_${p.property}`]) out.push({ ...p, file: join(dir, e.name) });
  }
  return out;
}

function readOptional(path: string): string | undefined {
  try {
    return Deno.readTextFileSync(path);
  } catch {
    return undefined;
  }
}

/** Stable monitor name: `<device type>_<device name>` from the device link, else the name file, else hwmonN. */
export function hwmonChip(dir: string): string {
  try {
    const dev = Deno.realPathSync(join(dir, "device"));
    const name = cleanName(basename(dev));
    const type = cleanName(basename(dirname(dev)));
    if (type && name) return `${type}_${name}`;
    if (name) return name;
  } catch {
    // no device link
  }
  const sysname = cleanName(readOptional(join(dir, "name")) ?? "");
  if (sysname) return sysname;
  return cleanName(basename(Deno.realPathSync(dir)));
}

/** Discovers monitors that have power or energy sensors. */
export function discoverMonitors(sysfs: string): HwmonMonitor[] {
  const root = join(sysfs, "class", "hwmon");
  const out: HwmonMonitor[] = [];
  for (const e of [...Deno.readDirSync(root)].sort((a, b) => a.name.localeCompare(b.name))) {
    const dir = join(root, e.name);
    try {
      if (!Deno.statSync(dir).isDirectory) continue;
    } catch {
      continue; // dangling link
    }
    let sensors = sensorsIn(dir);
    try {
      if (Deno.statSync(join(dir, "device")).isDirectory) sensors = sensors.concat(sensorsIn(join(dir, "device")));
    } catch {
      // no device directory
    }
    if (sensors.length === 0) continue;
    out.push({ chip: hwmonChip(dir), chipName: cleanName(readOptional(join(dir, "name")) ?? ""), sensors });
  }
  return out;
}

class HwmonCollector implements Collector {
  constructor(private sysfs: string, private hostname: string) {}

  update(sink: MetricSink): void {
    let monitors: HwmonMonitor[];
    try {
      monitors = discoverMonitors(this.sysfs);
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) throw new NoDataError("no /sys/class/hwmon");
      throw e;
    }
    if (monitors.length === 0) throw new NoDataError("no power or energy hwmon sensors");
    const errors: string[] = [];
    for (const mon of monitors) {
      for (const s of mon.sensors) {
        let text: string;
        try {
          text = Deno.readTextFileSync(s.file).trim();
        } catch (e) {
          errors.push(`${s.file}: ${(e as Error).message}`);
          continue;
        }
        const v = Number(text);
        if (text === "" || !Number.isFinite(v)) {
          errors.push(`${s.file}: not a number: ${JSON.stringify(text.slice(0, 40))}`);
          continue;
        }
        if (v <= 0) continue;
        const [name, help] = sensorMetrics[`${s.type}_${s.property}`];
        sink.gauge(
          name,
          help,
          { hostname: this.hostname, sensor: `${s.type}${s.num}`, chip: mon.chip, chip_name: mon.chipName },
          v / 1e6,
        );
      }
    }
    if (errors.length) throw new Error(errors.join("; "));
  }
}

registerCollector({
  name: "hwmon",
  defaultEnabled: false,
  help: "Power and energy from hwmon sensors",
  create: (ctx: CollectorContext) => new HwmonCollector(ctx.paths.sysfs, ctx.hostname),
});
