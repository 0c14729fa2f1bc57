// HTTP API of the API server under <prefix>/api/v1, on the event loop: user identification from the configured
// headers, CORS, rate limiting, the /usage/current cache and /health; every read runs on an ApiReader.

import { SERVICE_ACCOUNT } from "../../common/ceems_db.ts";
import type { Logger } from "../../common/log.ts";
import type { RequestInfo } from "../../common/web/server.ts";
import { formatTime } from "../models.ts";
import type { ReadQueries } from "../storage/read_queries.ts";
import { clientIp, corsHeaders, RateLimiter } from "./cors.ts";
import { encodeError, encodeSuccess } from "./json.ts";
import { BadRequest } from "./params.ts";
import { type ApiReader, InlineReader, type ReadReply } from "./reader.ts";
import { type ReadRequest, usageScopeUsers, usageWindow } from "./routes.ts";
import { UsageCache, usageCacheKey } from "./usage_cache.ts";

/** Options of the API handler. */
export interface ApiOptions {
  /** Where reads run (a pool of reader threads in the server). */
  reader?: ApiReader;
  /** Without `reader`: reads run on this thread from this store's read connection. */
  storage?: { reads: ReadQueries };
  logger: Logger;
  routePrefix: string;
  userHeaders: string[];
  corsOrigin: string;
  maxRequestsPerMinute: number;
  maxQueryPeriodMs: number;
  /** Admins from the configuration (in addition to the admin_users table). */
  adminUsers: string[];
  /** Basic-auth users whose requests may name the internal service account (see {@link SERVICE_ACCOUNT}). */
  serviceClients: string[];
  /** Why the server is unhealthy besides an unanswering database (integrity, failing updates), if it is. */
  health?: () => string | undefined;
}

const JSON_HEADERS = { "Content-Type": "application/json", "X-Content-Type-Options": "nosniff" };
/** Usage answers larger than this are not cached. */
const MAX_CACHED_BODY = 1 << 20;
const EMPTY_SUCCESS = encodeSuccess([]);

function err(status: number, type: string, msg: string): Response {
  return new Response(encodeError(type, msg), { status, headers: JSON_HEADERS });
}

