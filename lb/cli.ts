// The `ceems lb` subcommand: CEEMS-compatible flags, config loading, the TSDB (first listen address)
// and Pyroscope (second) load balancers with their health checkers, until SIGTERM or SIGINT.

import { join } from "node:path";
import {
  addCommonFlags,
  loggerFromFlags,
  parseFlags,
  RequestLimiter,
  StartupError,
  waitForShutdownSignal,
  webConfigFromFlags,
} from "../common/cli.ts";
import { FlagSet } from "../common/flags.ts";
import type { Logger } from "../common/log.ts";
import { VERSION } from "../common/version.ts";
import { type Handler, serve, type WebServer } from "../common/web/server.ts";
import { addSecurityFlags, setupSecurity } from "../privilege/setup.ts";
import { type LbConfig, loadLbConfig } from "./config.ts";
import { pyroscopeHandler, tsdbHandler } from "./frontend.ts";
import { createHttpBackendClient } from "./http_client.ts";
import { CachedOwnership, DbOwnership, HttpOwnership, type OwnershipChecker } from "./ownership.ts";
import { ServerPool } from "./pool.ts";

/** File name of the API server's database inside its data directory. */
export const CEEMS_DB_NAME = "ceems.db";

/** Declares every `ceems lb` flag. */
export function lbFlags(): FlagSet {
  const fs = new FlagSet("lb", "CEEMS load balancer: access-controlled proxy in front of Prometheus and Pyroscope.");
  addCommonFlags(fs, [":9030", ":9040"], "CEEMS_LB_WEB_CONFIG_FILE");
  // Grafana dashboards send bursts of queries; like CEEMS, the LB does not limit them unless asked.
  const maxRequests = fs.specs().find((s) => s.name === "web.max-requests");
  if (maxRequests) {
    maxRequests.default = 0;
    maxRequests.help = "Maximum number of parallel requests (503 beyond it). 0 disables the limit.";
  }
  addSecurityFlags(fs);
  fs.add({
    name: "config.file",
    kind: "string",
    default: "",
    placeholder: "PATH",
    envar: "CEEMS_LB_CONFIG_FILE",
    help: "Configuration file path.",
  });
  fs.add({
    name: "config.file.expand-env-vars",
    kind: "bool",
    help: "Expand environment variables referenced in the config file ($$ escapes $).",
  });
  fs.add({
    name: "runtime.gomaxprocs",
    kind: "int",
    default: 1,
    envar: "GOMAXPROCS",
    help: "Accepted for CEEMS compatibility; has no effect.",
  });
  fs.add({
    name: "web.systemd-socket",
    kind: "bool",
    help: "Use systemd socket activation listeners instead of port listeners (not supported).",
  });
  fs.add({
    name: "lb.health-check-interval",
    kind: "duration",
    default: 20_000,
    hidden: true,
    help: "Interval between backend health checks.",
  });
  fs.add({
    name: "lb.ownership-cache-ttl",
    kind: "duration",
    default: 30_000,
    hidden: true,
    help: "How long unit ownership and admin answers are cached.",
  });
  return fs;
}

/** Builds the ownership checker the config asks for: the API DB when present, else the API URL. */
export function ownershipFromConfig(cfg: LbConfig, ttlMs: number): { checker?: OwnershipChecker; dbPath?: string } {
  if (cfg.api.dataPath) {
    const dbPath = join(cfg.api.dataPath, CEEMS_DB_NAME);
    try {
      Deno.statSync(dbPath);
      return { checker: new CachedOwnership(new DbOwnership(dbPath), ttlMs), dbPath };
    } catch (e) {
      if (!cfg.api.url) throw new Error(`ceems_api_server.data.path: cannot open ${dbPath}: ${(e as Error).message}`);
    }
  }
  if (cfg.api.url) {
    const client = createHttpBackendClient(cfg.api.client, cfg.file);
    return { checker: new CachedOwnership(new HttpOwnership(cfg.api.url, client), ttlMs) };
  }
  return {};
}

/**
 * As CEEMS: every backend id must be a cluster the API server knows. A DB without a backend's id stops
 * start-up; an unreachable API server only gives a warning.
 */
