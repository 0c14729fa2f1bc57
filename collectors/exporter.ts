// The `ceems exporter` subcommand: CEEMS-compatible flags, collector construction, and the web
// server exposing /metrics, /health and a landing page until SIGTERM or SIGINT.

import {
  addCommonFlags,
  listenersFromFlags,
  loggerFromFlags,
  parseFlags,
  RequestLimiter,
  StartupError,
  waitForShutdownSignal,
  webConfigFromFlags,
} from "../common/cli.ts";
import { FlagSet } from "../common/flags.ts";
import type { Logger } from "../common/log.ts";
import { emitProcessMetrics } from "../common/process_metrics.ts";
import { buildInfoLabels, VERSION } from "../common/version.ts";
import { loadDebugHandler } from "../common/web/debug.ts";
import { landingPage, serve } from "../common/web/server.ts";
import { type GatheredSecurity, gatherSecurity } from "../privilege/declare.ts";
import { type Capability, DeferredSecurityManager, type SecurityManager } from "../privilege/security.ts";
import { addSecurityFlags, securityPreflight, setupSecurity } from "../privilege/setup.ts";
import {
  addAlloyTargetFlags,
  AlloyTargetDiscoverer,
  alloyTargetManager,
  alloyTargetOptions,
  alloyTargetSecurity,
  alloyTargetsHandler,
} from "./alloy/targets.ts";
import type { Collector, CollectorContext, MetricSink } from "./framework/collector.ts";
import "./all.ts";
import { renderFamilyChunks } from "./framework/metric_sink.ts";
import { registeredCollectors } from "./framework/registry.ts";
import { scrapeCollectors } from "./framework/scrape.ts";

/** Declares every exporter flag, collectors' own flags included. */
export function exporterFlags(): FlagSet {
  const fs = new FlagSet("exporter", "Prometheus exporter for compute units (jobs, VMs, pods) and node power.");
  addCommonFlags(fs, [":9010"], "CEEMS_EXPORTER_WEB_CONFIG_FILE");
  addSecurityFlags(fs);
  fs.add({
    name: "web.telemetry-path",
    kind: "string",
    default: "/metrics",
    help: "Path under which to expose metrics.",
  });
  fs.add({
    name: "web.debug-server",
    kind: "bool",
    help: "Enable /debug/ endpoints (V8 heap statistics and heap snapshot; GET from localhost only).",
  });
  addAlloyTargetFlags(fs);
  addProfilingFlags(fs);
  fs.add({
    name: "web.disable-exporter-metrics",
    kind: "bool",
    help: "Exclude metrics about the exporter itself (process_*).",
  });
  fs.add({
    name: "collector.disable-defaults",
    kind: "bool",
    help: "Set all collectors to disabled by default.",
  });
  fs.add({
    name: "collector.empty-hostname-label",
    kind: "bool",
    hidden: true,
    help: "Use an empty hostname label (tests).",
  });
  fs.add({ name: "path.procfs", kind: "string", default: "/proc", placeholder: "PATH", help: "procfs mountpoint." });
  fs.add({ name: "path.sysfs", kind: "string", default: "/sys", placeholder: "PATH", help: "sysfs mountpoint." });
  fs.add({
    name: "path.cgroupfs",
    kind: "string",
    default: "/sys/fs/cgroup",
    placeholder: "PATH",
    help: "cgroupfs mountpoint.",
  });
  for (const def of registeredCollectors()) {
    fs.add({
      name: `collector.${def.name}`,
      kind: "bool",
      default: def.defaultEnabled,
      help: `Enable the ${def.name} collector${def.help ? ` (${def.help})` : ""}.`,
    });
    def.registerFlags?.(fs);
  }
  return fs;
}

/**
 * CEEMS's --profiling.ebpf* flags (its built-in eBPF profiler pushing to Pyroscope): accepted, and off; turning
 * the profiler on stops start-up naming the flag (Grafana Alloy fed by --discoverer.alloy-targets profiles instead).
 */
