// `ceems tool tsdb create-recording-rules`: discovers the CEEMS scrape jobs in Prometheus (node power source,
// GPU exporter job, eBPF counters, emission factors) and writes their recording rules files.

import { join } from "node:path";
import { parseFlags, StartupError } from "../common/cli.ts";
import { FlagSet } from "../common/flags.ts";
import { owidCarbonIntensity } from "../collectors/emissions/owid_data.ts";
import { addHelpFlags, addServerFlags, addWindowFlags, prometheusFromFlags, windowFromFlags } from "./common.ts";
import type { PrometheusApi } from "./prometheus_api.ts";
import { type Chooser, discoverJobs, discoveryMatchers, readingIncludesGpus } from "./rules/discover.ts";
import { renderJobRules } from "./rules/render.ts";
import type { EmissionsSource } from "./rules/types.ts";

/** Declares the flags of `tsdb create-recording-rules` (CEEMS's names and defaults). */
export function recordingRulesFlags(): FlagSet {
  const fs = new FlagSet(
    "tool tsdb create-recording-rules",
    "Create Prometheus recording rules that estimate usage, power and emissions of compute units.",
  );
  addHelpFlags(fs);
  addServerFlags(fs, "http://localhost:9090", "Prometheus server");
  addWindowFlags(fs);
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

async function emissionsSource(fs: FlagSet, api: PrometheusApi, start: number, end: number): Promise<EmissionsSource> {
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

/** Reads one line from stdin (null at end of input). */
async function readLine(): Promise<string | null> {
  const buf = new Uint8Array(1);
  const bytes: number[] = [];
  while (true) {
    const n = await Deno.stdin.read(buf);
    if (n === null) return bytes.length ? new TextDecoder().decode(new Uint8Array(bytes)) : null;
    if (buf[0] === 10) return new TextDecoder().decode(new Uint8Array(bytes)).replace(/\r$/, "");
    bytes.push(buf[0]);
  }
}

/** Asks on stderr/stdin which chassis (Redfish) or chips (hwmon) read the whole node, as CEEMS does. */
export const askOperator: Chooser = async ({ metric, label, job, values }) => {
  console.error(`Multiple ${label} found for ${metric} for job ${job}`);
  console.error(`Choose the ${label} that reports host power usage`);
  values.forEach((v, i) => console.error(`[${i}]: ${v}`));
  console.error(`Enter number(s) between 0 and ${values.length - 1}`);
  console.error("Multiple labels can be selected by using comma separated list of numbers, e.g., 0,1");
  const line = await readLine();
  if (line === null) throw new StartupError(`no ${label} chosen for ${metric} of job ${job} (end of input)`);
  const chosen = line.split(",").map((s) => s.trim()).filter(Boolean).map((s) => {
    const i = Number(s);
    if (!/^\d+$/.test(s) || i >= values.length) {
      throw new StartupError(`invalid choice ${JSON.stringify(s)}: enter numbers between 0 and ${values.length - 1}`);
    }
    return values[i];
  });
  if (!chosen.length) throw new StartupError(`no ${label} chosen for ${metric} of job ${job}`);
  return chosen;
};

/** Runs `tool tsdb create-recording-rules <args>`. */
export async function createRecordingRules(args: string[], choose: Chooser = askOperator): Promise<void> {
  const fs = recordingRulesFlags();
  parseFlags(fs, args, "tool");
  if (fs.number("emission-factor") > 0 && fs.string("country-code")) {
    throw new StartupError("--emission-factor and --country-code are mutually exclusive");
  }
  const { start, end } = windowFromFlags(fs);
  const api = prometheusFromFlags(fs);
  let global, perJob, found;
  try {
    global = await api.globalIntervals();
    perJob = await api.scrapeIntervals();
    found = await api.series(discoveryMatchers(), start, end);
  } catch (e) {
    throw new StartupError(`querying Prometheus at ${fs.string("url")}: ${(e as Error).message}`);
  }
  const emissions = await emissionsSource(fs, api, start, end);
  const jobs = await discoverJobs(found, {
    start,
    end,
    scrapeIntervals: perJob,
    globalScrapeMs: global.scrapeMs,
    choose,
    includesGpus: (rj) => readingIncludesGpus(api, rj, start, end),
  });
  const evalMs = fs.number("eval-interval") || global.evalMs;
  const outDir = fs.string("output-dir");
  Deno.mkdirSync(outDir, { recursive: true, mode: 0o700 });
  for (const rj of jobs) {
    for (const [file, text] of renderJobRules(rj, { pue: fs.number("pue"), evalIntervalMs: evalMs, emissions })) {
      const path = join(outDir, file);
      console.error(`generating recording rules for job ${rj.job} in file ${path}`);
      Deno.writeTextFileSync(path, text, { mode: 0o644 });
    }
  }
  if (!jobs.length) {
    console.error("no scrape job with CEEMS compute units and a node power source found: no rules written");
  }
}