async function checkClusterIds(cfg: LbConfig, checker: OwnershipChecker, fromDb: boolean, logger: Logger) {
  let known: string[];
  try {
    known = await checker.clusterIds();
  } catch (e) {
    if (fromDb) throw new StartupError(`--config.file: cannot read clusters from the API DB: ${(e as Error).message}`);
    logger.warn("could not verify backend IDs with the API server", { err: e });
    return;
  }
  const unknown = cfg.backends.map((b) => b.id).filter((id) => !known.includes(id));
  if (unknown.length) {
    throw new StartupError(
      `--config.file: backend ID(s) ${unknown.join(", ")} unknown to the CEEMS API server (known: ${known.join(", ")})`,
    );
  }
}

function limited(handler: Handler, limiter?: RequestLimiter): Handler {
  if (!limiter) return handler;
  return async (req, info) => {
    if (!limiter.tryAcquire()) return new Response("Too many concurrent requests\n", { status: 503 });
    try {
      return await handler(req, info);
    } finally {
      limiter.release();
    }
  };
}

/** Entry point of `ceems lb`. */
export async function lbMain(argv: string[]): Promise<void> {
  const fs = lbFlags();
  parseFlags(fs, argv, "lb");
  const logger: Logger = loggerFromFlags(fs);
  for (const w of fs.warnings) logger.warn(w);
  const webConfig = await webConfigFromFlags(fs);
  if (fs.bool("web.systemd-socket")) throw new StartupError("--web.systemd-socket: not supported");
  const configFile = fs.string("config.file");
  if (!configFile) throw new StartupError("--config.file: a configuration file is required");
  let cfg: LbConfig;
  try {
    cfg = loadLbConfig(configFile, fs.bool("config.file.expand-env-vars"), Deno.env.toObject());
  } catch (e) {
    throw new StartupError(`--config.file: ${configFile}: ${(e as Error).message}`);
  }
  const kinds: ("tsdb" | "pyroscope")[] = [];
  if (cfg.backends.some((b) => b.tsdb.length)) kinds.push("tsdb");
  if (cfg.backends.some((b) => b.pyroscope.length)) kinds.push("pyroscope");
  const addrs = fs.strings("web.listen-address");
  if (addrs.length < kinds.length) {
    throw new StartupError(
      `--web.listen-address: insufficient addresses. Expected ${kinds.length} got ${addrs.length}`,
    );
  }
  let own: ReturnType<typeof ownershipFromConfig>;
  try {
    own = ownershipFromConfig(cfg, fs.number("lb.ownership-cache-ttl"));
  } catch (e) {
    throw new StartupError(`--config.file: ${configFile}: ${(e as Error).message}`);
  }
  if (!own.checker) logger.warn("no ceems_api_server configured: access control is disabled");
  else await checkClusterIds(cfg, own.checker, own.dbPath !== undefined, logger);

  const security = await setupSecurity({
    component: "lb",
    flags: fs,
    logger,
    required: new Map(),
    readPaths: [configFile, fs.string("web.config.file"), ...(own.dbPath ? [cfg.api.dataPath, own.dbPath] : [])]
      .filter((p) => p !== ""),
    readWritePaths: [],
  });

  const limiter = fs.number("web.max-requests") > 0 ? new RequestLimiter(fs.number("web.max-requests")) : undefined;
  const pools: ServerPool[] = [];
  const servers: WebServer[] = [];
  try {
    for (const [i, kind] of kinds.entries()) {
      const pool = new ServerPool(cfg.strategy, logger.with({ backend_type: kind }));
      for (const g of cfg.backends) for (const s of g[kind]) pool.add(g.id, s, cfg.file);
      pools.push(pool);
      await pool.startHealthChecks(fs.number("lb.health-check-interval"));
      const opts = { pool, ownership: own.checker, logger: logger.with({ backend_type: kind }) };
      const handler = kind === "tsdb" ? tsdbHandler(opts) : pyroscopeHandler(opts);
      servers.push(
        await serve({ addresses: [addrs[i]], webConfig, logger, handler: limited(handler, limiter) }).catch((e) => {
          throw new StartupError(`--web.listen-address: ${(e as Error).message}`, 1);
        }),
      );
    }
    logger.info("ceems lb started", { version: VERSION, load_balancers: kinds.join(","), strategy: cfg.strategy });
    const sig = await waitForShutdownSignal();
    logger.info("shutting down", { signal: sig });
  } finally {
    await Promise.all(servers.map((s) => s.close()));
    for (const p of pools) p.stop();
    own.checker?.close();
    await security.close();
  }
  logger.info("stopped");
}