function addProfilingFlags(fs: FlagSet): void {
  fs.add({
    name: "profiling.ebpf",
    kind: "bool",
    help: "CEEMS's eBPF continuous profiler: not implemented (use Grafana Alloy with --discoverer.alloy-targets).",
    validate: (v) =>
      v
        ? "the eBPF profiler is not implemented; profile with Grafana Alloy fed by --discoverer.alloy-targets"
        : undefined,
  });
  fs.add({
    name: "profiling.ebpf.config.file",
    kind: "string",
    default: "",
    placeholder: "PATH",
    envar: "CEEMS_EXPORTER_PROFILING_CONFIG_FILE",
    help: "Configuration file of the eBPF profiler (accepted; used only with --profiling.ebpf).",
  });
  fs.add({
    name: "profiling.ebpf.config.file.expand-env-vars",
    kind: "bool",
    help: "Expand environment variables in the eBPF profiler's configuration file (accepted).",
  });
  fs.add({
    name: "profiling.ebpf.env-var",
    kind: "strings",
    help: "Profile only processes having one of these environment variables (accepted; --profiling.ebpf only).",
  });
  fs.add({
    name: "profiling.ebpf.self-profiler",
    kind: "bool",
    help: "Profile the exporter itself (accepted; --profiling.ebpf only).",
  });
}

/** Names of the collectors enabled by the parsed flags, honouring --collector.disable-defaults. */
export function enabledCollectorNames(fs: FlagSet): string[] {
  const disableDefaults = fs.bool("collector.disable-defaults");
  return registeredCollectors()
    .filter((d) => {
      const flag = `collector.${d.name}`;
      return disableDefaults && !fs.isExplicit(flag) ? false : fs.bool(flag);
    })
    .map((d) => d.name);
}

/**
 * The enabled collectors' options: each collector's flags read once, here (commands resolved at start-up).
 * A collector whose flags are unusable stops start-up naming it.
 */
export function collectorOptions(fs: FlagSet): Map<string, unknown> {
  const byName = new Map(registeredCollectors().map((d) => [d.name, d]));
  const out = new Map<string, unknown>();
  for (const name of enabledCollectorNames(fs)) {
    try {
      out.set(name, byName.get(name)!.options?.(fs));
    } catch (e) {
      throw new StartupError(`couldn't create collector ${name}: ${(e as Error).message}`, 1);
    }
  }
  return out;
}

/**
 * What the enabled collectors declare (privilege/declare.ts), gathered: the capabilities they need with the
 * flags needing each, their contexts, the paths they read or load code from after the drop, their commands.
 */
export function exporterSecurity(fs: FlagSet, options = collectorOptions(fs)): GatheredSecurity {
  const byName = new Map(registeredCollectors().map((d) => [d.name, d]));
  const targets = alloyTargetSecurity(alloyTargetOptions(fs), alloyTargetManager([...options.keys()]));
  return gatherSecurity([...[...options].map(([name, o]) => byName.get(name)!.security?.(o) ?? {}), targets]);
}

/** The capabilities the enabled collectors need, each mapped to the flags needing it (exporterSecurity). */
export function exporterRequiredCapabilities(fs: FlagSet): Map<Capability, string> {
  return exporterSecurity(fs).required;
}

/** Builds the enabled collectors from their options; a constructor failure stops start-up naming the collector. */
export async function createCollectors(
  fs: FlagSet,
  logger: Logger,
  security: SecurityManager,
  options = collectorOptions(fs),
): Promise<Map<string, Collector>> {
  const hostname = fs.bool("collector.empty-hostname-label") ? "" : (Deno.env.get("NODE_NAME") || Deno.hostname());
  const paths = {
    procfs: fs.string("path.procfs"),
    sysfs: fs.string("path.sysfs"),
    cgroupfs: fs.string("path.cgroupfs"),
  };
  const byName = new Map(registeredCollectors().map((d) => [d.name, d]));
  const out = new Map<string, Collector>();
  for (const [name, o] of options) {
    const ctx: CollectorContext = { logger: logger.with({ collector: name }), paths, hostname, security };
    try {
      out.set(name, await byName.get(name)!.create(ctx, o));
    } catch (e) {
      throw new StartupError(`couldn't create collector ${name}: ${(e as Error).message}`, 1);
    }
    logger.info("collector enabled", { collector: name });
  }
  return out;
}

