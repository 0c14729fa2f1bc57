// Request pipeline of the two load balancers: cluster id routing, user and admin identification,
// the path allow-list for non-admins, query analysis, ownership checks, then proxying.

import { SERVICE_ACCOUNT } from "../common/ceems_db.ts";
import type { Logger } from "../common/log.ts";
import type { OwnershipChecker } from "./ownership.ts";
import type { ServerPool } from "./pool.ts";
import type { QueryAnalysis } from "./promql_access.ts";
import { QueryAnalyser } from "./query_analyser.ts";
import type { Backend } from "./backend.ts";
import { filterLabels } from "./filter_labels.ts";
import { forward, promError } from "./proxy.ts";
import { BodyError, PYROSCOPE_METHODS, type PyroscopeRequest, pyroscopeSelectors } from "./pyroscope.ts";

/** Header naming the cluster a request is for. */
export const CLUSTER_HEADER = "x-ceems-cluster-id";
/** Header Grafana sets to the logged-in user. */
export const USER_HEADER = "x-grafana-user";

const MAX_FORM_BYTES = 4 << 20;
/** Longest user name taken from the user header (Grafana logins are far shorter; names key caches). */
const MAX_USER_CHARS = 256;

/** Everything a frontend needs. */
export interface FrontendOptions {
  pool: ServerPool;
  /** Who owns what; required: there is no configuration without an ownership check. */
  ownership: OwnershipChecker;
  /** Where queries are analysed (default: one shared analyser for the process). */
  analyser?: QueryAnalyser;
  logger: Logger;
}

const BAD_CLUSTER = "invalid cluster ID. Set cluster ID using X-Ceems-Cluster-Id header in Prometheus datasource.";
const NO_USER = "no user header found. Make sure to set send_user_header = true in [dataproxy] section of Grafana " +
  "configuration file";
const FORBIDDEN_PATH = "user do not have permissions to this resource";
const FORBIDDEN_UNITS = "user do not have permissions to view unit metrics";

/** TSDB paths non-admins may use, with the parameters forwarded for each (anything else is dropped). */
const QUERY_PATHS: Record<string, string[]> = {
  "/api/v1/query": ["time", "timeout", "stats", "limit", "lookback_delta"],
  "/api/v1/query_range": ["start", "end", "step", "timeout", "stats", "limit", "lookback_delta"],
  "/api/v1/query_exemplars": ["start", "end"],
};
const MATCH_PARAMS = ["start", "end", "limit"];
const MATCH_PATHS = new Set(["/api/v1/series", "/api/v1/labels"]);
const LABEL_VALUES = /^\/api\/v1\/label\/([a-zA-Z_][a-zA-Z0-9_]*)\/values$/;
/** Parameters Prometheus reads with FormValue (first value wins): refused when repeated. */
const SINGLE_PARAMS = new Set(["query", "time", "start", "end", "step", "timeout", "limit", "stats", "lookback_delta"]);
/** What a forwarded time, duration, limit or stats value may look like (RFC 3339, floats, durations, words). */
const PARAM_VALUE = /^[0-9A-Za-z.:+_-]{1,64}$/;

/** A request body over {@link MAX_FORM_BYTES}: answered 413 before more of it is read. */
class BodyTooLarge extends BodyError {}

/** Reads a request body, stopping (without buffering the rest) once it passes {@link MAX_FORM_BYTES}. */
async function readLimited(req: Request): Promise<Uint8Array> {
  const declared = Number(req.headers.get("content-length") ?? NaN);
  if (declared > MAX_FORM_BYTES) throw new BodyTooLarge(`request body over ${MAX_FORM_BYTES} bytes`);
  if (!req.body) return new Uint8Array();
  const chunks: Uint8Array[] = [];
  let size = 0;
  const reader = req.body.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.length;
    if (size > MAX_FORM_BYTES) {
      await reader.cancel().catch(() => {});
      throw new BodyTooLarge(`request body over ${MAX_FORM_BYTES} bytes`);
    }
    chunks.push(value);
  }
  const out = new Uint8Array(size);
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}

/** The 400 (or 413) answer to a malformed or oversized body. */
function bodyError(e: BodyError): Response {
  return promError(e instanceof BodyTooLarge ? 413 : 400, "bad_data", e.message);
}

/** Time (ms) a Prometheus time parameter names, when it parses. */
function paramTimeMs(v: string | null): number | undefined {
  if (!v) return undefined;
  const n = Number(v);
  if (Number.isFinite(n)) return n * 1000;
  const d = Date.parse(v);
  return Number.isNaN(d) ? undefined : d;
}

