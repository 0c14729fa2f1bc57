// Benchmark: median scrape latency and resident memory of `ceems exporter` with only the cpu and
// meminfo collectors beside Debian's prometheus-node-exporter with the same two, on the real /proc.

import { fileURLToPath } from "node:url";
import { type BenchDenoCache, packagedDenoCache } from "./bench_deno_cache.ts";
import { freePort } from "./free_port.ts";

const root = fileURLToPath(new URL("../", import.meta.url));
const scrapes = Number(Deno.env.get("BENCH_SCRAPES") ?? 300);

async function waitReady(url: string) {
  for (let i = 0; i < 200; i++) {
    try {
      const r = await fetch(url);
      await r.body?.cancel();
      return;
    } catch {
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  throw new Error(`${url} never answered`);
}

function rssKiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(Deno.readTextFileSync(`/proc/${pid}/status`));
  return m ? Number(m[1]) : NaN;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

interface Target {
  name: string;
  child: Deno.ChildProcess;
  url: string;
  times: number[];
}

/** Starts `cmd args` listening on a free port (`cache`: run with Deno's caches as the package does). */
function start(name: string, command: string, argv: string[], cache?: BenchDenoCache): Target {
  const port = freePort();
  const { cmd, args } = cache
    ? cache.command(command, [...argv, `--web.listen-address=127.0.0.1:${port}`])
    : { cmd: command, args: [...argv, `--web.listen-address=127.0.0.1:${port}`] };
  const child = new Deno.Command(cmd, {
    args,
    cwd: root,
    env: cache?.env,
    stdout: "null",
    stderr: "null",
  }).spawn();
  return { name, child, url: `http://127.0.0.1:${port}/metrics`, times: [] };
}

const nodeExporter = "prometheus-node-exporter";
try {
  new Deno.Command(nodeExporter, { args: ["--version"], stdout: "null", stderr: "null" }).outputSync();
} catch {
  console.error(`bench: ${nodeExporter} is not installed (apt-get install prometheus-node-exporter)`);
  Deno.exit(1);
}

const cache = packagedDenoCache(root);
const targets = [
  start("ceems exporter", Deno.execPath(), [
    "run",
    "-A",
    "main.ts",
    "exporter",
    "--collector.disable-defaults",
    "--collector.cpu",
    "--collector.meminfo",
    ...(Deno.env.get("BENCH_CEEMS_ARGS")?.split(" ").filter((a) => a) ?? []),
  ], cache),
  start("node_exporter 1.5", nodeExporter, ["--collector.disable-defaults", "--collector.cpu", "--collector.meminfo"]),
];
try {
  for (const t of targets) await waitReady(t.url);
  // Warm up, then interleave scrapes so both see the same machine noise.
  for (let i = 0; i < 20; i++) for (const t of targets) await (await fetch(t.url)).text();
  for (let i = 0; i < scrapes; i++) {
    for (const t of targets) {
      const t0 = performance.now();
      const body = await (await fetch(t.url)).text();
      t.times.push(performance.now() - t0);
      if (!body.includes("cpu_seconds_total")) throw new Error(`${t.name} returned no cpu metrics`);
    }
  }
  const [ours, peer] = targets.map((t) => ({ name: t.name, p50: median(t.times), rss: rssKiB(t.child.pid) / 1024 }));
  console.log(`scrapes per target: ${scrapes} (after 20 warm-up), real /proc, cpu + meminfo collectors`);
  console.log("ceems: Deno's caches filled from the checkout as the package's postinst does, read-only.");
  console.log(`| target | median scrape (ms) | resident memory (MiB) |`);
  console.log(`|---|---|---|`);
  for (const r of [ours, peer]) console.log(`| ${r.name} | ${r.p50.toFixed(2)} | ${r.rss.toFixed(1)} |`);
  console.log(
    `| ratio ours/peer | ${(ours.p50 / peer.p50).toFixed(2)}x | ${(ours.rss / peer.rss).toFixed(2)}x |`,
  );
  console.log(`goal: scrape no slower than node_exporter (ratio <= 1.00): ${ours.p50 <= peer.p50 ? "met" : "NOT met"}`);
} finally {
  for (const t of targets) {
    try {
      t.child.kill("SIGTERM");
    } catch { /* gone */ }
    await t.child.status;
  }
  cache.remove();
}