/**
 * Runs each collector's start-up work (eBPF programs attach) once privileges are set up, before serving;
 * a failure is logged and the collector stays enabled.
 */
export async function startCollectors(collectors: Map<string, Collector>, logger: Logger): Promise<void> {
  await Promise.all([...collectors].map(async ([name, c]) => {
    try {
      await c.start?.();
    } catch (e) {
      logger.error("collector start-up failed", { collector: name, err: e });
    }
  }));
}

/**
 * Metrics about the exporter itself, added to every scrape: build info and, unless disabled, process_*.
 * Written with the scrape's own exposition writer, so the node daemon does not load a metrics library
 * (prom-client costs about 15 MiB resident here) for two families.
 */
export function exporterSelfMetrics(disableExporterMetrics: boolean): (sink: MetricSink) => void {
  const labels = buildInfoLabels();
  return (sink) => {
    sink.gauge(
      "ceems_exporter_build_info",
      "A metric with a constant '1' value labeled by version, revision, branch and runtime version.",
      labels,
      1,
    );
    if (!disableExporterMetrics) emitProcessMetrics(sink);
  };
}

/** The /metrics handler: scrapes every collector, answering 503 beyond `maxRequests` concurrent scrapes. */
export function createMetricsHandler(
  collectors: Map<string, Collector>,
  logger: Logger,
  selfMetrics: (sink: MetricSink) => void,
  maxRequests: number,
): () => Promise<Response> {
  const limiter = new RequestLimiter(maxRequests);
  return async () => {
    if (!limiter.tryAcquire()) {
      return new Response("Too many concurrent requests\n", { status: 503 });
    }
    try {
      const sink = await scrapeCollectors(collectors, logger);
      selfMetrics(sink);
      const body = streamText(renderFamilyChunks(sink.families.values()));
      return new Response(body, { headers: { "content-type": "text/plain; version=0.0.4; charset=utf-8" } });
    } finally {
      limiter.release();
    }
  };
}

/** A byte stream of `chunks`, each encoded only when the reader pulls it (bounded memory). */
export function streamText(chunks: Iterator<string>): ReadableStream<Uint8Array> {
  const enc = new TextEncoder();
  return new ReadableStream<Uint8Array>({
    pull(controller) {
      const n = chunks.next();
      if (n.done) controller.close();
      else controller.enqueue(enc.encode(n.value));
    },
    cancel() {
      chunks.return?.(undefined);
    },
  }, { highWaterMark: 0 });
}

/**
 * The Alloy targets handler when --discoverer.alloy-targets is on and a SLURM or k8s collector runs (as CEEMS:
 * otherwise the targets path is not served, with one warning when the flag asked for it).
 */
function createTargetsHandler(
  fs: FlagSet,
  collectors: string[],
  security: SecurityManager,
  logger: Logger,
): (() => Promise<Response>) | undefined {
  const opts = alloyTargetOptions(fs);
  if (!opts.enabled) return undefined;
  const manager = alloyTargetManager(collectors);
  if (!manager) {
    logger.warn("--discoverer.alloy-targets needs --collector.slurm or --collector.k8s: no targets served");
    return undefined;
  }
  const paths = { procfs: fs.string("path.procfs"), cgroupfs: fs.string("path.cgroupfs") };
  const l = logger.with({ discoverer: "alloy-targets" });
  const discoverer = new AlloyTargetDiscoverer(opts, { manager, paths, security, logger: l });
  l.info("Grafana Alloy targets discoverer enabled", { manager, path: fs.string("web.targets-path") });
  return alloyTargetsHandler(discoverer, fs.number("web.max-requests"), l);
}

