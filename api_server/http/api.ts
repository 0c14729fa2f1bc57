// HTTP API of the API server under <prefix>/api/v1: user identification from the configured headers,
// admin checks, CORS, rate limiting, and the units/users/projects/usage/stats/verify endpoints in CEEMS's JSON.

import { SERVICE_ACCOUNT } from "../../common/ceems_db.ts";
import type { Logger } from "../../common/log.ts";
import type { RequestInfo } from "../../common/web/server.ts";
import { formatTime, UNIT_FIELDS, USAGE_FIELDS, zoneOffset } from "../models.ts";
import type { ScopeQuery, Storage } from "../storage/storage.ts";
import { clientIp, corsHeaders, RateLimiter } from "./cors.ts";
import { encodeError, encodeSuccess } from "./json.ts";
import { BadRequest, fields, flag, groupBy, list, timeWindow } from "./params.ts";
import { USAGE_CACHE_TTL_MS, UsageCache, usageCacheKey } from "./usage_cache.ts";

/** Options of the API handler. */
export interface ApiOptions {
  storage: Storage;
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
}

const JSON_HEADERS = { "Content-Type": "application/json", "X-Content-Type-Options": "nosniff" };
const STATUS: Record<string, number> = {
  bad_data: 400,
  unauthorized: 401,
  forbidden: 403,
  not_found: 404,
  not_acceptable: 406,
  execution: 422,
  internal: 500,
  unavailable: 503,
};

function ok(data: Record<string, unknown>[] | null, extraHeaders?: Record<string, string>): Response {
  return new Response(encodeSuccess(data), {
    headers: extraHeaders ? { ...JSON_HEADERS, ...extraHeaders } : JSON_HEADERS,
  });
}

function err(type: string, msg: string): Response {
  return new Response(encodeError(type, msg), { status: STATUS[type] ?? 500, headers: JSON_HEADERS });
}

