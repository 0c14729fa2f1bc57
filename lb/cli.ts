// The `ceems lb` subcommand: CEEMS-compatible flags, config loading, the TSDB (first listen address)
// and Pyroscope (second) load balancers with their health checkers, until SIGTERM or SIGINT.

import { DB_FILE } from "../common/ceems_db.ts";
import { pathExists } from "../common/fs.ts";
import { join } from "../common/path.ts";
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
import { VERSION } from "../common/version.ts";
import { type Handler, serve, type WebServer } from "../common/web/server.ts";
import { addSecurityFlags, securityPreflight, setupSecurity } from "../privilege/setup.ts";
import { moduleGraphFiles } from "../privilege/worker_source.ts";
import { type LbConfig, loadLbConfig } from "./config.ts";
import { pyroscopeHandler, tsdbHandler } from "./frontend.ts";
import { createHttpBackendClient } from "./http_client.ts";
import {
  CachedOwnership,
  DbOwnership,
  DEFAULT_OWNERSHIP_TIMEOUT_MS,
  HttpOwnership,
  type OwnershipChecker,
  OwnershipError,
} from "./ownership.ts";
import { ServerPool } from "./pool.ts";
import { QueryAnalyser } from "./query_analyser.ts";

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
    name: "lb.health-check-interval",
    kind: "duration",
    default: 20_000,
    hidden: true,
    help: "Interval between backend health checks.",
  });
  fs.add({
    name: "lb.ownership-timeout",
    kind: "duration",
    default: DEFAULT_OWNERSHIP_TIMEOUT_MS,
    help: "Longest wait for one ownership or admin answer (database or API server); beyond it the request gets 503.",
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

/** Where ownership is checked: the API server's database when its file exists, else its HTTP API. */
type OwnershipSource = { kind: "db"; dbPath: string } | { kind: "http"; url: string };

/** Picks the ownership source of the config (the database wins when present, as in CEEMS). */
export function ownershipSource(cfg: LbConfig): OwnershipSource {
  if (cfg.api.dataPath) {
    const dbPath = join(cfg.api.dataPath, DB_FILE);
    if (pathExists(dbPath)) return { kind: "db", dbPath };
    if (!cfg.api.url) throw new Error(`ceems_api_server.data.path: ${dbPath} does not exist`);
  }
  return { kind: "http", url: cfg.api.url };
}

/**
 * As CEEMS: every backend id must be a cluster the API server knows. A readable database without a
 * backend's id stops start-up, so does a database the run-as user cannot read; a database or API server
 * that cannot answer now only gives a warning (requests then get 503 until it can).
 */
async function checkClusterIds(cfg: LbConfig, checker: OwnershipChecker, source: OwnershipSource, logger: Logger) {
  let known: string[];
  try {
    known = await checker.clusterIds();
  } catch (e) {
    if (source.kind === "db" && e instanceof OwnershipError && e.kind === "permission") {
      throw new StartupError(
        `ceems_api_server.data.path: ${(e as Error).message}: give the user the LB runs as read access ` +
          "(e.g. the API server's group)",
      );
    }
    logger.warn("could not verify backend IDs with the CEEMS API server", { err: e });
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
  // The LB needs no capability whatever its configuration: --print-capabilities answers before reading it.
  securityPreflight("lb", fs, new Map());
  const webConfig = await webConfigFromFlags(fs);
  const listeners = listenersFromFlags(fs);
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
  const addrs = listeners.addresses;
  // With --web.systemd-socket the first socket passed is the TSDB load balancer's, the second Pyroscope's.
  if (listeners.fds && listeners.fds.length < kinds.length) {
    throw new StartupError(
      `--web.systemd-socket: insufficient sockets. Expected ${kinds.length} got ${listeners.fds.length}`,
    );
  }
  if (!listeners.fds && addrs.length < kinds.length) {
    throw new StartupError(
      `--web.listen-address: insufficient addresses. Expected ${kinds.length} got ${addrs.length}`,
    );
  }
  let source: OwnershipSource;
  try {
    source = ownershipSource(cfg);
  } catch (e) {
    throw new StartupError(`--config.file: ${configFile}: ${(e as Error).message}`);
  }
  const limiter = fs.number("web.max-requests") > 0 ? new RequestLimiter(fs.number("web.max-requests")) : undefined;
  const ttlMs = fs.number("lb.ownership-cache-ttl");
  const timeoutMs = fs.number("lb.ownership-timeout");
  // Files the backends' and the API client's credentials name are read now, before the drop (secrets stay
  // root-only on disk); nothing after the drop needs more than the database.
  const pools = kinds.map((kind) => {
    const pool = new ServerPool(cfg.strategy, logger.with({ backend_type: kind }));
    for (const g of cfg.backends) for (const s of g[kind]) pool.add(g.id, s, cfg.file);
    return pool;
  });
  const httpClient = source.kind === "http" ? createHttpBackendClient(cfg.api.client, cfg.file) : undefined;

  // No capability and no ACL: the run-as user must be able to read the database on its own (its group).
  const security = await setupSecurity({
    component: "lb",
    flags: fs,
    logger,
    required: new Map(),
    // No privileged context at all: any call into one fails.
    contexts: new Map(),
    // Worker modules load after the drop: the query analyser's always, the database reader's with data.path.
    readPaths: [
      ...moduleGraphFiles(QueryAnalyser.workerUrl),
      ...(source.kind === "db"
        ? [cfg.api.dataPath, source.dbPath, ...moduleGraphFiles(new URL("./ownership_worker.ts", import.meta.url))]
        : []),
    ],
    pathKeys: source.kind === "db"
      ? { [cfg.api.dataPath]: "ceems_api_server.data.path", [source.dbPath]: "ceems_api_server.data.path" }
      : {},
    readWritePaths: [],
  });
  const inner = source.kind === "db"
    ? new DbOwnership(source.dbPath, timeoutMs)
    : new HttpOwnership(source.url, httpClient!, timeoutMs);
  const ownership = new CachedOwnership(inner, ttlMs);
  const analyser = new QueryAnalyser();
  const servers: WebServer[] = [];
  try {
    await checkClusterIds(cfg, ownership, source, logger);
    for (const [i, kind] of kinds.entries()) {
      const pool = pools[i];
      await pool.startHealthChecks(fs.number("lb.health-check-interval"));
      const opts = { pool, ownership, analyser, logger: logger.with({ backend_type: kind }) };
      const handler = kind === "tsdb" ? tsdbHandler(opts) : pyroscopeHandler(opts);
      servers.push(
        await serve({
          addresses: listeners.fds ? [] : [addrs[i]],
          fds: listeners.fds ? [listeners.fds[i]] : undefined,
          webConfig,
          logger,
          handler: limited(handler, limiter),
        }).catch((e) => {
          const flag = listeners.fds ? "--web.systemd-socket" : "--web.listen-address";
          throw new StartupError(`${flag}: ${(e as Error).message}`, 1);
        }),
      );
    }
    logger.info("ceems lb started", {
      version: VERSION,
      load_balancers: kinds.join(","),
      strategy: cfg.strategy,
      ownership: source.kind === "db" ? source.dbPath : source.url,
    });
    const sig = await waitForShutdownSignal();
    logger.info("shutting down", { signal: sig });
  } finally {
    await Promise.all(servers.map((s) => s.close()));
    for (const p of pools) p.stop();
    ownership.close();
    analyser.close();
    await security.close();
  }
  logger.info("stopped");
}
