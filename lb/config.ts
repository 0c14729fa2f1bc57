// The load balancer's YAML configuration (CEEMS's `ceems_lb:` / `ceems_api_server:` / `clusters:`
// layout): parsing, optional environment expansion and validation with errors naming the bad key.

import { parse as parseYaml } from "yaml";
import { type HttpClientConfig, validateHttpClientConfig } from "./http_client.ts";

/** Backend selection strategies. */
export const STRATEGIES = ["round-robin", "least-connection", "resource-based"] as const;
export type Strategy = typeof STRATEGIES[number];

/** One backend server (a Prometheus or a Pyroscope). */
export interface ServerConfig {
  url: string;
  client: HttpClientConfig;
  filterLabels: string[];
}

/** The servers of one cluster id. */
export interface BackendGroup {
  id: string;
  tsdb: ServerConfig[];
  pyroscope: ServerConfig[];
}

/** The validated configuration. */
export interface LbConfig {
  strategy: Strategy;
  backends: BackendGroup[];
  /** Where ownership is checked: the API server's data directory and/or its URL. */
  api: { dataPath: string; url: string; client: HttpClientConfig };
  /** Path of the file the config came from (relative file names resolve against its directory). */
  file: string;
}

/** Expands `$VAR` and `${VAR}` like Go's os.ExpandEnv; `$$` gives a literal `$`. */
export function expandEnv(text: string, env: Record<string, string | undefined>): string {
  if (text.includes("[[{$}]]")) throw new Error("literal [[{$}]] is not allowed in config file");
  return text.replaceAll("$$", "[[{$}]]")
    .replace(/\$\{([^}]*)\}|\$([A-Za-z0-9_]+)/g, (_m, a, b) => env[a ?? b] ?? "")
    .replaceAll("[[{$}]]", "$");
}

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === "object" && v !== null && !Array.isArray(v);

function serverConfig(raw: unknown, where: string): ServerConfig {
  if (!isObj(raw)) throw new Error(`${where}: must be a mapping with a web.url`);
  const web = raw.web;
  if (!isObj(web) || typeof web.url !== "string" || web.url === "") throw new Error(`${where}.web.url: missing`);
  let u: URL;
  try {
    u = new URL(web.url);
  } catch {
    throw new Error(`${where}.web.url: invalid URL "${web.url}"`);
  }
  if (u.protocol !== "http:" && u.protocol !== "https:") {
    throw new Error(`${where}.web.url: scheme must be http or https`);
  }
  const { url: _url, ...client } = web;
  validateHttpClientConfig(client, `${where}.web`);
  const fl = raw.filter_labels ?? [];
  if (!Array.isArray(fl) || fl.some((l) => typeof l !== "string")) {
    throw new Error(`${where}.filter_labels: must be a list of label names`);
  }
  return { url: web.url.replace(/\/+$/, ""), client: client as HttpClientConfig, filterLabels: fl as string[] };
}

/** Parses and validates config text; throws an Error naming the offending key. */
export function parseLbConfig(text: string, file = ""): LbConfig {
  const doc = parseYaml(text) ?? {};
  if (!isObj(doc)) throw new Error("config must be a YAML mapping");
  const lb = doc.ceems_lb ?? {};
  if (!isObj(lb)) throw new Error("ceems_lb: must be a mapping");
  const strategy = (lb.strategy ?? "round-robin") as Strategy;
  if (!STRATEGIES.includes(strategy)) {
    throw new Error(`ceems_lb.strategy: unknown strategy "${strategy}" (want ${STRATEGIES.join(", ")})`);
  }
  const rawBackends = lb.backends ?? [];
  if (!Array.isArray(rawBackends) || rawBackends.length === 0) {
    throw new Error("ceems_lb.backends: at least one backend is required");
  }
  const clusterIds = Array.isArray(doc.clusters)
    ? doc.clusters.filter(isObj).map((c) => c.id).filter((id) => typeof id === "string" && id !== "")
    : [];
  const seen = new Set<string>();
  const backends = rawBackends.map((b, i): BackendGroup => {
    const where = `ceems_lb.backends[${i}]`;
    if (!isObj(b)) throw new Error(`${where}: must be a mapping`);
    if (typeof b.id !== "string" || b.id === "") throw new Error(`${where}.id: missing ID for backend`);
    if (seen.has(b.id)) throw new Error(`${where}.id: duplicate backend ID "${b.id}"`);
    seen.add(b.id);
    if (clusterIds.length && !clusterIds.includes(b.id)) {
      throw new Error(`${where}.id: unknown ID ${b.id}; IDs in ceems_lb.backends and clusters must match`);
    }
    const list = (key: string) => {
      const v = b[key] ?? [];
      if (!Array.isArray(v)) throw new Error(`${where}.${key}: must be a list`);
      return v.map((s, j) => serverConfig(s, `${where}.${key}[${j}]`));
    };
    const group = { id: b.id, tsdb: list("tsdb"), pyroscope: list("pyroscope") };
    if (group.tsdb.length === 0 && group.pyroscope.length === 0) {
      throw new Error(`${where}: missing TSDB and Pyroscope URL(s) for backend ${b.id}`);
    }
    return group;
  });
  return { strategy, backends, api: parseOwnershipSource(doc.ceems_api_server), file };
}

/**
 * The `ceems_api_server` section: where unit ownership is checked. Fails closed: a missing or empty
 * section, an empty `data.path` and `web.url` (e.g. expanded from an unset variable), or a value of the
 * wrong type is an error naming the key, since without it every user would read every series.
 */
function parseOwnershipSource(raw: unknown): LbConfig["api"] {
  const where = "ceems_api_server";
  if (raw === undefined || raw === null) {
    throw new Error(
      `${where}: missing: the load balancer needs the API server's data.path or web.url to check ownership`,
    );
  }
  if (!isObj(raw)) throw new Error(`${where}: must be a mapping`);
  for (const key of ["data", "web"]) {
    if (raw[key] !== undefined && raw[key] !== null && !isObj(raw[key])) {
      throw new Error(`${where}.${key}: must be a mapping`);
    }
  }
  const data = isObj(raw.data) ? raw.data : {};
  const web = isObj(raw.web) ? raw.web : {};
  const text = (v: unknown, key: string): string => {
    if (v === undefined || v === null) return "";
    if (typeof v !== "string") throw new Error(`${where}.${key}: must be a string`);
    return v.trim();
  };
  const dataPath = text(data.path, "data.path");
  const url = text(web.url, "web.url").replace(/\/+$/, "");
  if (!dataPath && !url) {
    const empty = "data" in raw ? "data.path" : "web" in raw ? "web.url" : "data.path";
    throw new Error(
      `${where}.${empty}: empty: set data.path (the API server's data directory) or web.url (its address); ` +
        "the load balancer does not run without an ownership check",
    );
  }
  if (url) {
    let u: URL;
    try {
      u = new URL(url);
    } catch {
      throw new Error(`${where}.web.url: invalid URL "${url}"`);
    }
    if (u.protocol !== "http:" && u.protocol !== "https:") {
      throw new Error(`${where}.web.url: scheme must be http or https`);
    }
  }
  const { url: _u, ...client } = web;
  validateHttpClientConfig(client, `${where}.web`);
  return { dataPath, url, client: client as HttpClientConfig };
}

/** Reads `path` (optionally expanding environment variables) and parses it. */
export function loadLbConfig(path: string, expand = false, env: Record<string, string | undefined> = {}): LbConfig {
  let text = Deno.readTextFileSync(path);
  if (expand) text = expandEnv(text, env);
  return parseLbConfig(text, path);
}
