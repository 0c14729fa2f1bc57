// The `ipmi_dcmi` collector: node power from a DCMI tool (FreeIPMI ipmi-dcmi, ipmitool, ipmiutil or Cray
// capmc) run as root, or natively over /dev/ipmiN, as ceems_ipmi_dcmi_{current,min,max,avg}_watts.

import type { FlagSet } from "../common/flags.ts";
import { commandOutput } from "../privilege/command.ts";
import type { DeclaredContext, SecurityNeeds } from "../privilege/declare.ts";
import type { SecurityContext, SecurityManager } from "../privilege/security.ts";
import { checkRootTool, findTool, SYSTEM_DIRS } from "../privilege/tools.ts";
import type { Collector, CollectorContext, MetricSink } from "./framework/collector.ts";
import { findIpmiDevice, ipmiDevicePaths, NativeDcmiReader, nativeIpmiContext } from "./ipmi/native.ts";
import { registerCollector } from "./framework/registry.ts";

/** The DCMI commands CEEMS looks for, in order of preference. */
export const dcmiCommands: string[][] = [
  ["ipmi-dcmi", "--get-system-power-statistics"],
  ["ipmitool", "dcmi", "power", "reading"],
  ["ipmiutil", "dcmi", "power"],
  ["capmc", "get_system_power", "-w", "600"],
];

/** The security context the tool runs in as root: a root child holds at most these capabilities. */
export const IPMI_TOOL_CONTEXT: DeclaredContext = {
  name: "ipmi_dcmi",
  caps: ["cap_setuid", "cap_setgid"],
  flag: "collector.ipmi_dcmi",
  reason: "runs the IPMI tool (--collector.ipmi_dcmi.cmd or one found in the system directories) as root",
  uses: ["exec-root"],
};
/** Test mode: the tool runs as the exporter's user, without any capability. */
const IPMI_TEST_CONTEXT: SecurityContext = { name: "ipmi_dcmi_test", caps: [] };

/** Power readings in watts by kind. */
export type PowerReadings = Partial<Record<"current" | "min" | "max" | "avg", number>>;

const readingKinds = ["current", "min", "max", "avg"] as const;

const readingPatterns: Record<(typeof readingKinds)[number], RegExp> = {
  current: /^\s*(?:Current Power|Instantaneous power reading)\s*:\s*([0-9.]*)\s*[wW]atts/,
  min:
    /^\s*(?:Minimum Power over sampling duration|Minimum during sampling period|Min Power over sample duration)\s*:\s*([0-9.]*)\s*[wW]atts/,
  max:
    /^\s*(?:Maximum Power over sampling duration|Maximum during sampling period|Max Power over sample duration)\s*:\s*([0-9.]*)\s*[wW]atts/,
  avg:
    /^\s*(?:Average Power over sampling duration|Average power reading over sample period|Avg Power over sample duration)\s*:\s*([0-9.]*)\s*[wW]atts/,
};
const statePattern =
  /^\s*(?:Power Measurement|Power reading state is)\s*:\s*(Active|active|Not\sAvailable|not\sactive|activated|deactivated)/;

/** Parses ipmi-dcmi, ipmitool or ipmiutil output; throws unless the measurement state is active. */
export function parseDcmiText(text: string): PowerReadings {
  const lines = text.split("\n");
  const state = lines.map((l) => statePattern.exec(l)?.[1]).find((s) => s !== undefined);
  if (state === undefined) throw new Error("no power measurement state in DCMI output");
  if (!["Active", "active", "activated"].includes(state)) {
    throw new Error(`IPMI power readings not active (state ${JSON.stringify(state)})`);
  }
  const out: PowerReadings = {};
  for (const kind of readingKinds) {
    for (const l of lines) {
      const m = readingPatterns[kind].exec(l);
      if (!m) continue;
      const v = parseFloat(m[1]);
      if (Number.isFinite(v)) out[kind] = v;
      break;
    }
  }
  if (Object.keys(out).length === 0) throw new Error("no power reading in DCMI output");
  return out;
}

/** Parses `capmc get_system_power` JSON; capmc has no current reading, so current is the average. */
export function parseCapmcJson(text: string): PowerReadings {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch {
    throw new Error("capmc output is not JSON");
  }
  if (typeof data !== "object" || data === null || Array.isArray(data)) {
    throw new Error("capmc output is not an object");
  }
  const obj = data as Record<string, unknown>;
  if (typeof obj.e === "number" && obj.e !== 0) {
    throw new Error(`capmc power readings not active: ${String(obj.err_msg ?? "")}`);
  }
  const out: PowerReadings = {};
  for (const kind of ["min", "max", "avg"] as const) {
    if (typeof obj[kind] === "number") out[kind] = obj[kind] as number;
  }
  if ((out.avg ?? 0) > 0) out.current = out.avg;
  if (Object.keys(out).length === 0) throw new Error("no power reading in capmc output");
  return out;
}

