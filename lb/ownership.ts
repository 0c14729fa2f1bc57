// Unit ownership and admin look-ups for the load balancer: from the API server's SQLite database (read
// on a Worker thread) or through its HTTP API, each bounded in time, behind a short-lived cache.

import { SERVICE_ACCOUNT } from "../common/ceems_db.ts";
import type { HttpBackendClient } from "./http_client.ts";
import type {
  OwnershipFailure,
  OwnershipQuestion,
  OwnershipReply,
  OwnershipRequest,
  OwnershipWorkerInit,
} from "./ownership_worker.ts";

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

  constructor(readonly dbPath: string, readonly timeoutMs = DEFAULT_OWNERSHIP_TIMEOUT_MS) {
    this.#spawn();
  }

  #spawn(): void {
    const w = new Worker(new URL("./ownership_worker.ts", import.meta.url).href, { type: "module" });
    w.postMessage(
      { dbPath: this.dbPath, busyTimeoutMs: Math.max(0, this.timeoutMs - 100) } satisfies OwnershipWorkerInit,
    );
    w.onmessage = (e: MessageEvent<OwnershipReply>) => {
      this.#lastAnswerAt = performance.now();
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
        // Nothing answered since this question was sent: the worker is stuck (not just busy with a queue).
        if (this.#lastAnswerAt < sentAt) this.#restart(err);
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

/** Caches answers of another checker for `ttlMs` (grants per unit, refusals per unit set); errors are not cached. */
export class CachedOwnership implements OwnershipChecker {
  #granted = new Map<string, number>();
  #refused = new Map<string, number>();
  #admins = new Map<string, { admin: boolean; until: number }>();
  constructor(readonly inner: OwnershipChecker, readonly ttlMs = 30_000, readonly now = () => Date.now()) {}

  async owns(user: string, clusterId: string, uuids: string[]): Promise<boolean> {
    if (uuids.length === 0) return false;
    const t = this.now();
    const key = (u: string) => `${user}\u0000${clusterId}\u0000${u}`;
    const missing = [...new Set(uuids)].filter((u) => (this.#granted.get(key(u)) ?? 0) <= t);
    if (missing.length === 0) return true;
    const setKey = key(missing.sort().join("\u0001"));
    if ((this.#refused.get(setKey) ?? 0) > t) return false;
    const ok = await this.inner.owns(user, clusterId, missing);
    this.#prune(t);
    if (ok) { for (const u of missing) this.#granted.set(key(u), t + this.ttlMs); }
    else this.#refused.set(setKey, t + this.ttlMs);
    return ok;
  }

  async isAdmin(user: string): Promise<boolean> {
    const t = this.now();
    const hit = this.#admins.get(user);
    if (hit && hit.until > t) return hit.admin;
    const admin = await this.inner.isAdmin(user);
    this.#prune(t);
    this.#admins.set(user, { admin, until: t + this.ttlMs });
    return admin;
  }

  clusterIds(): Promise<string[]> {
    return this.inner.clusterIds();
  }

  #prune(t: number): void {
    if (this.#granted.size + this.#refused.size + this.#admins.size < 100_000) return;
    for (const m of [this.#granted, this.#refused]) for (const [k, until] of m) if (until <= t) m.delete(k);
    for (const [k, v] of this.#admins) if (v.until <= t) this.#admins.delete(k);
  }

  close(): void {
    this.inner.close();
  }
}
