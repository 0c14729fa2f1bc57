// OpenStack resource manager: a Keystone token (password or application credential), Nova servers
// (live and deleted in the window) as units, and Keystone users with their projects as memberships.

import type { Logger } from "../../common/log.ts";
import type { ClusterConfig } from "../config.ts";
import { formatTime, type Project, type Unit, type User, zoneOffset } from "../models.ts";
import type { Membership, ResourceManager } from "./manager.ts";
import { clientHeaders } from "../http_client.ts";
import { windowWalltime } from "./manager.ts";

const DELETED = new Set(["DELETED", "SOFT_DELETED"]);
const INACTIVE = new Set(["SHUTOFF", "SUSPENDED", "SHELVED", "SHELVED_OFFLOADED", "ERROR"]);
const POWER: Record<number, string> = {
  0: "NOSTATE",
  1: "RUNNING",
  3: "PAUSED",
  4: "SHUTDOWN",
  6: "CRASHED",
  7: "SUSPENDED",
};
const TOKEN_TTL_MS = 3_600_000;

/** Parses Nova's "2024-10-15T14:29:34.000000" / "...Z" (UTC) times. */
function novaTime(s: unknown): number {
  if (typeof s !== "string" || !s) return 0;
  const t = Date.parse(/[zZ]|[+-]\d\d:?\d\d$/.test(s) ? s : s + "Z");
  return Number.isNaN(t) ? 0 : t;
}

function hms(sec: number): string {
  const s = Math.max(0, Math.round(sec));
  const d = Math.floor(s / 86400);
  const p = (n: number) => String(n).padStart(2, "0");
  const t = `${p(Math.floor((s % 86400) / 3600))}:${p(Math.floor((s % 3600) / 60))}:${p(s % 60)}`;
  return d ? `${d}-${t}` : t;
}

/** How long Keystone's users and their projects are reused (CEEMS's userProjectsCacheTTL). */
export const USERS_CACHE_TTL_MS = 12 * 3_600_000;

/** The OpenStack manager of one cluster. */
export class OpenStackManager implements ResourceManager {
  readonly kind = "openstack";
  readonly clusterId: string;
  #compute: string;
  #identity: string;
  #auth: unknown;
  #headers: Record<string, string> = {};
  #token = "";
  #tokenAt = 0;
  #userNames = new Map<string, string>();
  #projectNames = new Map<string, string>();
  /** Users and projects from Keystone, refreshed at most every USERS_CACHE_TTL_MS (as CEEMS: 12 h). */
  #membership?: { value: Membership; at: number };
  /** Clock of the membership cache (replaceable in tests). */
  now: () => number = Date.now;

  constructor(cfg: ClusterConfig, private timeZone: string, private logger: Logger) {
    this.clusterId = cfg.id;
    const ex = cfg.extraConfig;
    const ep = (ex.api_service_endpoints ?? {}) as Record<string, string>;
    if (!ep.compute || !URL.canParse(ep.compute)) {
      throw new Error(`clusters ${cfg.id}: extra_config.api_service_endpoints.compute: missing or invalid URL`);
    }
    if (!ep.identity || !URL.canParse(ep.identity)) {
      throw new Error(`clusters ${cfg.id}: extra_config.api_service_endpoints.identity: missing or invalid URL`);
    }
    if (!ex.auth) throw new Error(`clusters ${cfg.id}: extra_config.auth: missing`);
    this.#compute = ep.compute.replace(/\/$/, "");
    this.#identity = ep.identity.replace(/\/$/, "");
    this.#auth = ex.auth;
    this.#headers = clientHeaders(cfg.web, `clusters ${cfg.id}: web`);
    if (!Object.keys(this.#headers).some((k) => k.toLowerCase() === "x-openstack-nova-api-version")) {
      this.#headers["X-OpenStack-Nova-API-Version"] = "latest";
    }
  }

  async #getToken(): Promise<string> {
    if (this.#token && Date.now() - this.#tokenAt < TOKEN_TTL_MS) return this.#token;
    const r = await fetch(`${this.#identity}/v3/auth/tokens`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ auth: this.#auth }),
      signal: AbortSignal.timeout(30_000),
    });
    await r.body?.cancel();
    const tok = r.headers.get("X-Subject-Token");
    if (r.status >= 300 || !tok) throw new Error(`keystone token request failed: HTTP ${r.status}`);
    this.#token = tok;
    this.#tokenAt = Date.now();
    return tok;
  }

  async #get(url: string): Promise<Record<string, unknown>> {
    const r = await fetch(url, {
      headers: { ...this.#headers, "X-Auth-Token": await this.#getToken() },
      signal: AbortSignal.timeout(30_000),
    });
    if (r.status === 401) this.#token = "";
    if (!r.ok) {
      await r.body?.cancel();
      throw new Error(`GET ${url}: HTTP ${r.status}`);
    }
    return await r.json();
  }

  async fetchUnits(startMs: number, endMs: number): Promise<Unit[]> {
    // Servers name their owner and project by id: learn the names first.
    if (this.#userNames.size === 0) await this.fetchMembership(endMs);
    const iso = (ms: number) => new Date(ms).toISOString().slice(0, 19);
    const live = await this.#get(`${this.#compute}/servers/detail?all_tenants=true`);
    const deleted = await this.#get(
      `${this.#compute}/servers/detail?all_tenants=true&deleted=true&changes-since=${iso(startMs)}&changes-before=${
        iso(endMs)
      }`,
    );
    const seen = new Set<string>();
    const units: Unit[] = [];
    for (const s of [...(deleted.servers as unknown[] ?? []), ...(live.servers as unknown[] ?? [])]) {
      const srv = s as Record<string, unknown>;
      const id = String(srv.id ?? "");
      if (!id || seen.has(id)) continue;
      seen.add(id);
      const u = this.#toUnit(srv, startMs, endMs);
      if (u) units.push(u);
    }
    return units;
  }