/**
 * Picks the DCMI command: the flag's value split on spaces (its program found in `dirs` unless absolute),
 * or the first of CEEMS's tools found in `dirs` (the system directories).
 */
export function resolveDcmiCommand(flagValue: string, dirs: readonly string[] = SYSTEM_DIRS): string[] | undefined {
  if (flagValue.trim()) {
    const parts = flagValue.trim().split(/ +/);
    parts[0] = findTool(parts[0], dirs) ?? parts[0];
    return parts;
  }
  for (const cmd of dcmiCommands) {
    const found = findTool(cmd[0], dirs);
    if (found) return [found, ...cmd.slice(1)];
  }
  return undefined;
}

/** How the collector runs the tool. */
export interface DcmiRunner {
  cmd: string[];
  testMode: boolean;
  timeoutMs: number;
  security: SecurityManager;
}

/** Runs the DCMI tool once and returns its stdout; throws on failure, a non-zero status or a timeout. */
export function runDcmiTool(r: DcmiRunner): Promise<string> {
  return commandOutput(r.security, r.testMode ? IPMI_TEST_CONTEXT : IPMI_TOOL_CONTEXT, {
    cmd: r.cmd,
    timeoutMs: r.timeoutMs,
  }, { asRoot: !r.testMode });
}

/** Where the collector gets its readings: a tool, or the native device. */
export type DcmiSource = { kind: "tool"; runner: DcmiRunner } | {
  kind: "native";
  reader: NativeDcmiReader;
  timeoutMs: number;
};

/** One reading through the native device; throws unless the BMC reports the measurement active. */
export async function readNativeReadings(reader: NativeDcmiReader, timeoutMs: number): Promise<PowerReadings> {
  const r = await reader.read(timeoutMs);
  if (!r.active) throw new Error(`IPMI power readings not active (${reader.devPath})`);
  return { current: r.currentWatts, min: r.minWatts, max: r.maxWatts, avg: r.avgWatts };
}

/** The collector over either source; the last good readings are served when a read fails. */
export class IpmiDcmiCollector implements Collector {
  readonly #cache: PowerReadings = {};
  constructor(private source: DcmiSource, private hostname: string) {}

  async #read(): Promise<PowerReadings> {
    if (this.source.kind === "native") return await readNativeReadings(this.source.reader, this.source.timeoutMs);
    const text = await runDcmiTool(this.source.runner);
    const isCapmc = this.source.runner.cmd[0].split("/").pop() === "capmc";
    return isCapmc ? parseCapmcJson(text) : parseDcmiText(text);
  }

  stop(): void {
    if (this.source.kind === "native") this.source.reader.close();
  }

  async update(sink: MetricSink): Promise<void> {
    let readings: PowerReadings;
    let failure: Error | undefined;
    try {
      readings = await this.#read();
    } catch (e) {
      failure = e as Error;
      readings = this.#cache;
    }
    for (const kind of readingKinds) {
      const v = readings[kind];
      if (v === undefined || !(v > 0)) continue;
      this.#cache[kind] = v;
      sink.gauge(
        `ceems_ipmi_dcmi_${kind}_watts`,
        `${{ current: "Current", min: "Minimum", max: "Maximum", avg: "Average" }[kind]} Power consumption in watts`,
        { hostname: this.hostname },
        v,
      );
    }
    // The last good readings were emitted above; the scrape still reports this collector as failed.
    if (failure) {
      const cached = Object.keys(this.#cache).length > 0;
      throw new Error(`${failure.message}${cached ? " (serving last good readings)" : ""}`);
    }
  }
}

/** Declares the ipmi_dcmi collector's flags. */
export function registerIpmiDcmiFlags(fs: FlagSet): void {
  fs.add({
    name: "collector.ipmi_dcmi.cmd",
    kind: "string",
    default: "",
    help: "IPMI DCMI command to get system power statistics. Use full path to executables.",
  });
  fs.alias("collector.ipmi.dcmi.cmd", "collector.ipmi_dcmi.cmd");
  fs.add({
    name: "collector.ipmi_dcmi.dev-num",
    kind: "int",
    default: 0,
    help: "IPMI device number (/dev/ipmi<num>) used in native mode.",
  });
  fs.add({
    name: "collector.ipmi_dcmi.force-native-mode",
    kind: "bool",
    help: "Force native mode (ioctl on /dev/ipmi<num>) instead of an IPMI tool.",
  });
  fs.add({
    name: "collector.ipmi_dcmi.test-mode",
    kind: "bool",
    hidden: true,
    help: "Run the IPMI tool as the current user (tests only).",
  });
  fs.add({
    name: "collector.ipmi_dcmi.timeout",
    kind: "duration",
    default: 5000,
    hidden: true,
    help: "Time after which a hung IPMI tool is killed.",
  });
}

