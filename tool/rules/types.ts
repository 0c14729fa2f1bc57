// Types shared by the recording-rules generator: what discovery found for one CEEMS scrape job (its
// series, node power source, GPU source, emission factors) and the rule groups the renderers produce.

/** One recording rule. */
export interface Rule {
  record: string;
  expr: string;
  /** Extra labels set on the recorded series. */
  labels?: Record<string, string>;
  /** Comment lines written above the rule. */
  comment?: string;
}

/** A named group of rules evaluated at one interval. */
export interface RuleGroup {
  name: string;
  intervalMs: number;
  rules: Rule[];
}

/** One rules file to write: its name (relative to the output directory) and its groups. */
export interface RulesFile {
  file: string;
  header: string;
  groups: RuleGroup[];
}

/** Node power sources, in CEEMS's order of preference. */
export type HostPowerKind = "cray" | "redfish" | "ipmi" | "hwmon" | "rapl";

/** The node power source of a job: its metric and, for Redfish/hwmon, the chassis or chips that read the node. */
export interface HostPower {
  kind: HostPowerKind;
  metric: string;
  /** Label selecting the readings of the whole node (`chassis` for Redfish, `chip` for hwmon). */
  selectLabel?: string;
  /** Values of `selectLabel` whose readings are summed into node power. */
  selectValues?: string[];
}

/** GPU exporters the generator knows. `nvml` is the CEEMS exporter's own NVML collector (same job). */
export type GpuKind = "nvml" | "dcgm" | "amd-smi" | "amd-device-metrics";

/** Where GPU readings of a job come from. */
export interface GpuSource {
  kind: GpuKind;
  /** Scrape job of the GPU exporter (the CEEMS job itself for `nvml`). */
  job: string;
  /** Metric name prefix (AMD device metrics exporter's `--prefix`). */
  prefix: string;
  /** Series the GPU job has (names without prefix). */
  series: Set<string>;
  /** Whether the node power reading includes the GPUs (then GPU power is taken off node power). */
  inHostPower: boolean;
}

/** How emissions rules are made: live factors from the exporter's emissions collector, or a static one. */
export type EmissionsSource =
  | { kind: "providers"; countryCode: string; providers: readonly string[] }
  | { kind: "static"; countryCode: string; provider: string; gCo2PerKWh: number }
  | { kind: "none" };

/** Everything the renderers need for one CEEMS scrape job. */
export interface RulesJob {
  job: string;
  /** Metric names the job has. */
  series: Set<string>;
  /** Scrape interval of the job in ms (the rate window is four of them). */
  scrapeIntervalMs: number;
  hostPower: HostPower;
  gpu?: GpuSource;
}

/** Options common to every job. */
export interface RulesOptions {
  pue: number;
  evalIntervalMs: number;
  emissions: EmissionsSource;
}

/** Prometheus duration text for a number of milliseconds ("4s", "2m", "1500ms"). */
export function promDuration(ms: number): string {
  if (ms % 3_600_000 === 0) return `${ms / 3_600_000}h`;
  if (ms % 60_000 === 0) return `${ms / 60_000}m`;
  if (ms % 1000 === 0) return `${ms / 1000}s`;
  return `${ms}ms`;
}
