// Entry point of `ceems api`: CEEMS's API server flags, configuration loading and validation, storage,
// resource managers and updaters, the periodic update and backup loops, and the HTTP server.

import { isAbsolute, join, resolve } from "node:path";
import {
  addCommonFlags,
  listenersFromFlags,
  loggerFromFlags,
  parseFlags,
  StartupError,
  waitForShutdownSignal,
  webConfigFromFlags,
} from "../common/cli.ts";
import { FlagSet, parseDuration } from "../common/flags.ts";
import type { Level, LogFormat, Logger } from "../common/log.ts";
import { VERSION } from "../common/version.ts";
import { loadDebugHandler } from "../common/web/debug.ts";
import { landingPage, serve } from "../common/web/server.ts";
import { gatherSecurity } from "../privilege/declare.ts";
import { DeferredSecurityManager, type SecurityManager } from "../privilege/security.ts";
import { addSecurityFlags, setupSecurity } from "../privilege/setup.ts";
import { type ApiConfig, ConfigError, loadApiConfig } from "./config.ts";
import { apiHandler } from "./http/api.ts";
import { ReadPool, readWorkerFiles } from "./http/read_pool.ts";
import { type DbLock, DbLockedError, lockDatabase } from "./storage/db_lock.ts";
import type { ResourceManager } from "./managers/manager.ts";
import { OpenStackManager } from "./managers/openstack.ts";
import { canSwitchUser, SLURM_TOOL_CONTEXT, SlurmManager } from "./managers/slurm.ts";
import { DB_FILE, EmptyDatabaseError, refuseEmptyDatabase } from "./storage/sqlite.ts";
import { WorkerStorage, writerWorkerFiles } from "./storage/writer_client.ts";
import { HealthState } from "./health.ts";
import { UpdateCycle } from "./update_cycle.ts";
import { TsdbUpdater } from "./updater/tsdb.ts";

/** Flag validation: undefined for a Prometheus duration, else the problem. */
function validDuration(v: unknown): string | undefined {
  try {
    parseDuration(v as string);
    return undefined;
  } catch {
    return `invalid duration "${v}"`;
  }
}

/** Declares every `ceems api` flag. */
export function apiFlags(): FlagSet {
  const fs = new FlagSet("api", "CEEMS API server: compute units, usage, energy and emissions.");
  addCommonFlags(fs, [":9020"], "CEEMS_API_SERVER_WEB_CONFIG_FILE");
  // For the API, CEEMS's --web.max-requests is a per-client rate (go-chi/httprate), unlimited by default.
  const maxRequests = fs.specs().find((s) => s.name === "web.max-requests");
  if (maxRequests) {
    maxRequests.default = 0;
    maxRequests.help =
      "Maximum number of requests per minute per client, identified by its real IP (True-Client-IP, X-Real-IP or X-Forwarded-For header, else the peer address); 429 beyond it. 0 disables the limit.";
  }
  fs.add({
    name: "config.file",
    kind: "string",
    default: "",
    placeholder: "PATH",
    envar: "CEEMS_API_SERVER_CONFIG_FILE",
    help: "Configuration file path.",
  });
  fs.add({ name: "config.file.expand-env-vars", kind: "bool", help: "Expand ${VAR} in the configuration file." });
  fs.add({ name: "web.route-prefix", kind: "string", default: "/", help: "Prefix of the API routes." });
  fs.add({
    name: "web.cors.origin",
    kind: "string",
    default: ".*",
    help: "Regex of allowed CORS origins (fully anchored).",
    validate: (v) => {
      try {
        new RegExp(`^(?:${v})$`);
        return undefined;
      } catch (e) {
        return `invalid regex: ${(e as Error).message}`;
      }
    },
  });
  fs.add({ name: "web.compression", kind: "bool", help: "Gzip API responses for clients that accept it." });
  fs.add({
    name: "web.compression.level",
    kind: "int",
    default: 5,
    help: "Accepted for compatibility (the runtime's gzip uses its default level).",
  });
  fs.add({
    name: "web.debug-server",
    kind: "bool",
    help: "Enable /debug/ endpoints (V8 heap statistics and heap snapshot; GET from localhost only).",
  });
  fs.add({
    name: "query.max-period",
    kind: "string",
    default: "1y",
    help: "Maximum time window of a query (0s = unlimited).",
    validate: validDuration,
  });
  fs.add({ name: "web.external-url", kind: "string", default: "", hidden: true, help: "External URL." });
  fs.add({
    name: "web.user-header-name",
    kind: "strings",
    default: ["X-Grafana-User"],
    hidden: true,
    help: "Headers carrying the user name (repeatable; first non-empty wins).",
  });
  fs.add({
    name: "storage.data.skip.delete.old.units",
    kind: "bool",
    hidden: true,
    help: "Do not purge units older than the retention period.",
  });
  fs.add({
    name: "storage.data.backup.keep",
    kind: "int",
    default: 7,
    help: "Number of backups kept in ceems_api_server.data.backup_path; older ones are deleted (0 = keep all).",
    validate: (v) => ((v as number) < 0 ? "must not be negative" : undefined),
  });
  fs.add({
    name: "storage.data.backup.max-age",
    kind: "string",
    default: "0s",
    help: "Backups older than this are deleted (0s = no age limit).",
    validate: validDuration,
  });
  fs.add({ name: "test.disable.checks", kind: "bool", hidden: true, help: "Disable start-up checks (tests)." });
  fs.add({ name: "security.drop-privileges", kind: "bool", default: true, hidden: true, help: "Drop privileges." });
  addSecurityFlags(fs);
  return fs;
}

