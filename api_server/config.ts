// CEEMS API server configuration: parses the `ceems_api_server:`, `clusters:` and `updaters:` YAML
// sections as CEEMS writes them, with optional ${VAR} expansion, and validates them with one clear error.

import YAML from "yaml";
import { parseDuration } from "../common/flags.ts";

/** Settings of the `ceems_api_server.data` section. */
export interface DataConfig {
  path: string;
  backupPath: string;
  /** Milliseconds; 0 disables periodic backups. */
  backupIntervalMs: number;
  retentionPeriodMs: number;
  updateIntervalMs: number;
  maxUpdateIntervalMs: number;
  /** Epoch ms from which the first update starts when the DB is empty. */
  updateFromMs: number;
  timeZone: string;
}

/** One `clusters:` entry. */
export interface ClusterConfig {
  id: string;
  manager: "slurm" | "openstack" | "k8s" | "default";
  updaters: string[];
  cli: { path: string; environmentVariables: Record<string, string> };
  web: Record<string, unknown>;
  extraConfig: Record<string, unknown>;
}

/** One `updaters:` entry. */
export interface UpdaterConfig {
  id: string;
  updater: "tsdb";
  url: string;
  web: Record<string, unknown>;
  extraConfig: {
    queryMaxSeries: number;
    queryMinSamples: number;
    /** Units per query (older CEEMS's `query_batch_size`); 0 = sized from query_max_series/min_samples. */
    queryBatchSize: number;
    cutoffMs: number;
    deleteIgnored: boolean;
    labelsToDrop: string[];
    queries: Record<string, Record<string, string>>;
  };
}

/** The whole API server configuration. */
export interface ApiConfig {
  data: DataConfig;
  adminUsers: string[];
  /**
   * Basic-auth users of the web config whose requests may act as the internal service account
   * (`ceems_api_server.admin.service_clients`; e.g. a CEEMS load balancer that asks as `ceems-int-svc`).
   */
  serviceClients: string[];
  /** Grafana whose team members are admins too (`ceems_api_server.admin.grafana`). */
  grafana?: { url: string; teamIds: string[]; web: Record<string, unknown> };
  clusters: ClusterConfig[];
  updaters: UpdaterConfig[];
}

/** A configuration problem, naming the offending key. */
export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ConfigError";
  }
}

/** Expands `$VAR` and `${VAR}` as Go's os.ExpandEnv does; `$$` yields `$`. */
export function expandEnv(text: string, env: Record<string, string | undefined>): string {
  if (text.includes("[[{$}]]")) throw new ConfigError("config contains the reserved sequence [[{$}]]");
  return text.replace(/\$(\$|\{([^}]*)\}|([A-Za-z_][A-Za-z0-9_]*))/g, (_m, all, braced, bare) => {
    if (all === "$") return "$";
    return env[braced ?? bare] ?? "";
  });
}

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

function obj(v: unknown, where: string): Record<string, unknown> {
  if (v === undefined || v === null) return {};
  if (!isObj(v)) throw new ConfigError(`${where}: must be a mapping`);
  return v;
}

function str(v: unknown, where: string, def = ""): string {
  if (v === undefined || v === null) return def;
  if (typeof v !== "string" && typeof v !== "number") throw new ConfigError(`${where}: must be a string`);
  return String(v);
}

function dur(v: unknown, where: string, def: string): number {
  const s = str(v, where, def);
  try {
    return parseDuration(s);
  } catch {
    throw new ConfigError(`${where}: invalid duration "${s}"`);
  }
}

function strList(v: unknown, where: string): string[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) throw new ConfigError(`${where}: must be a list`);
  return v.map((x, i) => str(x, `${where}[${i}]`));
}

/** Parses `update_from` ("today", YYYY-MM-DD, YYYY-MM-DDTHH:MM[:SS][Z]) into epoch ms. */
export function parseUpdateFrom(s: string, now = new Date()): number {
  if (s === "" || s === "today") {
    const d = new Date(now);
    d.setHours(0, 0, 0, 0);
    return d.getTime();
  }
  const m = /^(\d{4}-\d{2}-\d{2})(?:T(\d{2}:\d{2})(:\d{2})?(Z|[+-]\d{2}:?\d{2})?)?$/.exec(s);
  if (!m) throw new ConfigError(`ceems_api_server.data.update_from: invalid time "${s}"`);
  const t = Date.parse(`${m[1]}T${m[2] ?? "00:00"}${m[3] ?? ":00"}${m[4] ?? ""}`);
  if (Number.isNaN(t)) throw new ConfigError(`ceems_api_server.data.update_from: invalid time "${s}"`);
  return t;
}