/** Builds the API handler. Returns undefined for paths it does not serve. */
export function apiHandler(o: ApiOptions) {
  const prefix = o.routePrefix.replace(/\/+$/, "");
  const apiBase = `${prefix}/api/v1`;
  const limiter = new RateLimiter(o.maxRequestsPerMinute);
  const configAdmins = new Set(o.adminUsers.filter((u) => u !== SERVICE_ACCOUNT));
  const serviceClients = new Set(o.serviceClients);
  const usageCache = new UsageCache();

  const isAdmin = (u: string) => configAdmins.has(u) || o.storage.isAdmin(u);
  /** The service account is a name anyone can put in a header: it counts only for authenticated service clients. */
  const isServiceClient = (authUser: string | undefined) => authUser !== undefined && serviceClients.has(authUser);

  function route(path: string, q: URLSearchParams, user: string, admin: boolean): Response {
    const scope = (allowAll: boolean): ScopeQuery => {
      const asked = list(q, "user");
      return {
        users: allowAll ? (asked.length ? asked : undefined) : [user],
        clusterIds: list(q, "cluster_id"),
        projects: list(q, "project"),
      };
    };
    switch (path) {
      case "/units":
      case "/units/admin": {
        const adminPath = path.endsWith("admin");
        const f = fields(q, UNIT_FIELDS) ?? [];
        const tz = q.get("timezone");
        // Re-rendering times in another zone needs their timestamps even when they were not asked for.
        const extra = tz && f.length
          ? ["created_at_ts", "started_at_ts", "ended_at_ts"].filter((c) => !f.includes(c))
          : [];
        const win = timeWindow(q, o.maxQueryPeriodMs);
        const asked = list(q, "user");
        const projects = list(q, "project");
        const users = adminPath ? (asked.length ? asked : undefined) : [user, ...projects.map((p) => `${p}:unknown`)];
        const rows = o.storage.units({
          users,
          clusterIds: list(q, "cluster_id"),
          uuids: list(q, "uuid"),
          projects,
          running: flag(q, "running"),
          fields: [...f, ...extra],
          ...win,
        });
        if (tz) retimeRows(rows, tz);
        for (const r of rows) for (const c of extra) delete r[c];
        return ok(rows);
      }
      case "/units/verify": {
        const uuids = list(q, "uuid");
        if (!uuids.length) return err("bad_data", "uuids missing in the request");
        if (!o.storage.verifyOwnership(user, uuids, list(q, "cluster_id"))) {
          return err("forbidden", "user do not have permissions on uuids");
        }
        return ok(null);
      }
      case "/users":
        return ok(o.storage.users(scope(false)));
      case "/users/admin":
        if (q.get("role") === "admin") return ok(o.storage.adminUsers());
        return ok(o.storage.users(scope(true)));
      case "/projects":
        return ok(o.storage.projects(scope(false)));
      case "/projects/admin":
        return ok(o.storage.projects(scope(true)));
      case "/clusters/admin":
        return ok(o.storage.clusters() as unknown as Record<string, unknown>[]);
      case "/usage/current":
      case "/usage/current/admin": {
        const f = fields(q, USAGE_FIELDS) ?? [];
        const extraGroups = groupBy(q);
        // As CEEMS: bounds rounded down to 15 minutes and results cached 15 minutes per (rounded) request.
        const win = timeWindow(q, o.maxQueryPeriodMs, Date.now(), USAGE_CACHE_TTL_MS);
        const sc = scope(path.endsWith("admin"));
        const key = usageCacheKey(path, q, win, sc.users);
        const hit = usageCache.get(key);
        if (hit) return ok(hit.rows, { Expires: new Date(hit.expiresAt).toUTCString() });
        const rows = o.storage.usageCurrent({
          ...sc,
          ...win,
          terminated: flag(q, "__terminated"),
          experimental: flag(q, "experimental"),
          groupBy: extraGroups,
        }, f);
        if (rows.length) usageCache.set(key, rows);
        return ok(rows);
      }
      case "/usage/global":
      case "/usage/global/admin":
        return ok(o.storage.usageGlobal(scope(path.endsWith("admin")), fields(q, USAGE_FIELDS) ?? []));
      case "/stats/current/admin":
        return ok(
          o.storage.stats(list(q, "cluster_id"), timeWindow(q, o.maxQueryPeriodMs)) as unknown as Record<
            string,
            unknown
          >[],
        );
      case "/stats/global/admin":
        return ok(o.storage.stats(list(q, "cluster_id")) as unknown as Record<string, unknown>[]);
    }
    void admin;
    return err("not_found", `unknown endpoint ${path}`);
  }

  return (req: Request, info: RequestInfo): Response | undefined => {
    const url = new URL(req.url);
    const path = url.pathname;
    if (path === "/health" || path === `${prefix}/health`) {
      const healthy = o.storage.ping();
      return new Response(healthy ? "CEEMS API Server is healthy" : "KO", {
        status: healthy ? 200 : 503,
        headers: { "X-Content-Type-Options": "nosniff" },
      });
    }
    if (!path.startsWith(apiBase + "/")) return undefined;
    const cors = corsHeaders(req.headers.get("Origin"), o.corsOrigin, o.userHeaders);
    const finish = (r: Response) => {
      cors?.forEach((v, k) => r.headers.set(k, v));
      return r;
    };
    if (req.method === "OPTIONS") {
      return finish(new Response(null, { status: 200, headers: { "Content-Length": "0" } }));
    }
    if (req.method !== "GET") return finish(new Response("Method Not Allowed\n", { status: 405 }));
    if (!limiter.allow(clientIp(req, info.remoteAddr))) {
      return finish(new Response("Too Many Requests\n", { status: 429 }));
    }
    const sub = path.slice(apiBase.length);
    if (sub.startsWith("/demo/")) return finish(demo(sub));
    let user = "";
    for (const h of o.userHeaders) {
      const v = req.headers.get(h)?.trim();
      if (v) {
        user = v;
        break;
      }
    }
    if (!user) return finish(err("unauthorized", "no user identified"));
    if (user === SERVICE_ACCOUNT && !isServiceClient(info.authUser)) {
      return finish(err("forbidden", `${SERVICE_ACCOUNT} is reserved for authenticated service clients`));
    }
    const admin = user === SERVICE_ACCOUNT || isAdmin(user);
    if (sub.endsWith("admin") && !admin) {
      return finish(err("forbidden", "current user does not have admin privileges"));
    }
    try {
      return finish(route(sub, url.searchParams, user, admin));
    } catch (e) {
      if (e instanceof BadRequest) return finish(err("bad_data", e.message));
      o.logger.error("API request failed", { path, err: e });
      return finish(err("internal", "internal server error"));
    }
  };
}

/** Re-renders a row's time strings in `tz` from their timestamps. */
function retimeRows(rows: Record<string, unknown>[], tz: string): void {
  try {
    new Intl.DateTimeFormat("en-US", { timeZone: tz });
  } catch {
    throw new BadRequest(`invalid timezone ${tz}`);
  }
  for (const r of rows) {
    for (const k of ["created_at", "started_at", "ended_at"]) {
      const ts = r[`${k}_ts`];
      if (typeof r[k] === "string" && typeof ts === "number" && ts > 0) r[k] = formatTime(ts, zoneOffset(tz, ts));
    }
  }
}

/** Random mock data for /demo/{units,usage}, as CEEMS serves for dashboards. */
function demo(sub: string): Response {
  const rnd = (n: number) => Math.floor(Math.random() * n);
  const now = Date.now();
  if (sub === "/demo/units") {
    const rows = Array.from({ length: 10 }, (_, i) => {
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
    });
    return ok(rows);
  }
  if (sub === "/demo/usage") {
    const rows = Array.from({ length: 5 }, (_, i) => ({
      cluster_id: "demo",
      resource_manager: "slurm",
      num_units: 1 + rnd(50),
      project: `demo-project-${i % 3}`,
      groupname: "",
      username: `demo-user-${i}`,
      avg_cpu_usage: { global: Math.random() * 100 },
      total_cpu_energy_usage_kwh: { total: Math.random() * 10 },
    }));
    return ok(rows);
  }
  return err("not_found", `unknown endpoint ${sub}`);
}