/** Builds the managers of every configured cluster. */
export function createManagers(
  cfg: ApiConfig,
  security: SecurityManager,
  privileged: boolean,
  logger: Logger,
): ResourceManager[] {
  return cfg.clusters.map((c) => {
    const l = logger.with({ cluster_id: c.id, manager: c.manager });
    switch (c.manager) {
      case "slurm":
        try {
          return new SlurmManager(c, security, privileged ? "privileged" : "plain", l);
        } catch (e) {
          throw new StartupError(`--config.file: clusters ${c.id}: ${(e as Error).message}`);
        }
      case "openstack":
        try {
          return new OpenStackManager(c, cfg.data.timeZone, l);
        } catch (e) {
          throw new StartupError(`--config.file: ${(e as Error).message}`);
        }
      default:
        throw new StartupError(`--config.file: clusters ${c.id}: manager ${c.manager} is not supported yet`);
    }
  });
}

/** Gzips a JSON response body when the client accepts gzip. */
export function gzipResponse(req: Request, r: Response): Response {
  if (!r.body || !/\bgzip\b/.test(req.headers.get("Accept-Encoding") ?? "")) return r;
  if (!(r.headers.get("Content-Type") ?? "").startsWith("application/json")) return r;
  const headers = new Headers(r.headers);
  headers.set("Content-Encoding", "gzip");
  headers.append("Vary", "Accept-Encoding");
  headers.delete("Content-Length");
  return new Response(r.body.pipeThrough(new CompressionStream("gzip")), { status: r.status, headers });
}

