// Real VictoriaMetrics for tests (Debian's victoria-metrics, single-node): started on a free port with an
// optional scrape config, fed with Prometheus exposition text carrying timestamps, and vmalert evaluating
// recording rules into it. Fresh samples are searchable at once (-search.latencyOffset=0s, force_flush).

import { join } from "node:path";
import { freePort } from "./process.ts";

/** A running server started by these helpers. */
export interface Running {
  url: string;
  port: number;
  /** Stops it (SIGTERM, then SIGKILL) and removes its directory. */
  stop(): Promise<void>;
}

/** A running VictoriaMetrics. */
export interface VictoriaMetrics extends Running {
  /** Imports exposition lines `name{labels} value timestamp_ms` and makes them searchable. */
  importText(text: string): Promise<void>;
}

/** One sample to import. */
export interface VmSample {
  name: string;
  labels: Record<string, string>;
  value: number;
  timeMs: number;
}

/** Exposition lines with millisecond timestamps, as /api/v1/import/prometheus takes them. */
export function toImportText(samples: VmSample[]): string {
  const esc = (v: string) => v.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");
  return samples.map((s) =>
    `${s.name}{${Object.entries(s.labels).map(([k, v]) => `${k}="${esc(v)}"`).join(",")}} ${s.value} ${
      Math.round(s.timeMs)
    }`
  ).join("\n") + "\n";
}

async function spawnServer(cmd: string, args: string[], dir: string, ready: string, url: string): Promise<Running> {
  const child = new Deno.Command(cmd, { args, stdout: "null", stderr: "piped" }).spawn();
  const chunks: Uint8Array[] = [];
  const drained = (async () => {
    for await (const c of child.stderr) chunks.push(c);
  })();
  const stop = async () => {
    try {
      child.kill("SIGTERM");
    } catch {
      // already gone
    }
    const t = setTimeout(() => {
      try {
        child.kill("SIGKILL");
      } catch {
        // already gone
      }
    }, 5000);
    await child.status;
    clearTimeout(t);
    await drained;
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  };
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    try {
      const r = await fetch(url + ready);
      await r.body?.cancel();
      if (r.ok) return { url, port: Number(new URL(url).port), stop };
    } catch {
      // not listening yet
    }
    const st = await Promise.race([child.status, new Promise((r) => setTimeout(() => r(null), 100))]);
    if (st) break;
  }
  await stop();
  const log = new TextDecoder().decode(new Uint8Array(chunks.flatMap((c) => [...c])));
  throw new Error(`${cmd} did not become ready:\n${log.slice(-2000)}`);
}

/**
 * Starts VictoriaMetrics. `scrapeConfig` is a Prometheus-style scrape config (VictoriaMetrics scrapes by
 * itself and serves it at /api/v1/status/config); without one, an empty config with `global` only.
 */
export async function startVictoriaMetrics(
  opts: { scrapeConfig?: string; samples?: VmSample[] } = {},
): Promise<VictoriaMetrics> {
  const dir = await Deno.makeTempDir({ prefix: "ceems-vm-" });
  const cfg = join(dir, "scrape.yml");
  await Deno.writeTextFile(cfg, opts.scrapeConfig ?? "global: {scrape_interval: 15s}\nscrape_configs: []\n");
  const port = freePort();
  const url = `http://127.0.0.1:${port}`;
  const run = await spawnServer(
    "victoria-metrics",
    [
      `-httpListenAddr=127.0.0.1:${port}`,
      `-storageDataPath=${join(dir, "data")}`,
      `-promscrape.config=${cfg}`,
      "-retentionPeriod=100y",
      "-search.latencyOffset=0s",
      "-search.disableCache",
      "-loggerLevel=ERROR",
    ],
    dir,
    "/health",
    url,
  );
  const vm: VictoriaMetrics = {
    ...run,
    async importText(text: string) {
      const r = await fetch(`${url}/api/v1/import/prometheus`, { method: "POST", body: text });
      const body = await r.text();
      if (r.status !== 204 && !r.ok) throw new Error(`import: HTTP ${r.status}: ${body}`);
      const f = await fetch(`${url}/internal/force_flush`);
      await f.body?.cancel();
    },
  };
  if (opts.samples?.length) await vm.importText(toImportText(opts.samples));
  return vm;
}

/** Starts vmalert evaluating the recording rules in `ruleFiles` against `vm` and writing the results into it. */
export async function startVmalert(vm: { url: string }, ruleFiles: string, evalInterval = "1s"): Promise<Running> {
  const dir = await Deno.makeTempDir({ prefix: "ceems-vmalert-" });
  const port = freePort();
  return await spawnServer(
    "vmalert",
    [
      `-rule=${ruleFiles}`,
      `-datasource.url=${vm.url}`,
      `-remoteWrite.url=${vm.url}`,
      `-evaluationInterval=${evalInterval}`,
      `-httpListenAddr=127.0.0.1:${port}`,
      "-remoteWrite.flushInterval=1s",
      "-loggerLevel=ERROR",
    ],
    dir,
    "/health",
    `http://127.0.0.1:${port}`,
  );
}
