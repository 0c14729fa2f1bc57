// The API server requests of cacct: the user's units and current usage (or, with --user, the admin
// resources for the named users or all users), identified by the user header, as CEEMS's cacct asks.

import type { CacctConfig } from "./config.ts";
import type { ApiRecord } from "./report.ts";

/** The API refused the request (401/403): most likely a non-admin asking for others' units. */
export class ForbiddenError extends Error {}

/** What to ask for. */
export interface Selection {
  currentUser: string;
  /** Other users (admin only); `["all"]` for every user. Empty: the current user's own resources. */
  users: string[];
  accounts: string[];
  jobs: string[];
  fromS: number;
  toS: number;
  /** API fields (tags). */
  fields: string[];
}

async function get(cfg: CacctConfig, path: string, params: URLSearchParams, user: string): Promise<ApiRecord[]> {
  const r = await fetch(`${cfg.api.url}${path}?${params}`, {
    headers: { ...cfg.api.http.headers, [cfg.userHeader]: user, "Accept-Encoding": "gzip" },
    client: cfg.api.http.client,
    signal: AbortSignal.timeout(60_000),
  } as RequestInit);
  if (r.status === 401 || r.status === 403) {
    await r.body?.cancel();
    throw new ForbiddenError(`HTTP ${r.status}`);
  }
  const text = await r.text();
  let body: { status?: string; data?: ApiRecord[]; error?: string };
  try {
    body = JSON.parse(text);
  } catch {
    throw new Error(`${path}: HTTP ${r.status}: ${text.slice(0, 200)}`);
  }
  if (body.status !== "success") throw new Error(`${path}: ${body.error ?? `HTTP ${r.status}`}`);
  return body.data ?? [];
}

/** The units and usage records of the selection. */
export async function fetchStats(cfg: CacctConfig, s: Selection): Promise<{ units: ApiRecord[]; usages: ApiRecord[] }> {
  const p = new URLSearchParams({ from: String(Math.floor(s.fromS)), to: String(Math.floor(s.toS)) });
  if (cfg.clusterId) p.append("cluster_id", cfg.clusterId);
  for (const f of s.fields) p.append("field", f);
  for (const a of s.accounts) p.append("project", a);
  for (const j of s.jobs) p.append("uuid", j);
  const admin = s.users.length > 0;
  if (admin && !s.users.includes("all")) { for (const u of s.users) p.append("user", u); }
  // Running units too, as sacct lists them (CEEMS's cacct shows only units that ended in the window).
  const unitParams = new URLSearchParams(p);
  unitParams.append("running", "true");
  const units = await get(cfg, admin ? "/api/v1/units/admin" : "/api/v1/units", unitParams, s.currentUser);
  p.append("field", "username");
  p.append("field", "num_units");
  if (s.fields.includes("elapsed")) p.append("field", "total_time_seconds");
  p.delete("uuid");
  // The API rounds the usage window down to 15 min: reach past `to` so the last updates count.
  p.set("to", String(Math.floor(s.toS) + 900));
  const usages = await get(cfg, admin ? "/api/v1/usage/current/admin" : "/api/v1/usage/current", p, s.currentUser);
  const shown = (u: ApiRecord) =>
    s.users.includes("all") || u.username === s.currentUser || s.users.includes(String(u.username));
  return { units, usages: usages.filter(shown) };
}