/** Builds the API handler. Returns undefined for paths it does not serve. */
export function apiHandler(o: ApiOptions) {
  const prefix = o.routePrefix.replace(/\/+$/, "");
  const apiBase = `${prefix}/api/v1`;
  const limiter = new RateLimiter(o.maxRequestsPerMinute);
  const configAdmins = new Set(o.adminUsers.filter((u) => u !== SERVICE_ACCOUNT));
  const serviceClients = new Set(o.serviceClients);
  const usageCache = new UsageCache<string>();
  const reader = o.reader ?? new InlineReader(o.storage!.reads);

  /** The service account is a name anyone can put in a header: it counts only for authenticated service clients. */
  const isServiceClient = (authUser: string | undefined) => authUser !== undefined && serviceClients.has(authUser);

  const toResponse = (r: ReadReply, path: string): Response => {
    if (r.error) o.logger.error("API request failed", { path, err: r.error });
    return new Response(r.body, { status: r.status, headers: JSON_HEADERS });
  };

  async function health(): Promise<Response> {
    const reason = o.health?.() ?? (await reader.ping() ? undefined : "database does not answer");
    return new Response(reason ? `KO: ${reason}` : "CEEMS API Server is healthy", {
      status: reason ? 503 : 200,
      headers: { "X-Content-Type-Options": "nosniff" },
    });
  }

  /** Answers a read, from the usage cache when it holds the answer. */
  async function read(r: ReadRequest, q: URLSearchParams): Promise<Response> {
    const lane = r.path.endsWith("admin") ? "admin" : "user";
    if (r.path !== "/usage/current" && r.path !== "/usage/current/admin") {
      return toResponse(await reader.read(r, lane), r.path);
    }
    // As CEEMS: bounds rounded down to 15 minutes and results cached 15 minutes per (rounded) request. A cached
    // admin answer is served here only to those known as admins without asking the database.
    const key = usageCacheKey(
      r.path,
      q,
      usageWindow(q, r.maxQueryPeriodMs, r.nowMs),
      usageScopeUsers(r.path, q, r.user),
    );
    const hit = lane === "user" || r.configAdmin ? usageCache.get(key) : undefined;
    if (hit) {
      return new Response(hit.rows, { headers: { ...JSON_HEADERS, Expires: new Date(hit.expiresAt).toUTCString() } });
    }
    const reply = await reader.read(r, lane);
    if (
      reply.status === 200 && typeof reply.body === "string" && reply.body !== EMPTY_SUCCESS &&
      reply.body.length <= MAX_CACHED_BODY
    ) usageCache.set(key, reply.body);
    return toResponse(reply, r.path);
  }

  return (req: Request, info: RequestInfo): Promise<Response> | undefined => {
    const url = new URL(req.url);
    const path = url.pathname;
    if (path === "/health" || path === `${prefix}/health`) return health();
    if (!path.startsWith(apiBase + "/")) return undefined;
    const cors = corsHeaders(req.headers.get("Origin"), o.corsOrigin, o.userHeaders);
    const finish = (r: Response) => {
      cors?.forEach((v, k) => r.headers.set(k, v));
      return r;
    };
    if (req.method === "OPTIONS") {
      return Promise.resolve(finish(new Response(null, { status: 200, headers: { "Content-Length": "0" } })));
    }
    if (req.method !== "GET") return Promise.resolve(finish(new Response("Method Not Allowed\n", { status: 405 })));
    if (!limiter.allow(clientIp(req, info.remoteAddr))) {
      return Promise.resolve(finish(new Response("Too Many Requests\n", { status: 429 })));
    }
    const sub = path.slice(apiBase.length);
    if (sub.startsWith("/demo/")) return Promise.resolve(finish(demo(sub)));
    let user = "";
    for (const h of o.userHeaders) {
      const v = req.headers.get(h)?.trim();
      if (v) {
        user = v;
        break;
      }
    }
    if (!user) return Promise.resolve(finish(err(401, "unauthorized", "no user identified")));
    if (user === SERVICE_ACCOUNT && !isServiceClient(info.authUser)) {
      return Promise.resolve(
        finish(err(403, "forbidden", `${SERVICE_ACCOUNT} is reserved for authenticated service clients`)),
      );
    }
    const r: ReadRequest = {
      path: sub,
      search: url.search,
      user,
      configAdmin: user === SERVICE_ACCOUNT || configAdmins.has(user),
      maxQueryPeriodMs: o.maxQueryPeriodMs,
      nowMs: Date.now(),
    };
    return read(r, url.searchParams).then(finish, (e) => {
      if (e instanceof BadRequest) return finish(err(400, "bad_data", e.message));
      o.logger.error("API request failed", { path, err: e });
      return finish(err(500, "internal", "internal server error"));
    });
  };
}

/** Random mock data for /demo/{units,usage}, as CEEMS serves for dashboards. */
function demo(sub: string): Response {
  const rnd = (n: number) => Math.floor(Math.random() * n);
  const now = Date.now();
  const ok = (rows: Record<string, unknown>[]) => new Response(encodeSuccess(rows), { headers: JSON_HEADERS });
  if (sub === "/demo/units") {
    return ok(Array.from({ length: 10 }, (_, i) => {
      const start = now - rnd(86_400_000);
      return {
        cluster_id: "demo",
        resource_manager: "slurm",
        uuid: String(100000 + rnd(900000) + i),
        name: `demo_job_${i}`,
        project: `demo-project-${rnd(3)}`,
        username: `demo-user-${rnd(5)}`,
        started_at: formatTime(start, 0),
        started_at_ts: start,
        state: "COMPLETED",
        total_time_seconds: { walltime: rnd(3600) },
        avg_cpu_usage: { global: Math.random() * 100 },
      };
    }));
  }
  if (sub === "/demo/usage") {
    return ok(Array.from({ length: 5 }, (_, i) => ({
      cluster_id: "demo",
      resource_manager: "slurm",
      num_units: 1 + rnd(50),
      project: `demo-project-${i % 3}`,
      groupname: "",
      username: `demo-user-${i}`,
      avg_cpu_usage: { global: Math.random() * 100 },
      total_cpu_energy_usage_kwh: { total: Math.random() * 10 },
    })));
  }
  return err(404, "not_found", `unknown endpoint ${sub}`);
}
