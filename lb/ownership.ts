// Unit ownership and admin look-ups for the load balancer: from the API server's SQLite database (read
// on a Worker thread) or through its HTTP API, each bounded in time, behind a short-lived cache.

import { SERVICE_ACCOUNT } from "../common/ceems_db.ts";
import type { HttpBackendClient } from "./http_client.ts";
import {
  type OwnershipFailure,
  type OwnershipQuestion,
  type OwnershipReply,
  type OwnershipRequest,
  type OwnershipWorkerInit,
  READY_ID,
} from "./ownership_protocol.ts";

/** Answers who owns which units and who is an admin. Every method may reject with {@link OwnershipError}. */
export interface OwnershipChecker {
  /** True when `user` may see every unit of `uuids` in cluster `clusterId`. */
  owns(user: string, clusterId: string, uuids: string[]): Promise<boolean>;
  /** True when `user` is a CEEMS admin. */
  isAdmin(user: string): Promise<boolean>;
  /** Cluster ids the API server knows units of. */
  clusterIds(): Promise<string[]>;
  close(): void;
}

/** An ownership question that could not be answered (the caller fails closed: 503). */
export class OwnershipError extends Error {
  constructor(readonly kind: OwnershipFailure | "timeout" | "http", message: string) {
    super(message);
  }
}

/** Default bound of one ownership question. */
export const DEFAULT_OWNERSHIP_TIMEOUT_MS = 5_000;

type Pending = {
  resolve(v: boolean | string[]): void;
  reject(e: Error): void;
  sentAt: number;
  timer: ReturnType<typeof setTimeout>;
};

/**
 * Reads the API server's database read-only on a Worker thread, so a locked database never stalls the
 * event loop. Each question is answered within `timeoutMs` or fails; a worker that answers nothing for
 * that long is replaced. A database file replaced on disk is reopened.
 */
export class DbOwnership implements OwnershipChecker {
  #worker!: Worker;
  #pending = new Map<number, Pending>();
  #next = 1;
  #lastAnswerAt = 0;
  /** Whether the current worker has loaded (a worker still starting is slow, not stuck). */
  #ready = false;

  constructor(readonly dbPath: string, readonly timeoutMs = DEFAULT_OWNERSHIP_TIMEOUT_MS) {
    this.#spawn();
  }

  #spawn(): void {
    const w = new Worker(new URL("./ownership_worker.ts", import.meta.url).href, { type: "module" });
    w.postMessage(
      { dbPath: this.dbPath, busyTimeoutMs: Math.max(0, this.timeoutMs - 100) } satisfies OwnershipWorkerInit,
    );
    this.#ready = false;
    w.onmessage = (e: MessageEvent<OwnershipReply>) => {
      this.#lastAnswerAt = performance.now();
      if (e.data.id === READY_ID) {
        this.#ready = true;
        return;
      }
      const p = this.#pending.get(e.data.id);
      if (!p) return;
      this.#pending.delete(e.data.id);
      clearTimeout(p.timer);
      if (e.data.ok) p.resolve(e.data.value);
      else p.reject(new OwnershipError(e.data.kind, `${this.dbPath}: ${e.data.error}`));
    };
    w.onerror = (e) => {
      e.preventDefault();
      this.#restart(new OwnershipError("unavailable", `ownership worker failed: ${e.message}`));
    };
    this.#worker = w;
  }

  /** Replaces the worker, failing every question it still holds. */
  #restart(reason: OwnershipError): void {
    this.#worker.terminate();
    for (const p of this.#pending.values()) {
      clearTimeout(p.timer);
      p.reject(reason);
    }
    this.#pending.clear();
    this.#spawn();
  }

  #ask(req: OwnershipQuestion): Promise<boolean | string[]> {
    const id = this.#next++;
    return new Promise((resolve, reject) => {
      const sentAt = performance.now();
      const timer = setTimeout(() => {
        if (!this.#pending.delete(id)) return;
        const err = new OwnershipError("timeout", `${this.dbPath}: no answer within ${this.timeoutMs} ms`);
        reject(err);
        // A loaded worker that answered nothing since this question was sent is stuck (not just busy with a
        // queue): replace it. One still loading is left to finish (replacing it would only start over).
        if (this.#ready && this.#lastAnswerAt < sentAt) this.#restart(err);
      }, this.timeoutMs);
      this.#pending.set(id, { resolve, reject, sentAt, timer });
      this.#worker.postMessage({ ...req, id } as OwnershipRequest);
    });
  }

  async owns(user: string, clusterId: string, uuids: string[]): Promise<boolean> {
    if (uuids.length === 0) return false;
    return await this.#ask({ op: "owns", user, clusterId, uuids }) as boolean;
  }

  async isAdmin(user: string): Promise<boolean> {
    return await this.#ask({ op: "isAdmin", user }) as boolean;
  }

  async clusterIds(): Promise<string[]> {
    return await this.#ask({ op: "clusterIds" }) as string[];
  }

  close(): void {
    for (const p of this.#pending.values()) {
      clearTimeout(p.timer);
      p.reject(new OwnershipError("unavailable", "ownership checker closed"));
    }
    this.#pending.clear();
    this.#worker.terminate();
  }
}

/**
 * Asks the API server: `/api/v1/units/verify` and `/api/v1/users/admin` as the user in question (the
 * API server answers admin paths only to admins), each within `timeoutMs`.
 */