const clusterIdRe = /^[a-zA-Z0-9_-]+$/;

/** Parses and validates configuration text; `baseDir` resolves a relative data path. */
export function parseApiConfig(text: string, opts: { expandEnv?: boolean; env?: Record<string, string> } = {}) {
  if (opts.expandEnv) text = expandEnv(text, opts.env ?? Deno.env.toObject());
  let doc: unknown;
  try {
    doc = YAML.parse(text) ?? {};
  } catch (e) {
    throw new ConfigError(`invalid YAML: ${(e as Error).message.split("\n")[0]}`);
  }
  const root = obj(doc, "config");
  const server = obj(root.ceems_api_server, "ceems_api_server");
  const data = obj(server.data, "ceems_api_server.data");
  const p = "ceems_api_server.data";
  const cfg: ApiConfig = {
    data: {
      path: str(data.path, `${p}.path`, "data") || "data",
      backupPath: str(data.backup_path, `${p}.backup_path`),
      backupIntervalMs: dur(data.backup_interval, `${p}.backup_interval`, "1d"),
      retentionPeriodMs: dur(data.retention_period, `${p}.retention_period`, "30d"),
      updateIntervalMs: dur(data.update_interval, `${p}.update_interval`, "15m"),
      maxUpdateIntervalMs: dur(data.max_update_interval, `${p}.max_update_interval`, "1h"),
      updateFromMs: parseUpdateFrom(str(data.update_from, `${p}.update_from`, "today")),
      timeZone: str(data.time_zone, `${p}.time_zone`, "Local") || "Local",
    },
    adminUsers: strList(obj(server.admin, "ceems_api_server.admin").users, "ceems_api_server.admin.users"),
    serviceClients: strList(
      obj(server.admin, "ceems_api_server.admin").service_clients,
      "ceems_api_server.admin.service_clients",
    ),
    clusters: [],
    updaters: [],
  };
  const graf = obj(obj(server.admin, "ceems_api_server.admin").grafana, "ceems_api_server.admin.grafana");
  const grafUrl = str(graf.url, "ceems_api_server.admin.grafana.url");
  if (grafUrl) {
    if (!URL.canParse(grafUrl)) throw new ConfigError(`ceems_api_server.admin.grafana.url: invalid URL "${grafUrl}"`);
    cfg.grafana = {
      url: grafUrl.replace(/\/$/, ""),
      teamIds: strList(graf.teams_ids, "ceems_api_server.admin.grafana.teams_ids"),
      web: graf,
    };
  }
  if (cfg.data.updateIntervalMs <= 0) throw new ConfigError(`${p}.update_interval: must be greater than 0`);
  if (cfg.data.maxUpdateIntervalMs <= 0) throw new ConfigError(`${p}.max_update_interval: must be greater than 0`);
  if (cfg.data.retentionPeriodMs <= 0) throw new ConfigError(`${p}.retention_period: must be greater than 0`);
  if (cfg.data.backupPath && cfg.data.backupIntervalMs < 86_400_000) {
    throw new ConfigError(`${p}.backup_interval: must be at least 1d`);
  }
  if (cfg.data.timeZone !== "Local") {
    try {
      new Intl.DateTimeFormat("en-US", { timeZone: cfg.data.timeZone });
    } catch {
      throw new ConfigError(`${p}.time_zone: unknown time zone "${cfg.data.timeZone}"`);
    }
  }

  const updaterIds = new Set<string>();
  const ups = root.updaters ?? [];
  if (!Array.isArray(ups)) throw new ConfigError("updaters: must be a list");
  ups.forEach((u, i) => {
    const w = `updaters[${i}]`;
    const o = obj(u, w);
    const id = str(o.id, `${w}.id`);
    if (!id) throw new ConfigError(`${w}.id: missing`);
    if (updaterIds.has(id)) throw new ConfigError(`${w}.id: duplicate updater id "${id}"`);
    updaterIds.add(id);
    const kind = str(o.updater, `${w}.updater`);
    if (kind !== "tsdb") throw new ConfigError(`${w}.updater: unknown updater "${kind}" (want tsdb)`);
    const web = obj(o.web, `${w}.web`);
    const url = str(web.url, `${w}.web.url`);
    if (!url || !URL.canParse(url)) throw new ConfigError(`${w}.web.url: invalid URL "${url}"`);
    const ex = obj(o.extra_config, `${w}.extra_config`);
    const queries: Record<string, Record<string, string>> = {};
    for (const [metric, subs] of Object.entries(obj(ex.queries, `${w}.extra_config.queries`))) {
      queries[metric] = {};
      for (const [sub, q] of Object.entries(obj(subs, `${w}.extra_config.queries.${metric}`))) {
        queries[metric][sub] = str(q, `${w}.extra_config.queries.${metric}.${sub}`);
      }
    }
    const batch = ex.query_batch_size ?? 0;
    if (typeof batch !== "number" || !Number.isInteger(batch) || batch < 0) {
      throw new ConfigError(`${w}.extra_config.query_batch_size: must be a non-negative integer, got ${batch}`);
    }
    cfg.updaters.push({
      id,
      updater: "tsdb",
      url,
      web,
      extraConfig: {
        queryMaxSeries: Number(ex.query_max_series ?? 50),
        queryMinSamples: Number(ex.query_min_samples ?? 0.5),
        queryBatchSize: batch,
        cutoffMs: dur(ex.cutoff_duration, `${w}.extra_config.cutoff_duration`, "0s"),
        deleteIgnored: ex.delete_ignored === true,
        labelsToDrop: strList(ex.labels_to_drop, `${w}.extra_config.labels_to_drop`),
        queries,
      },
    });
  });

  const clusterIds = new Set<string>();
  const cls = root.clusters ?? [];
  if (!Array.isArray(cls)) throw new ConfigError("clusters: must be a list");
  cls.forEach((c, i) => {
    const w = `clusters[${i}]`;
    const o = obj(c, w);
    const id = str(o.id, `${w}.id`);
    if (!clusterIdRe.test(id)) throw new ConfigError(`${w}.id: invalid cluster id "${id}" (allowed: a-z A-Z 0-9 - _)`);
    if (clusterIds.has(id)) throw new ConfigError(`${w}.id: duplicate cluster id "${id}"`);
    clusterIds.add(id);
    const manager = str(o.manager, `${w}.manager`);
    if (!["slurm", "openstack", "k8s"].includes(manager)) {
      throw new ConfigError(`${w}.manager: unknown resource manager "${manager}" (want slurm, openstack or k8s)`);
    }
    const updaters = strList(o.updaters, `${w}.updaters`);
    for (const u of updaters) {
      if (!updaterIds.has(u)) throw new ConfigError(`${w}.updaters: unknown updater id "${u}"`);
    }
    const cli = obj(o.cli, `${w}.cli`);
    const env: Record<string, string> = {};
    for (const [k, v] of Object.entries(obj(cli.environment_variables, `${w}.cli.environment_variables`))) {
      env[k] = str(v, `${w}.cli.environment_variables.${k}`);
    }
    cfg.clusters.push({
      id,
      manager: manager as ClusterConfig["manager"],
      updaters,
      cli: { path: str(cli.path, `${w}.cli.path`), environmentVariables: env },
      web: obj(o.web, `${w}.web`),
      extraConfig: obj(o.extra_config, `${w}.extra_config`),
    });
  });
  return cfg;
}

/** Reads and parses a configuration file; an empty path yields the defaults. */
export function loadApiConfig(path: string, expand: boolean): ApiConfig {
  if (!path) return parseApiConfig("");
  let text: string;
  try {
    text = Deno.readTextFileSync(path);
  } catch (e) {
    throw new ConfigError(`cannot read ${path}: ${(e as Error).message}`);
  }
  return parseApiConfig(text, { expandEnv: expand });
}