/** Entry point of `ceems api`. */
export async function apiMain(argv: string[]): Promise<void> {
  const fs = apiFlags();
  parseFlags(fs, argv, "api");
  const webConfig = await webConfigFromFlags(fs);
  const logger = loggerFromFlags(fs);
  for (const w of fs.warnings) logger.warn(w);
  const maxPerMinute = fs.number("web.max-requests");
  const listeners = listenersFromFlags(fs);
  const configPath = fs.string("config.file");
  // No implicit configuration: CEEMS's defaults would listen on every interface with ./data as the database.
  if (!configPath) {
    throw new StartupError(
      "--config.file: a configuration file is required (a sample: /etc/ceems/ceems_api_server.yml from the " +
        "package, or packaging/config/ceems_api_server.yml)",
    );
  }
  let cfg: ApiConfig;
  try {
    cfg = loadApiConfig(configPath, fs.bool("config.file.expand-env-vars"));
  } catch (e) {
    if (e instanceof ConfigError) throw new StartupError(`--config.file: ${configPath}: ${e.message}`);
    throw e;
  }
  if (configPath && !isAbsolute(cfg.data.path)) cfg.data.path = resolve(cfg.data.path);
  const slurm = cfg.clusters.some((c) => c.manager === "slurm");
  const privileged = slurm && canSwitchUser();
  if (slurm && !privileged) {
    logger.warn("no cap_setuid/cap_setgid: sacct runs as the current user and may only see its own jobs");
  }
  const declared = gatherSecurity(privileged ? [{ contexts: [SLURM_TOOL_CONTEXT] }] : []);
  const rw = [cfg.data.path, ...(cfg.data.backupPath ? [cfg.data.backupPath] : [])];
  for (const p of rw) Deno.mkdirSync(p, { recursive: true });
  // One writer per database, for the life of the process: a second server on this data directory stops here.
  let lock: DbLock;
  try {
    lock = lockDatabase(cfg.data.path);
  } catch (e) {
    if (e instanceof DbLockedError) throw new StartupError(e.message, 1);
    throw new StartupError(`cannot lock the database under ${cfg.data.path}: ${(e as Error).message}`, 1);
  }
  // A zero-length file (a failed restore) is refused rather than silently becoming a new, empty database.
  try {
    refuseEmptyDatabase(join(cfg.data.path, DB_FILE));
  } catch (e) {
    if (e instanceof EmptyDatabaseError) throw new StartupError(e.message, 1);
    throw e;
  }
  // An existing DB (and its WAL files), e.g. created or restored by root, must stay writable after the drop.
  rw.push(...["", "-wal", "-shm"].map((x) => join(cfg.data.path, DB_FILE + x)));
  // SLURM commands are resolved (and checked when run as root) before the drop, as root.
  const deferred = new DeferredSecurityManager();
  const managers = createManagers(cfg, deferred, privileged, logger);
  const security = await setupSecurity({
    component: "api",
    flags: fs,
    logger,
    required: declared.required,
    contexts: declared.contexts,
    // Reader and writer threads load their modules after the drop.
    readPaths: [configPath, fs.string("web.config.file"), ...readWorkerFiles(), ...writerWorkerFiles()].filter((p) =>
      p
    ),
    readWritePaths: rw,
  });

  // Every write (migrations, windows, integrity check, backups) runs on the writer thread.
  let storage: WorkerStorage;
  try {
    storage = await WorkerStorage.open(cfg.data.path, {
      updaters: cfg.updaters,
      log: { level: fs.string("log.level") as Level, format: fs.string("log.format") as LogFormat },
    });
  } catch (e) {
    throw new StartupError(`cannot open database under ${cfg.data.path}: ${(e as Error).message}`, 1);
  }
  deferred.use(security.manager);
  const health = new HealthState();
  const problems = await storage.quickCheck().catch((e) => [(e as Error).message]);
  health.integrity(problems);
  if (problems.length) {
    logger.error("database integrity check failed: serving what it holds, no updates", {
      path: storage.path,
      problems: problems.join("; "),
    });
  } else {
    // Admins are the configuration's from now on, not from the next applied window.
    await storage.replaceConfigAdmins(cfg.adminUsers);
  }
  let updaters: Map<string, TsdbUpdater>;
  try {
    updaters = new Map(cfg.updaters.map((u) => [u.id, new TsdbUpdater(u, logger.with({ updater: u.id }))]));
  } catch (e) {
    throw new StartupError(`--config.file: ${(e as Error).message}`);
  }
  const cycle = new UpdateCycle(cfg, storage, managers, updaters, logger, {
    skipDeleteOldUnits: fs.bool("storage.data.skip.delete.old.units"),
    health,
    chunkPauseMs: 1000,
  });

  const reader = new ReadPool({ dbPath: storage.path, logger });
  const handler = apiHandler({
    reader,
    health: () => health.reason(),
    logger,
    routePrefix: fs.string("web.route-prefix"),
    userHeaders: fs.strings("web.user-header-name"),
    corsOrigin: fs.string("web.cors.origin"),
    maxRequestsPerMinute: maxPerMinute,
    maxQueryPeriodMs: parseDuration(fs.string("query.max-period")),
    adminUsers: cfg.adminUsers,
    serviceClients: cfg.serviceClients,
  });
  const prefix = fs.string("web.route-prefix").replace(/\/+$/, "");
  const compress = fs.bool("web.compression");
  const debug = fs.bool("web.debug-server") ? await loadDebugHandler() : undefined;
  const server = await serve({
    addresses: listeners.addresses,
    fds: listeners.fds,
    webConfig,
    logger,
    handler: (req, info) => {
      const d = debug?.(req, info);
      if (d) return d;
      const r = handler(req, info);
      if (r) return compress ? r.then((resp) => gzipResponse(req, resp)) : r;
      const path = new URL(req.url).pathname;
      if (path === "/" || path === `${prefix}/`) {
        return landingPage("CEEMS API Server", "Compute units, usage, energy and emissions", VERSION, [
          [`${prefix}/api/v1/units`, "Units"],
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
  logger.info("ceems api started", { version: VERSION, clusters: cfg.clusters.map((c) => c.id).join(",") });

  // A database that failed its integrity check is not written to: it is served as it is and /health says why.
  if (!problems.length) cycle.start(cfg.data.updateIntervalMs);
  let backupTimer: ReturnType<typeof setInterval> | undefined;
  if (cfg.data.backupPath) {
    const retention = {
      keep: fs.number("storage.data.backup.keep"),
      maxAgeMs: parseDuration(fs.string("storage.data.backup.max-age")),
    };
    backupTimer = setInterval(() => {
      storage.backup(cfg.data.backupPath, retention).then(
        (p) => logger.info("database backed up", { path: p }),
        (e) => logger.error("backup failed", { err: e }),
      );
    }, cfg.data.backupIntervalMs);
  }

  const sig = await waitForShutdownSignal();
  logger.info("shutting down", { signal: sig });
  if (backupTimer !== undefined) clearInterval(backupTimer);
  // Within CEEMS's 5 s: the catch-up stops between windows (a window being fetched is dropped, one being
  // written commits or rolls back) while in-flight requests finish.
  await Promise.all([server.close(3000), cycle.stop(3000)]);
  await reader.close();
  await storage.close();
  lock.release();
  await security.close();
  logger.info("stopped");
  // Nothing left to wait for: a sacct still running in a privileged thread must not hold the exit.
  Deno.exit(0);
}
