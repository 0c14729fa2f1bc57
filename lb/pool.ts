// The server pool of one load balancer kind (TSDB or Pyroscope): backends per cluster id, the
// strategy choosing among them and the periodic health checker marking them alive or dead.

import type { Logger } from "../common/log.ts";
import { Backend } from "./backend.ts";
import type { ServerConfig, Strategy } from "./config.ts";
import { type PickContext, type Picker, pickerFor } from "./strategies.ts";

/** Backends grouped by cluster id with a selection strategy. */
export class ServerPool {
  readonly byCluster = new Map<string, Backend[]>();
  #pickers = new Map<string, Picker>();
  #timer?: ReturnType<typeof setInterval>;

  constructor(readonly strategy: Strategy, readonly logger: Logger) {}

  /** Adds a backend server to cluster `id`. */
  add(id: string, cfg: ServerConfig, configFile = ""): Backend {
    const b = new Backend(cfg, configFile);
    if (!this.byCluster.has(id)) {
      this.byCluster.set(id, []);
      this.#pickers.set(id, pickerFor(this.strategy));
    }
    this.byCluster.get(id)!.push(b);
    return b;
  }

  /** True when cluster `id` has backends in this pool. */
  has(id: string): boolean {
    return this.byCluster.has(id);
  }

  /** Picks a live backend of cluster `id`, or undefined. */
  pick(id: string, ctx: PickContext = {}): Backend | undefined {
    const list = this.byCluster.get(id);
    return list ? this.#pickers.get(id)!(list, ctx) : undefined;
  }

  /** Runs one round of health checks (TCP dial; retention for the resource-based strategy). */
  async checkHealth(timeoutMs = 10_000): Promise<void> {
    const all = [...this.byCluster.entries()].flatMap(([id, list]) => list.map((b) => [id, b] as const));
    await Promise.all(all.map(async ([id, b]) => {
      const ok = await b.dial(timeoutMs);
      if (ok !== b.alive) {
        this.logger[ok ? "info" : "error"]("Health check", { id, backend: b.toString(), status: ok ? "up" : "down" });
      }
      b.alive = ok;
      if (ok && this.strategy === "resource-based") await b.probeRetention();
    }));
  }

  /** Checks health now and then every `intervalMs` until {@link stop}. */
  startHealthChecks(intervalMs = 20_000): Promise<void> {
    const first = this.checkHealth();
    this.#timer = setInterval(() => void this.checkHealth(), intervalMs);
    return first;
  }

  /** Stops the health checker and releases the backends' clients. */
  stop(): void {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
    for (const list of this.byCluster.values()) for (const b of list) b.client.close();
  }
}
