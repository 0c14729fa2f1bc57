// Entry point of `ceems tool` (CEEMS's ceems_tool): `tsdb create-recording-rules` discovers which CEEMS
// series each scrape job has in Prometheus and writes per-unit power/emissions recording rules per job.

import { join } from "node:path";
import { parseFlags, StartupError } from "../common/cli.ts";
import { FlagSet } from "../common/flags.ts";
import { owidCarbonIntensity } from "../collectors/emissions/owid_data.ts";
import { loadHttpClientConfig, PrometheusApi } from "./prometheus_api.ts";
import { discoveredSeries, type EmissionsSource, type JobSeries, renderJobRules } from "./recording_rules.ts";

const usage = `usage: ceems tool <command> [<flags>]

Commands:
  tsdb create-recording-rules   Write Prometheus recording rules for per-unit power and emissions

Run 'ceems tool <command> --help' for the flags of a command.
`;

/** Parses a time given as RFC 3339 or Unix seconds; returns Unix seconds. */
export function parseTime(s: string): number {
  if (/^\d+(\.\d+)?$/.test(s)) return Number(s);
  const t = Date.parse(s);
  if (Number.isNaN(t)) throw new Error(`invalid time ${JSON.stringify(s)} (RFC 3339 or Unix seconds)`);
  return t / 1000;
}

/** Declares the flags of `tsdb create-recording-rules` (CEEMS's names and defaults). */
export function recordingRulesFlags(): FlagSet {
  const fs = new FlagSet(
    "tool tsdb create-recording-rules",
    "Create Prometheus recording rules that estimate power and emissions of compute units.",
  );
  fs.add({ name: "help", kind: "bool", help: "Show context-sensitive help." });
  fs.add({ name: "version", kind: "bool", help: "Show application version." });
  fs.add({ name: "url", kind: "string", default: "http://localhost:9090", help: "Prometheus server URL." });
  fs.add({
    name: "http.config.file",
    kind: "string",
    default: "",
    placeholder: "PATH",
    help: "HTTP client configuration file (basic_auth, authorization, tls_config) to reach Prometheus.",
  });
  fs.add({ name: "start", kind: "string", default: "", help: "Start of the discovery window (default: 3 h ago)." });
  fs.add({ name: "end", kind: "string", default: "", help: "End of the discovery window (default: now)." });
  fs.add({
    name: "pue",
    kind: "float",
    default: 1,
    help: "Power Usage Effectiveness (PUE) of the data centre.",
    validate: (v) => ((v as number) < 1 ? "must be at least 1" : undefined),
  });
  fs.add({
    name: "emission-factor",
    kind: "float",
    default: 0,
    help: "Static emission factor in gCO2/kWh (excludes --country-code).",
    validate: (v) => ((v as number) < 0 ? "must not be negative" : undefined),
  });
  fs.add({
    name: "country-code",
    kind: "string",
    default: "",
    help: "ISO-2 country code: live factors of the exporter's emissions collector, else the OWID table.",
  });
  fs.add({
    name: "eval-interval",
    kind: "duration",
    default: 0,
    help: "Rule evaluation interval (default: Prometheus's global evaluation_interval).",
  });
  fs.add({ name: "output-dir", kind: "string", default: "rules", help: "Directory for the rules files." });
  fs.add({
    name: "disable-providers",
    kind: "bool",
    hidden: true,
    help: "Ignore live emission factors in Prometheus and use the OWID table.",
  });
  return fs;
}

async function emissionsSource(
  fs: FlagSet,
  api: PrometheusApi,
  start: number,
  end: number,
): Promise<EmissionsSource> {
  const factor = fs.number("emission-factor");
  const cc = fs.string("country-code").toUpperCase();
  if (factor > 0) return { kind: "static", countryCode: cc, provider: "custom", gCo2PerKWh: factor };
  if (!cc) return { kind: "none" };
  if (!fs.bool("disable-providers")) {
    const providers = await api.labelValues("provider", `ceems_emissions_gCo2_kWh{country_code="${cc}"}`, start, end);
    if (providers.length) return { kind: "providers", countryCode: cc, providers: providers.sort() };
  }
  const owid = owidCarbonIntensity[cc];
  if (!owid) throw new StartupError(`--country-code: no emission factor known for ${JSON.stringify(cc)}`);
  console.error(`static emission factor ${owid[1]} g/kWh from OWID data (${owid[0]}, ${owid[2]}) will be used`);
  return { kind: "static", countryCode: cc, provider: "owid", gCo2PerKWh: owid[1] };
}

async function createRecordingRules(args: string[]): Promise<void> {
  const fs = recordingRulesFlags();
  parseFlags(fs, args, "tool");
  if (fs.number("emission-factor") > 0 && fs.string("country-code")) {
    throw new StartupError("--emission-factor and --country-code are mutually exclusive");
  }
  let end: number, start: number;
  try {
    end = fs.string("end") ? parseTime(fs.string("end")) : Date.now() / 1000;
    start = fs.string("start") ? parseTime(fs.string("start")) : end - 3 * 3600;
  } catch (e) {
    throw new StartupError(`--start/--end: ${(e as Error).message}`);
  }
  if (start > end) throw new StartupError("--start must not be after --end");
  let http;
  try {
    http = loadHttpClientConfig(fs.string("http.config.file"));
  } catch (e) {
    throw new StartupError(`--http.config.file: ${(e as Error).message}`);
  }
  const api = new PrometheusApi(fs.string("url"), http);
  let global, perJob, found;
  try {
    global = await api.globalIntervals();
    perJob = await api.scrapeIntervals();
    found = await api.series(discoveredSeries.map((n) => `{__name__="${n}"}`), start, end);
  } catch (e) {
    throw new StartupError(`querying Prometheus at ${fs.string("url")}: ${(e as Error).message}`);
  }
  const emissions = await emissionsSource(fs, api, start, end);
  const jobs = new Map<string, JobSeries>();
  for (const s of found) {
    const job = s.job ?? "";
    if (!jobs.has(job)) {
      jobs.set(job, { job, series: new Set(), scrapeIntervalMs: perJob.get(job) ?? global.scrapeMs });
    }
    jobs.get(job)!.series.add(s.__name__);
  }
  const evalMs = fs.number("eval-interval") || global.evalMs;
  const outDir = fs.string("output-dir");
  Deno.mkdirSync(outDir, { recursive: true });
  let written = 0;
  for (const js of [...jobs.values()].sort((a, b) => a.job.localeCompare(b.job))) {
    const text = renderJobRules(js, { pue: fs.number("pue"), evalIntervalMs: evalMs, emissions });
    if (!text) continue;
    const file = join(outDir, `${js.job.replace(/[^A-Za-z0-9_.-]/g, "_")}.rules`);
    console.error(`generating recording rules for job ${js.job} in file ${file}`);
    Deno.writeTextFileSync(file, text);
    written++;
  }
  if (!written) {
    console.error("no scrape job with CEEMS compute units and a node power source found: no rules written");
  }
}

/** Runs `ceems tool <args>`. */
export async function toolMain(args: string[]): Promise<void> {
  const [group, cmd, ...rest] = args;
  if (group === "tsdb" && cmd === "create-recording-rules") return await createRecordingRules(rest);
  if (group === undefined || group === "--help" || group === "-h" || group === "help") {
    Deno.stdout.writeSync(new TextEncoder().encode(usage));
    return;
  }
  throw new StartupError(`unknown command '${[group, cmd].filter(Boolean).join(" ")}'`);
}