let sharedAnalyser: QueryAnalyser | undefined;
const analyserOf = (opts: FrontendOptions) => opts.analyser ?? (sharedAnalyser ??= new QueryAnalyser());

/** Common first steps: cluster id, /health, user and admin. Returns a response to send, or the state. */
async function identify(
  req: Request,
  opts: FrontendOptions,
  healthText: string,
): Promise<Response | { clusterId: string; user?: string; admin: boolean; path: string }> {
  const url = new URL(req.url);
  const clusterId = req.headers.get(CLUSTER_HEADER) ?? "";
  if (!opts.pool.has(clusterId)) return promError(400, "bad_request", BAD_CLUSTER);
  if (url.pathname === "/health") return new Response(healthText, { headers: { "content-type": "text/plain" } });
  const user = req.headers.get(USER_HEADER)?.trim() ?? "";
  if (!user) return promError(401, "unauthorized", NO_USER);
  if (user.length > MAX_USER_CHARS) {
    return promError(400, "bad_data", `user name longer than ${MAX_USER_CHARS} characters`);
  }
  // Only the API server's own authenticated clients may act as its service account; a login of that name may not.
  if (user === SERVICE_ACCOUNT) return promError(403, "forbidden", `${SERVICE_ACCOUNT} is reserved for the API server`);
  let admin: boolean;
  try {
    admin = await opts.ownership.isAdmin(user);
  } catch (e) {
    opts.logger.error("admin look-up failed", { user, err: e });
    return promError(503, "unavailable", "failed to check user privileges");
  }
  return { clusterId, user, admin, path: url.pathname };
}

/** The filter_labels rewrite of TSDB answers for `path`. */
function tsdbRewrite(path: string) {
  return (b: Backend, resp: Response) =>
    b.config.filterLabels.length ? filterLabels(path, resp, b.config.filterLabels) : Promise.resolve(resp);
}

async function passThrough(
  req: Request,
  opts: FrontendOptions,
  clusterId: string,
  rewrite?: (b: Backend, r: Response) => Promise<Response>,
): Promise<Response> {
  const url = new URL(req.url);
  let body: Uint8Array | undefined;
  try {
    body = req.method === "GET" || req.method === "HEAD" ? undefined : await readLimited(req);
  } catch (e) {
    if (e instanceof BodyError) return bodyError(e);
    throw e;
  }
  return forward(opts.pool, clusterId, {
    method: req.method,
    pathAndQuery: url.pathname + url.search,
    body,
    clientHeaders: req.headers,
    signal: req.signal,
    rewrite,
  });
}

/**
 * Checks the analysed units against the user's; returns a refusal, or the cluster to query (a
 * `ceems_id` matcher in the query overrides the header, as in CEEMS).
 */
async function checkUnits(
  opts: FrontendOptions,
  user: string,
  clusterId: string,
  analysis: QueryAnalysis,
): Promise<Response | string> {
  if (!analysis.ok) {
    return analysis.status === 400
      ? promError(400, "bad_data", `invalid query: ${analysis.reason}`)
      : promError(403, "forbidden", `${FORBIDDEN_UNITS}: ${analysis.reason}`);
  }
  if (analysis.clusterIds) {
    if (analysis.clusterIds.length > 1) {
      return promError(403, "forbidden", `${FORBIDDEN_UNITS}: query names several clusters with ceems_id`);
    }
    clusterId = analysis.clusterIds[0];
    if (!opts.pool.has(clusterId)) return promError(400, "bad_request", BAD_CLUSTER);
  }
  if (analysis.units.length === 0) return clusterId; // no selector at all: no unit data can be read
  let owned: boolean;
  try {
    owned = await opts.ownership.owns(user, clusterId, analysis.units);
  } catch (e) {
    opts.logger.error("ownership look-up failed", { user, err: e });
    return promError(503, "unavailable", "failed to verify unit ownership");
  }
  return owned ? clusterId : promError(403, "forbidden", FORBIDDEN_UNITS);
}

