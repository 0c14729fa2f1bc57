// One backend server of the load balancer: its URL and client, liveness from TCP health checks,
// the count of requests in flight and (for the resource-based strategy) its data retention.

import { connect } from "node:net";
import type { ServerConfig } from "./config.ts";
import { createHttpBackendClient, type HttpBackendClient } from "./http_client.ts";

/** A Prometheus or Pyroscope server requests are proxied to. */
export class Backend {
  readonly url: URL;
  readonly client: HttpBackendClient;
  alive = true;
  active = 0;
  /** Retention of the backend's TSDB in ms (Infinity while unknown). */
  retentionMs = Infinity;

  constructor(readonly config: ServerConfig, configFile = "") {
    this.url = new URL(config.url);
    this.client = createHttpBackendClient(config.client, configFile);
  }

  /** Host and port to dial for health checks. */
  get hostPort(): { host: string; port: number } {
    const port = this.url.port ? Number(this.url.port) : this.url.protocol === "https:" ? 443 : 80;
    return { host: this.url.hostname.replace(/^\[|\]$/g, ""), port };
  }

  /** Dials the backend's TCP port (as CEEMS does); resolves to whether it answered within `timeoutMs`. */
  dial(timeoutMs = 10_000): Promise<boolean> {
    const { host, port } = this.hostPort;
    return new Promise((resolve) => {
      const sock = connect({ host, port });
      const done = (ok: boolean) => {
        clearTimeout(timer);
        sock.destroy();
        resolve(ok);
      };
      const timer = setTimeout(() => done(false), timeoutMs);
      sock.once("connect", () => done(true));
      sock.once("error", () => done(false));
    });
  }

  /** Reads `storageRetention` from Prometheus's runtime info (for the resource-based strategy). */
  async probeRetention(): Promise<void> {
    try {
      const r = await this.client.fetch(`${this.config.url}/api/v1/status/runtimeinfo`);
      const body = await r.json();
      const ms = parseRetention(String(body?.data?.storageRetention ?? ""));
      if (ms !== undefined) this.retentionMs = ms;
    } catch {
      // Pyroscope or an unreachable server: keep the last known value
    }
  }

  toString(): string {
    return this.config.url;
  }
}

const UNIT_MS: Record<string, number> = {
  ms: 1,
  s: 1e3,
  m: 60e3,
  h: 3600e3,
  d: 86400e3,
  w: 7 * 86400e3,
  y: 365 * 86400e3,
};

/** Parses Prometheus's retention text ("15d", "1y2w", "15d or 10GiB"); undefined when no time part. */
export function parseRetention(text: string): number | undefined {
  const m = /^((?:\d+(?:ms|[smhdwy]))+)/.exec(text.trim());
  if (!m) return undefined;
  let total = 0;
  for (const p of m[1].matchAll(/(\d+)(ms|[smhdwy])/g)) total += Number(p[1]) * UNIT_MS[p[2]];
  return total;
}