  #toUnit(s: Record<string, unknown>, winStart: number, winEnd: number): Unit | undefined {
    const status = String(s.status ?? "");
    const created = novaTime(s.created);
    const launched = novaTime(s["OS-SRV-USG:launched_at"]);
    let ended = 0;
    if (DELETED.has(status)) ended = novaTime(s["OS-SRV-USG:terminated_at"]) || novaTime(s.updated);
    const flavor = (s.flavor ?? {}) as Record<string, unknown>;
    const extra = (flavor.extra_specs ?? {}) as Record<string, string>;
    const vgpus = parseInt(extra["resources:VGPU"] ?? "0", 10) || 0;
    const vcpus = Number(flavor.vcpus ?? 0);
    const mem = Number(flavor.ram ?? 0);
    const alloc: Record<string, unknown> = {
      vcpus,
      mem,
      disk: Number(flavor.disk ?? 0),
      swap: Number(flavor.swap ?? 0),
      name: String(flavor.original_name ?? ""),
      extra_specs: extra,
    };
    if (vgpus) alloc.vgpus = vgpus;
    const wall = INACTIVE.has(status) ? 0 : windowWalltime(launched, ended, winStart, winEnd);
    const fmt = (ms: number) => formatTime(ms, zoneOffset(this.timeZone, ms));
    const userId = String(s.user_id ?? "");
    const projId = String(s.tenant_id ?? "");
    return {
      cluster_id: this.clusterId,
      resource_manager: "openstack",
      uuid: String(s.id),
      name: String(s.name ?? ""),
      project: this.#projectNames.get(projId) ?? projId,
      groupname: "",
      username: this.#userNames.get(userId) ?? userId,
      created_at: created ? fmt(created) : "N/A",
      started_at: launched ? fmt(launched) : "N/A",
      ended_at: ended ? fmt(ended) : "N/A",
      created_at_ts: created,
      started_at_ts: launched,
      ended_at_ts: ended,
      elapsed: hms(launched ? ((ended || winEnd) - launched) / 1000 : 0),
      state: status,
      allocation: alloc,
      tags: {
        metadata: s.metadata ?? {},
        tags: s.tags ?? [],
        reservation_id: s["OS-EXT-SRV-ATTR:reservation_id"] ?? "",
        power_state: POWER[Number(s["OS-EXT-STS:power_state"] ?? 0)] ?? "NOSTATE",
        az: s["OS-EXT-AZ:availability_zone"] ?? "",
      },
      total_time_seconds: {
        walltime: wall,
        alloc_cputime: vcpus * wall,
        alloc_cpumemtime: mem * wall,
        alloc_gputime: vgpus * wall,
        alloc_gpumemtime: vgpus ? wall : 0,
      },
    };
  }

  async fetchMembership(_endMs: number): Promise<Membership> {
    const cached = this.#membership;
    if (cached && this.now() - cached.at < USERS_CACHE_TTL_MS) return cached.value;
    try {
      const value = await this.#fetchMembership();
      this.#membership = { value, at: this.now() };
      return value;
    } catch (e) {
      if (!cached) throw e;
      // Keystone down: keep the last lists (and try again next window) rather than losing memberships.
      this.logger.warn("cannot refresh OpenStack users, keeping the cached lists", {
        cluster_id: this.clusterId,
        err: e,
      });
      return cached.value;
    }
  }

  async #fetchMembership(): Promise<Membership> {
    const us = await this.#get(`${this.#identity}/v3/users`);
    const users: User[] = [];
    const projects = new Map<string, Project>();
    for (const raw of (us.users as Record<string, unknown>[] ?? [])) {
      const id = String(raw.id);
      const name = String(raw.name);
      this.#userNames.set(id, name);
      let ps: Record<string, unknown>[] = [];
      try {
        ps = ((await this.#get(`${this.#identity}/v3/users/${id}/projects`)).projects as Record<string, unknown>[]) ??
          [];
      } catch (e) {
        this.logger.warn("cannot list projects of user", { cluster_id: this.clusterId, user: name, err: e });
      }
      const names: string[] = [];
      for (const p of ps) {
        const pid = String(p.id);
        const pname = String(p.name);
        this.#projectNames.set(pid, pname);
        names.push(pname);
        if (!projects.has(pid)) {
          projects.set(pid, {
            uid: pid,
            cluster_id: this.clusterId,
            resource_manager: "openstack",
            name: pname,
            users: [],
            tags: [],
          });
        }
        projects.get(pid)!.users.push(name);
      }
      users.push({
        uid: id,
        cluster_id: this.clusterId,
        resource_manager: "openstack",
        name,
        projects: [...new Set(names)].sort(),
        tags: [],
      });
    }
    for (const p of projects.values()) p.users = [...new Set(p.users)].sort();
    users.sort((a, b) => a.name < b.name ? -1 : a.name > b.name ? 1 : 0);
    return { users, projects: [...projects.values()].sort((a, b) => a.name < b.name ? -1 : 1) };
  }
}