/** The handler of the TSDB (Prometheus) load balancer. */
export function tsdbHandler(opts: FrontendOptions): (req: Request) => Promise<Response> {
  return async (req) => {
    const who = await identify(req, opts, "CEEMS LB Server is healthy");
    if (who instanceof Response) return who;
    if (who.admin) return passThrough(req, opts, who.clusterId, tsdbRewrite(who.path));
    const path = who.path;
    const labelValues = LABEL_VALUES.exec(path);
    const isQuery = path in QUERY_PATHS;
    if (!isQuery && !MATCH_PATHS.has(path) && !labelValues) {
      return promError(403, "forbidden", FORBIDDEN_PATH);
    }
    if (req.method !== "GET" && req.method !== "POST") {
      return promError(405, "bad_data", `method ${req.method} not allowed`);
    }
    const params = new URLSearchParams(new URL(req.url).search);
    if (req.method === "POST") {
      const ct = (req.headers.get("content-type") ?? "").split(";")[0].trim().toLowerCase();
      let body: Uint8Array;
      try {
        body = await readLimited(req);
      } catch (e) {
        if (e instanceof BodyError) return bodyError(e);
        throw e;
      }
      if (body.length && ct !== "application/x-www-form-urlencoded") {
        return promError(400, "bad_data", "POST bodies must be application/x-www-form-urlencoded");
      }
      for (const [k, v] of new URLSearchParams(new TextDecoder().decode(body))) params.append(k, v);
    }
    for (const k of new Set(params.keys())) {
      if (SINGLE_PARAMS.has(k) && params.getAll(k).length > 1) {
        return promError(400, "bad_data", `parameter ${k} given more than once`);
      }
    }
    let analysis: QueryAnalysis;
    if (isQuery) {
      const q = params.get("query");
      if (q === null) return promError(400, "bad_data", "missing query parameter");
      analysis = await analyserOf(opts).analyse([q], "uuid");
    } else {
      const exprs = params.getAll("match[]");
      if (exprs.length === 0) return promError(403, "forbidden", `${FORBIDDEN_UNITS}: match[] is required`);
      analysis = await analyserOf(opts).analyse(exprs, "uuid", "selector");
    }
    const cluster = await checkUnits(opts, who.user!, who.clusterId, analysis);
    if (cluster instanceof Response) return cluster;
    // Forward only what was checked: the queries printed from their trees and the known parameters.
    const forwarded = new URLSearchParams();
    for (const p of (analysis as { printed: string[] }).printed) forwarded.append(isQuery ? "query" : "match[]", p);
    for (const k of isQuery ? QUERY_PATHS[path] : MATCH_PARAMS) {
      const v = params.get(k);
      if (v === null) continue;
      if (!PARAM_VALUE.test(v)) return promError(400, "bad_data", `invalid value for parameter ${k}`);
      forwarded.set(k, v);
    }
    const canonical = forwarded.toString();
    const startMs = paramTimeMs(params.get("start") ?? params.get("time"));
    return forward(opts.pool, cluster, {
      method: req.method,
      pathAndQuery: req.method === "GET" ? `${path}?${canonical}` : path,
      body: req.method === "POST" ? canonical : undefined,
      clientHeaders: req.method === "POST"
        ? new Headers({ ...Object.fromEntries(req.headers), "content-type": "application/x-www-form-urlencoded" })
        : req.headers,
      signal: req.signal,
      pick: { queryStartMs: startMs },
      rewrite: tsdbRewrite(path),
    });
  };
}

/** The handler of the Pyroscope load balancer. */
export function pyroscopeHandler(opts: FrontendOptions): (req: Request) => Promise<Response> {
  return async (req) => {
    const who = await identify(req, opts, "CEEMS LB Server is healthy");
    if (who instanceof Response) return who;
    if (who.admin) return passThrough(req, opts, who.clusterId);
    if (!PYROSCOPE_METHODS[who.path]) return promError(403, "forbidden", FORBIDDEN_PATH);
    if (req.method !== "POST") return promError(405, "bad_data", `method ${req.method} not allowed`);
    const enc = (req.headers.get("content-encoding") ?? req.headers.get("connect-content-encoding") ?? "identity")
      .toLowerCase();
    if (enc !== "identity") return promError(415, "bad_data", `content encoding ${enc} is not supported`);
    let parsed: PyroscopeRequest;
    try {
      parsed = pyroscopeSelectors(who.path, req.headers.get("content-type") ?? "", await readLimited(req));
    } catch (e) {
      if (e instanceof BodyError) return bodyError(e);
      throw e;
    }
    if (parsed.selectors.length === 0) {
      return promError(403, "forbidden", `${FORBIDDEN_UNITS}: a service_name label selector is required`);
    }
    const analysis = await analyserOf(opts).analyse(parsed.selectors, "service_name", "selector");
    const cluster = await checkUnits(opts, who.user!, who.clusterId, analysis);
    if (cluster instanceof Response) return cluster;
    return forward(opts.pool, cluster, {
      method: "POST",
      pathAndQuery: who.path,
      body: parsed.rebuild((analysis as { printed: string[] }).printed),
      clientHeaders: req.headers,
      signal: req.signal,
    });
  };
}