export class HttpOwnership implements OwnershipChecker {
  constructor(
    readonly base: string,
    readonly client: HttpBackendClient,
    readonly timeoutMs = DEFAULT_OWNERSHIP_TIMEOUT_MS,
  ) {}

  async #get(path: string, user: string): Promise<{ status: number; body: string }> {
    try {
      const resp = await this.client.fetch(`${this.base}${path}`, {
        headers: { "X-Grafana-User": user },
        signal: AbortSignal.timeout(this.timeoutMs),
      });
      return { status: resp.status, body: await resp.text() };
    } catch (e) {
      const timedOut = (e as Error).name === "TimeoutError";
      throw new OwnershipError(timedOut ? "timeout" : "http", `${this.base}${path}: ${(e as Error).message}`);
    }
  }

  async owns(user: string, clusterId: string, uuids: string[]): Promise<boolean> {
    if (uuids.length === 0) return false;
    const params = new URLSearchParams();
    for (const u of uuids) params.append("uuid", u);
    params.append("cluster_id", clusterId);
    const r = await this.#get(`/api/v1/units/verify?${params}`, user);
    if (r.status === 403) return false;
    if (r.status !== 200) throw new OwnershipError("http", `/api/v1/units/verify: HTTP ${r.status}`);
    try {
      return JSON.parse(r.body).status === "success";
    } catch {
      throw new OwnershipError("http", "/api/v1/units/verify: answer is not JSON");
    }
  }

  async isAdmin(user: string): Promise<boolean> {
    const r = await this.#get("/api/v1/users/admin?role=admin", user);
    if (r.status === 200) return true;
    if (r.status === 403) return false;
    throw new OwnershipError("http", `/api/v1/users/admin: HTTP ${r.status}`);
  }

  /** Asks as the service account: answered only when the API server lists this LB in its service clients. */
  async clusterIds(): Promise<string[]> {
    const r = await this.#get("/api/v1/clusters/admin", SERVICE_ACCOUNT);
    if (r.status !== 200) throw new OwnershipError("http", `GET /api/v1/clusters/admin: HTTP ${r.status}`);
    const data = JSON.parse(r.body).data as { id?: string }[] | null;
    return (data ?? []).map((c) => c?.id ?? "").filter((id) => id !== "");
  }

  close(): void {
    this.client.close();
  }
}

/** Entries each cache map keeps at most (oldest dropped first). */
const MAX_CACHE_ENTRIES = 50_000;
/** Refusals of larger unit sets are not cached (their keys would be as large as the set). */
const MAX_CACHED_REFUSAL_UNITS = 64;
/** Expired entries are swept after this many insertions. */
const SWEEP_EVERY = 1_024;

/**
 * Caches answers of another checker for `ttlMs`: grants per unit, refusals per (small) unit set, admin
 * answers per user. Errors are not cached; expired entries are swept regularly and each map is bounded.
 */
export class CachedOwnership implements OwnershipChecker {
  #granted = new Map<string, number>();
  #refused = new Map<string, number>();
  #admins = new Map<string, number>();
  #notAdmins = new Map<string, number>();
  #inserts = 0;
  constructor(readonly inner: OwnershipChecker, readonly ttlMs = 30_000, readonly now = () => Date.now()) {}

  async owns(user: string, clusterId: string, uuids: string[]): Promise<boolean> {
    if (uuids.length === 0) return false;
    const t = this.now();
    const key = (u: string) => `${user}\u0000${clusterId}\u0000${u}`;
    const missing = [...new Set(uuids)].filter((u) => (this.#granted.get(key(u)) ?? 0) <= t);
    if (missing.length === 0) return true;
    const setKey = missing.length <= MAX_CACHED_REFUSAL_UNITS ? key(missing.sort().join("\u0001")) : undefined;
    if (setKey !== undefined && (this.#refused.get(setKey) ?? 0) > t) return false;
    const ok = await this.inner.owns(user, clusterId, missing);
    if (ok) { for (const u of missing) this.#put(this.#granted, key(u), t); }
    else if (setKey !== undefined) this.#put(this.#refused, setKey, t);
    return ok;
  }

  async isAdmin(user: string): Promise<boolean> {
    const t = this.now();
    if ((this.#admins.get(user) ?? 0) > t) return true;
    if ((this.#notAdmins.get(user) ?? 0) > t) return false;
    const admin = await this.inner.isAdmin(user);
    this.#put(admin ? this.#admins : this.#notAdmins, user, t);
    return admin;
  }

  clusterIds(): Promise<string[]> {
    return this.inner.clusterIds();
  }

  /** Entries held (for tests and metrics). */
  get size(): number {
    return this.#granted.size + this.#refused.size + this.#admins.size + this.#notAdmins.size;
  }

  #put(m: Map<string, number>, key: string, t: number): void {
    m.delete(key); // re-inserted at the end: insertion order is age order
    m.set(key, t + this.ttlMs);
    if (++this.#inserts % SWEEP_EVERY === 0) this.#sweep(t);
    while (m.size > MAX_CACHE_ENTRIES) m.delete(m.keys().next().value!);
  }

  /** Drops expired entries: insertion order is expiry order (one TTL), so each map is swept from its front. */
  #sweep(t: number): void {
    for (const m of [this.#granted, this.#refused, this.#admins, this.#notAdmins]) {
      for (const [k, until] of m) {
        if (until > t) break;
        m.delete(k);
      }
    }
  }

  close(): void {
    this.inner.close();
  }
}
