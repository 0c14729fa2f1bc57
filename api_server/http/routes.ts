// The API's read endpoints over ReadQueries: parameters to queries, the admin check, and the answer as a
// lazily produced CEEMS JSON body, so a reader thread can send a large result in slices as it is read.

import { formatTime, UNIT_FIELDS, USAGE_FIELDS, zoneOffset } from "../models.ts";
import type { ReadQueries } from "../storage/read_queries.ts";
import type { ScopeQuery } from "../storage/storage.ts";
import { encodeError, encodeRow } from "./json.ts";
import { BadRequest, fields, flag, groupBy, list, timeWindow } from "./params.ts";
import { USAGE_CACHE_TTL_MS } from "./usage_cache.ts";

/** A read request as the event loop hands it over (after CORS, rate limits and user identification). */
export interface ReadRequest {
  /** Path below `<prefix>/api/v1`, e.g. "/units/admin". */
  path: string;
  /** The query string (with or without "?"). */
  search: string;
  user: string;
  /** True when the configuration (or an authenticated service client) makes the user an admin. */
  configAdmin: boolean;
  maxQueryPeriodMs: number;
  nowMs: number;
}

/** An answer: its status and its body, produced piece by piece on demand. */
export interface Answer {
  status: number;
  body: Iterator<string>;
}

const STATUS: Record<string, number> = {
  bad_data: 400,
  unauthorized: 401,
  forbidden: 403,
  not_found: 404,
  internal: 500,
  unavailable: 503,
};

/** CEEMS's error answer. */
export function errorAnswer(type: string, msg: string): Answer {
  return { status: STATUS[type] ?? 500, body: [encodeError(type, msg)][Symbol.iterator]() };
}

/** CEEMS's success envelope around `rows` (null for none), encoded one row at a time. */
function* successBody(rows: Iterable<Record<string, unknown>> | null): Generator<string> {
  if (rows === null) {
    yield '{"status":"success","data":null}\n';
    return;
  }
  let sep = '{"status":"success","data":[';
  for (const r of rows) {
    yield sep + encodeRow(r);
    sep = ",";
  }
  yield sep === "," ? "]}\n" : '{"status":"success","data":[]}\n';
}

const ok = (rows: Iterable<Record<string, unknown>> | null): Answer => ({ status: 200, body: successBody(rows) });

/** The scope of /users, /projects and /usage: the user, or (admin) the asked users or everyone. */
function scopeOf(q: URLSearchParams, user: string, allowAll: boolean): ScopeQuery {
  const asked = list(q, "user");
  return {
    users: allowAll ? (asked.length ? asked : undefined) : [user],
    clusterIds: list(q, "cluster_id"),
    projects: list(q, "project"),
  };
}

/** The usage window: bounds rounded down to 15 minutes, as CEEMS (its cache key uses the same window). */
export function usageWindow(q: URLSearchParams, maxPeriodMs: number, nowMs: number) {
  return timeWindow(q, maxPeriodMs, nowMs, USAGE_CACHE_TTL_MS);
}

/** The users a usage request is scoped to (undefined = all, for admins), as its cache key needs them. */
export function usageScopeUsers(path: string, q: URLSearchParams, user: string): string[] | undefined {
  return scopeOf(q, user, path.endsWith("admin")).users;
}

/** Answers one read request from `db`; a bad parameter is a 400, an unknown path a 404. */
export function answer(db: ReadQueries, r: ReadRequest): Answer {
  try {
    if (r.path.endsWith("admin") && !r.configAdmin && !db.isAdmin(r.user)) {
      return errorAnswer("forbidden", "current user does not have admin privileges");
    }
    return route(db, r, new URLSearchParams(r.search));
  } catch (e) {
    if (e instanceof BadRequest) return errorAnswer("bad_data", e.message);
    throw e;
  }
}

function route(db: ReadQueries, r: ReadRequest, q: URLSearchParams): Answer {
  const { path, user } = r;
  switch (path) {
    case "/units":
    case "/units/admin": {
      const adminPath = path.endsWith("admin");
      const f = fields(q, UNIT_FIELDS) ?? [];
      const tz = q.get("timezone");
      if (tz) checkZone(tz);
      // Re-rendering times in another zone needs their timestamps even when they were not asked for.
      const extra = tz && f.length
        ? ["created_at_ts", "started_at_ts", "ended_at_ts"].filter((c) => !f.includes(c))
        : [];
      const win = timeWindow(q, r.maxQueryPeriodMs, r.nowMs);
      const asked = list(q, "user");
      const projects = list(q, "project");
      const users = adminPath ? (asked.length ? asked : undefined) : [user, ...projects.map((p) => `${p}:unknown`)];
      const rows = db.units({
        users,
        clusterIds: list(q, "cluster_id"),
        uuids: list(q, "uuid"),
        projects,
        running: flag(q, "running"),
        fields: [...f, ...extra],
        ...win,
      });
      return ok(tz ? retimed(rows, tz, extra) : rows);
    }
    case "/units/verify": {
      const uuids = list(q, "uuid");
      if (!uuids.length) return errorAnswer("bad_data", "uuids missing in the request");
      if (!db.verifyOwnership(user, uuids, list(q, "cluster_id"))) {
        return errorAnswer("forbidden", "user do not have permissions on uuids");
      }
      return ok(null);
    }
    case "/users":
      return ok(db.users(scopeOf(q, user, false)));
    case "/users/admin":
      if (q.get("role") === "admin") return ok(db.adminUsers());
      return ok(db.users(scopeOf(q, user, true)));
    case "/projects":
      return ok(db.projects(scopeOf(q, user, false)));
    case "/projects/admin":
      return ok(db.projects(scopeOf(q, user, true)));
    case "/clusters/admin":
      return ok(db.clusters() as unknown as Record<string, unknown>[]);
    case "/usage/current":
    case "/usage/current/admin": {
      const f = fields(q, USAGE_FIELDS) ?? [];
      return ok(db.usageCurrent({
        ...scopeOf(q, user, path.endsWith("admin")),
        ...usageWindow(q, r.maxQueryPeriodMs, r.nowMs),
        terminated: flag(q, "__terminated"),
        experimental: flag(q, "experimental"),
        groupBy: groupBy(q),
      }, f));
    }
    case "/usage/global":
    case "/usage/global/admin":
      return ok(db.usageGlobal(scopeOf(q, user, path.endsWith("admin")), fields(q, USAGE_FIELDS) ?? []));
    case "/stats/current/admin":
      return ok(
        db.stats(list(q, "cluster_id"), timeWindow(q, r.maxQueryPeriodMs, r.nowMs)) as unknown as Record<
          string,
          unknown
        >[],
      );
    case "/stats/global/admin":
      return ok(db.stats(list(q, "cluster_id")) as unknown as Record<string, unknown>[]);
  }
  return errorAnswer("not_found", `unknown endpoint ${path}`);
}

function checkZone(tz: string): void {
  try {
    new Intl.DateTimeFormat("en-US", { timeZone: tz });
  } catch {
    throw new BadRequest(`invalid timezone ${tz}`);
  }
}

/** Rows with their time strings re-rendered in `tz` from their timestamps; `drop` removed afterwards. */
function* retimed(rows: Iterable<Record<string, unknown>>, tz: string, drop: string[]) {
  for (const r of rows) {
    for (const k of ["created_at", "started_at", "ended_at"]) {
      const ts = r[`${k}_ts`];
      if (typeof r[k] === "string" && typeof ts === "number" && ts > 0) r[k] = formatTime(ts, zoneOffset(tz, ts));
    }
    for (const c of drop) delete r[c];
    yield r;
  }
}
