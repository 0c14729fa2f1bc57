// Test harness for a real Prometheus server: backfills series with `promtool tsdb
// create-blocks-from openmetrics` into a temporary storage dir, then starts Prometheus on a free port.

import { freePort } from "./process.ts";

/** One series to backfill: metric name, labels and a value per sample index. */
export interface BackfillSeries {
  name: string;
  labels: Record<string, string>;
  value?: (i: number) => number;
}

/** A running Prometheus. */
export interface PrometheusServer {
  url: string;
  port: number;
  dir: string;
  pid: number;
  /** Stops the server (SIGTERM, then SIGKILL) and removes its directory. */
  stop(): Promise<void>;
}

const esc = (v: string) => v.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");

/**
 * Renders series as OpenMetrics text (gauges) with a sample every `stepMs` from `fromMs` to `toMs`.
 */
export function toOpenMetrics(series: BackfillSeries[], fromMs: number, toMs: number, stepMs: number): string {
  const byName = new Map<string, BackfillSeries[]>();
  for (const s of series) byName.set(s.name, [...(byName.get(s.name) ?? []), s]);
  const lines: string[] = [];
  for (const [name, list] of byName) {
    lines.push(`# HELP ${name} Backfilled test series.`, `# TYPE ${name} gauge`);
    for (const s of list) {
      const labels = Object.entries(s.labels).map(([k, v]) => `${k}="${esc(v)}"`).join(",");
      let i = 0;
      for (let t = fromMs; t <= toMs; t += stepMs, i++) {
        lines.push(`${name}{${labels}} ${s.value ? s.value(i) : i} ${(t / 1000).toFixed(3)}`);
      }
    }
  }
  lines.push("# EOF");
  return lines.join("\n") + "\n";
}

async function run(cmd: string, args: string[]): Promise<void> {
  const out = await new Deno.Command(cmd, { args, stdout: "piped", stderr: "piped" }).output();
  if (!out.success) {
    const dec = new TextDecoder();
    throw new Error(`${cmd} ${args.join(" ")} failed: ${dec.decode(out.stdout)}${dec.decode(out.stderr)}`);
  }
}

/**
 * Starts Prometheus with `openMetrics` backfilled before start-up (queryable at once). `config` is the
 * prometheus.yml text (no scrape jobs by default); `args` are extra command-line flags; `readyHeaders`
 * go with the readiness probe (credentials when `args` name a web config).
 */
export async function startPrometheus(
  opts: {
    openMetrics?: string;
    config?: string;
    args?: string[];
    readyHeaders?: Record<string, string>;
    /** "https" when `args` name a web config with TLS; `readyClient` then carries the CA (and client cert). */
    scheme?: "http" | "https";
    readyClient?: Deno.HttpClient;
  } = {},
): Promise<PrometheusServer> {
  const dir = await Deno.makeTempDir({ prefix: "ceems-prom-" });
  const data = `${dir}/data`;
  await Deno.mkdir(data);
  try {
    if (opts.openMetrics) {
      await Deno.writeTextFile(`${dir}/backfill.om`, opts.openMetrics);
      await run("promtool", ["tsdb", "create-blocks-from", "openmetrics", `${dir}/backfill.om`, data]);
    }
    await Deno.writeTextFile(`${dir}/prometheus.yml`, opts.config ?? "global: {scrape_interval: 15s}\n");
  } catch (e) {
    await Deno.remove(dir, { recursive: true });
    throw e;
  }
  const port = freePort();
  const child = new Deno.Command("prometheus", {
    args: [
      `--config.file=${dir}/prometheus.yml`,
      `--storage.tsdb.path=${data}`,
      `--web.listen-address=127.0.0.1:${port}`,
      ...(opts.args?.some((a) => a.startsWith("--storage.tsdb.retention.time"))
        ? []
        : ["--storage.tsdb.retention.time=10y"]),
      ...(opts.args ?? []),
    ],
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const errChunks: Uint8Array[] = [];
  const drained = (async () => {
    for await (const c of child.stderr) errChunks.push(c);
  })();
  const url = `${opts.scheme ?? "http"}://127.0.0.1:${port}`;
  const stop = async () => {
    try {
      child.kill("SIGTERM");
    } catch {
      // already gone
    }
    const timer = setTimeout(() => {
      try {
        child.kill("SIGKILL");
      } catch {
        // already gone
      }
    }, 5000);
    await child.status;
    clearTimeout(timer);
    await drained;
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  };
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    try {
      const r = await fetch(`${url}/-/ready`, { headers: opts.readyHeaders, client: opts.readyClient } as RequestInit);
      await r.body?.cancel();
      if (r.ok) return { url, port, dir, pid: child.pid, stop };
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  await stop();
  const log = new TextDecoder().decode(new Uint8Array(errChunks.flatMap((c) => [...c])));
  throw new Error(`prometheus did not become ready:\n${log.slice(-2000)}`);
}
