// Real Prometheus for tests: writes synthetic samples as OpenMetrics, backfills them with
// `promtool tsdb create-blocks-from openmetrics` before start-up (queryable at once), runs it on a free port.

import { join } from "node:path";
import bcrypt from "bcryptjs";
import { freePort } from "./process.ts";

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
  const dir = Deno.makeTempDirSync({ prefix: "ceems-test-prom-" });
  const data = join(dir, "data");
  Deno.mkdirSync(data);
  const si = opts.scrapeInterval ?? "15s";
  Deno.writeTextFileSync(
    join(dir, "prometheus.yml"),
    `global:\n  scrape_interval: ${si}\n  evaluation_interval: ${si}\nscrape_configs: []\n`,
  );
  if (opts.samples?.length) {
    const om = join(dir, "samples.om");
    Deno.writeTextFileSync(om, toOpenMetrics(opts.samples));
    const out = await new Deno.Command("promtool", {
      args: ["tsdb", "create-blocks-from", "openmetrics", om, data],
      stdout: "piped",
      stderr: "piped",
    }).output();
    if (out.code !== 0) {
      Deno.removeSync(dir, { recursive: true });
      throw new Error(`promtool backfill failed: ${new TextDecoder().decode(out.stderr)}`);
    }
  }
  const extra = [...(opts.extraArgs ?? [])];
  const probeHeaders: Record<string, string> = {};
  if (opts.basicAuth) {
    const { user, password } = opts.basicAuth;
    Deno.writeTextFileSync(
      join(dir, "web.yml"),
      `basic_auth_users:\n  ${user}: ${bcrypt.hashSync(password, 4)}\n`,
    );
    extra.push(`--web.config.file=${join(dir, "web.yml")}`);
    probeHeaders.Authorization = "Basic " + btoa(`${user}:${password}`);
  }
  const port = freePort();
  const child = new Deno.Command("prometheus", {
    args: [
      `--config.file=${join(dir, "prometheus.yml")}`,
      `--storage.tsdb.path=${data}`,
      `--web.listen-address=127.0.0.1:${port}`,
      "--storage.tsdb.retention.time=3650d",
      "--web.enable-admin-api",
      ...extra,
    ],
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const logs: Uint8Array[] = [];
  const drained = (async () => {
    for await (const c of child.stderr) logs.push(c);
  })();
  const url = `http://127.0.0.1:${port}`;
  const stop = async () => {
    try {
      Deno.kill(child.pid, "SIGTERM");
    } catch { /* gone */ }
    await child.status;
    await drained;
    Deno.removeSync(dir, { recursive: true });
  };
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    try {
      const r = await fetch(`${url}/-/ready`, { headers: probeHeaders });
      await r.body?.cancel();
      if (r.ok) return { url, port, dir, pid: child.pid, stop };
    } catch { /* not yet */ }
    await new Promise((r) => setTimeout(r, 100));
  }
  await stop();
  throw new Error(`prometheus did not become ready:\n${new TextDecoder().decode(logs.at(-1) ?? new Uint8Array())}`);
}
