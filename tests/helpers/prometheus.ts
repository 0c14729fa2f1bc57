// Real Prometheus for tests: writes synthetic samples as OpenMetrics, backfills them with
// `promtool tsdb create-blocks-from openmetrics` before start-up (queryable at once), runs it on a free port.

import { join } from "node:path";
import bcrypt from "bcryptjs";
import { startPrometheus as startSharedPrometheus } from "./prometheus_server.ts";

/** One synthetic sample: series labels (with __name__), value, time in ms. */
export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
  timeMs: number;
}

/** A running Prometheus. */
export interface PrometheusServer {
  url: string;
  port: number;
  dir: string;
  pid: number;
  /** Stops the server by pid and removes its directory. */
  stop(): Promise<void>;
}

function seriesKey(s: Sample): string {
  const l = Object.entries(s.labels).sort(([a], [b]) => a < b ? -1 : 1);
  return `${s.name}{${l.map(([k, v]) => `${k}="${v.replace(/\\/g, "\\\\").replace(/"/g, '\\"')}"`).join(",")}}`;
}

/** Renders samples as an OpenMetrics document (series grouped, times ascending, `# EOF`). */
export function toOpenMetrics(samples: Sample[]): string {
  const byName = new Map<string, Map<string, Sample[]>>();
  for (const s of samples) {
    if (!byName.has(s.name)) byName.set(s.name, new Map());
    const k = seriesKey(s);
    const m = byName.get(s.name)!;
    if (!m.has(k)) m.set(k, []);
    m.get(k)!.push(s);
  }
  const lines: string[] = [];
  for (const [name, series] of byName) {
    lines.push(`# TYPE ${name} gauge`);
    for (const [k, ss] of series) {
      ss.sort((a, b) => a.timeMs - b.timeMs);
      for (const s of ss) lines.push(`${k} ${s.value} ${(s.timeMs / 1000).toFixed(3)}`);
    }
  }
  lines.push("# EOF");
  return lines.join("\n") + "\n";
}

/**
 * Starts Prometheus with `samples` already in its TSDB. `scrapeInterval` sets the global scrape and
 * evaluation interval reported by /api/v1/status/config. `extraArgs` are appended to the command line.
 * The process itself is managed by prometheus_server.ts, the one Prometheus harness of the tests.
 */
export async function startPrometheus(
  opts: {
    samples?: Sample[];
    scrapeInterval?: string;
    extraArgs?: string[];
    /** Require HTTP basic auth with these credentials (Prometheus web config). */
    basicAuth?: { user: string; password: string };
  } = {},
): Promise<PrometheusServer> {
  const si = opts.scrapeInterval ?? "15s";
  const args = ["--storage.tsdb.retention.time=3650d", "--web.enable-admin-api", ...(opts.extraArgs ?? [])];
  let webDir: string | undefined;
  const readyHeaders: Record<string, string> = {};
  if (opts.basicAuth) {
    const { user, password } = opts.basicAuth;
    webDir = Deno.makeTempDirSync({ prefix: "ceems-test-prom-web-" });
    Deno.writeTextFileSync(join(webDir, "web.yml"), `basic_auth_users:\n  ${user}: ${bcrypt.hashSync(password, 4)}\n`);
    args.push(`--web.config.file=${join(webDir, "web.yml")}`);
    readyHeaders.Authorization = "Basic " + btoa(`${user}:${password}`);
  }
  try {
    const server = await startSharedPrometheus({
      openMetrics: opts.samples?.length ? toOpenMetrics(opts.samples) : undefined,
      config: `global:\n  scrape_interval: ${si}\n  evaluation_interval: ${si}\nscrape_configs: []\n`,
      args,
      readyHeaders,
    });
    return {
      ...server,
      async stop() {
        await server.stop();
        if (webDir) Deno.removeSync(webDir, { recursive: true });
      },
    };
  } catch (e) {
    if (webDir) Deno.removeSync(webDir, { recursive: true });
    throw e;
  }
}