/** Entry point of `ceems exporter`. */
export async function exporterMain(argv: string[]): Promise<void> {
  const fs = exporterFlags();
  parseFlags(fs, argv, "exporter");
  const webConfig = await webConfigFromFlags(fs);
  const logger = loggerFromFlags(fs);
  for (const w of fs.warnings) logger.warn(w);
  const telemetryPath = fs.string("web.telemetry-path");
  if (!telemetryPath.startsWith("/")) throw new StartupError("--web.telemetry-path: must start with /");
  const listeners = listenersFromFlags(fs);

  // As CEEMS does: collectors are built with the start-up credentials (privileged calls run inline
  // meanwhile), then the process drops to exactly what they need before serving.
  const options = collectorOptions(fs);
  const declared = exporterSecurity(fs, options);
  securityPreflight("exporter", fs, declared.required);
  const deferred = new DeferredSecurityManager();
  const collectors = await createCollectors(fs, logger, deferred, options);
  const security = await setupSecurity({
    component: "exporter",
    flags: fs,
    logger,
    required: declared.required,
    contexts: declared.contexts,
    // Fixture trees given with --path.* must stay readable after the switch to the run-as user.
    readPaths: [
      fs.string("web.config.file"),
      ...["path.procfs", "path.sysfs", "path.cgroupfs"].filter((f) => fs.isExplicit(f)).map((f) => fs.string(f)),
      ...declared.readPaths,
    ],
    readWritePaths: [],
    loadPaths: declared.loadPaths,
  });
  deferred.use(security.manager);
  await startCollectors(collectors, logger);
  const selfMetrics = exporterSelfMetrics(fs.bool("web.disable-exporter-metrics"));
  const metricsHandler = createMetricsHandler(collectors, logger, selfMetrics, fs.number("web.max-requests"));
  const targetsPath = fs.string("web.targets-path");
  const targetsHandler = createTargetsHandler(fs, [...collectors.keys()], security.manager, logger);
  const debug = fs.bool("web.debug-server") ? await loadDebugHandler() : undefined;

  const server = await serve({
    addresses: listeners.addresses,
    fds: listeners.fds,
    webConfig,
    logger,
    handler: (req, info) => {
      const path = new URL(req.url).pathname;
      if (path === telemetryPath) return metricsHandler();
      if (targetsHandler && path === targetsPath) return targetsHandler();
      const d = debug?.(req, info);
      if (d) return d;
      if (path === "/health") {
        return new Response("CEEMS Exporter is healthy", {
          headers: { "X-Content-Type-Options": "nosniff" },
        });
      }
      if (path === "/") {
        return landingPage("CEEMS Exporter", "Prometheus exporter for compute units and node power", VERSION, [
          [telemetryPath, "Metrics"],
          ...(targetsHandler ? [[targetsPath, "Grafana Alloy Targets"] as [string, string]] : []),
          ["/health", "Health"],
        ]);
      }
      return new Response("404 page not found\n", { status: 404 });
    },
  }).catch((e) => {
    throw new StartupError(
      `${listeners.fds ? "--web.systemd-socket" : "--web.listen-address"}: ${(e as Error).message}`,
      1,
    );
  });
  logger.info("ceems exporter started", { version: VERSION, collectors: [...collectors.keys()].join(",") });

  const sig = await waitForShutdownSignal();
  logger.info("shutting down", { signal: sig });
  await server.close();
  for (const [name, c] of collectors) {
    try {
      await c.stop?.();
    } catch (e) {
      logger.warn("collector stop failed", { collector: name, err: e });
    }
  }
  await security.close();
  logger.info("stopped");
}