/** How readings are taken, decided once at start-up: a tool (as root, or as the user in test mode), or /dev/ipmiN. */
export type IpmiSource = { kind: "tool"; cmd: string[]; asRoot: boolean } | { kind: "native"; why: string };

/** The ipmi_dcmi flags, read once. */
export interface IpmiDcmiOptions {
  source: IpmiSource;
  devNum: number;
  timeoutMs: number;
}

/**
 * Reads the flags and decides the mode as CEEMS does: --collector.ipmi_dcmi.force-native-mode → native; else
 * the tool named by --collector.ipmi_dcmi.cmd or the first one found in `dirs`; no tool → native. A tool run
 * as root that someone else could replace is refused (one line naming the flag).
 */
export function ipmiDcmiOptions(f: FlagSet, dirs: readonly string[] = SYSTEM_DIRS): IpmiDcmiOptions {
  const base = { devNum: f.number("collector.ipmi_dcmi.dev-num"), timeoutMs: f.number("collector.ipmi_dcmi.timeout") };
  if (f.bool("collector.ipmi_dcmi.force-native-mode")) {
    return { ...base, source: { kind: "native", why: "--collector.ipmi_dcmi.force-native-mode is set" } };
  }
  const cmd = resolveDcmiCommand(f.string("collector.ipmi_dcmi.cmd"), dirs);
  if (!cmd) {
    const why = `no IPMI DCMI tool (${dcmiCommands.map((c) => c[0]).join(", ")}) found in ${dirs.join(":")}`;
    return { ...base, source: { kind: "native", why } };
  }
  if (!cmd[0].startsWith("/")) throw new Error(`--collector.ipmi_dcmi.cmd: ${cmd[0]} not found in ${dirs.join(":")}`);
  const asRoot = !f.bool("collector.ipmi_dcmi.test-mode");
  if (asRoot) {
    try {
      checkRootTool(cmd[0]);
    } catch (e) {
      throw new Error(`--collector.ipmi_dcmi.cmd: ${(e as Error).message}`);
    }
  }
  return { ...base, source: { kind: "tool", cmd, asRoot } };
}

/** What ipmi_dcmi declares: the root tool's context and command, or the device context in native mode. */
export function ipmiDcmiSecurity(o: IpmiDcmiOptions): SecurityNeeds {
  const s = o.source;
  if (s.kind === "native") return { contexts: [nativeIpmiContext] };
  const commands = [{ flag: "collector.ipmi_dcmi.cmd", path: s.cmd[0], asRoot: s.asRoot }];
  return s.asRoot ? { contexts: [IPMI_TOOL_CONTEXT], commands } : { commands };
}

/** Test hooks: device probing and the library serving ioctl/poll (a fake driver in tests). */
export interface IpmiDcmiTestHooks {
  exists?: (path: string) => boolean;
  libc?: string;
}

/** Builds the collector over the source the options chose (native: the first /dev/ipmiN path that exists). */
export function createIpmiDcmiCollector(
  ctx: CollectorContext,
  o: IpmiDcmiOptions,
  hooks: IpmiDcmiTestHooks = {},
): IpmiDcmiCollector {
  const s = o.source;
  if (s.kind === "native") {
    const path = findIpmiDevice(o.devNum, hooks.exists);
    if (!path) {
      throw new Error(
        `${s.why}, and no IPMI device (${ipmiDevicePaths(o.devNum).join(", ")}) exists; ` +
          "load ipmi_si and ipmi_devintf, or set --collector.ipmi_dcmi.cmd",
      );
    }
    ctx.logger.info("using native IPMI", { device: path });
    const reader = new NativeDcmiReader(path, ctx.security, hooks.libc);
    return new IpmiDcmiCollector({ kind: "native", reader, timeoutMs: o.timeoutMs }, ctx.hostname);
  }
  ctx.logger.debug("using IPMI command", { cmd: s.cmd.join(" "), test_mode: !s.asRoot });
  return new IpmiDcmiCollector(
    { kind: "tool", runner: { cmd: s.cmd, testMode: !s.asRoot, timeoutMs: o.timeoutMs, security: ctx.security } },
    ctx.hostname,
  );
}

registerCollector({
  name: "ipmi_dcmi",
  defaultEnabled: false,
  help: "Node power from IPMI DCMI",
  registerFlags: registerIpmiDcmiFlags,
  options: (f) => ipmiDcmiOptions(f),
  security: ipmiDcmiSecurity,
  create: (ctx, o) => createIpmiDcmiCollector(ctx, o),
});
