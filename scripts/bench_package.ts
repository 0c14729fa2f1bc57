// Benchmark (root): resident memory of the installed exporter service (the .deb's unit, as systemd starts it, and
// without its read-only system trees) beside Debian's node_exporter in one run, anonymous and file-backed apart.

import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { VERSION } from "../common/version.ts";
import { freePort } from "../tests/helpers/process.ts";
import { startUnit, unitStart } from "../tests/helpers/systemd_unit.ts";

const root = fileURLToPath(new URL("../", import.meta.url));
const deb = join(root, "dist", `ceems_${VERSION}_amd64.deb`);
const SCRAPES = Number(Deno.env.get("BENCH_SCRAPES") ?? 60);

/** The memory lines of /proc/<pid>/status, in KiB. */
function memory(pid: number): Record<string, number> {
  const st = Deno.readTextFileSync(`/proc/${pid}/status`);
  const out: Record<string, number> = {};
  for (const k of ["VmRSS", "RssAnon", "RssFile", "RssShmem", "VmHWM"]) {
    out[k] = Number(new RegExp(`^${k}:\\s+(\\d+) kB`, "m").exec(st)?.[1] ?? NaN);
  }
  return out;
}

function sh(cmd: string, args: string[]): { ok: boolean; out: string } {
  const r = new Deno.Command(cmd, { args, stdout: "piped", stderr: "piped" }).outputSync();
  return { ok: r.success, out: new TextDecoder().decode(r.stdout) + new TextDecoder().decode(r.stderr) };
}

/** Scrapes `url` SCRAPES times, 100 ms apart; returns the median scrape time in ms. */
async function scrape(url: string): Promise<number> {
  for (let i = 0; i < 100; i++) {
    try {
      await (await fetch(url)).body?.cancel();
      break;
    } catch {
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  const times: number[] = [];
  for (let i = 0; i < SCRAPES; i++) {
    const t = performance.now();
    const r = await fetch(url);
    await r.arrayBuffer();
    times.push(performance.now() - t);
    await new Promise((r) => setTimeout(r, 100));
  }
  return times.sort((a, b) => a - b)[Math.floor(times.length / 2)];
}

interface Row {
  name: string;
  ms: number;
  mem: Record<string, number>;
}

/**
 * The installed unit with `options` in CEEMS_EXPORTER_OPTIONS, as an operator sets them in /etc/default; with
 * `protectSystem` false, started as root without the unit's read-only system trees (Deno's caches in memory).
 */
async function installedExporter(name: string, options: string, protectSystem = true): Promise<Row> {
  const port = freePort();
  const defaults = "/etc/default/ceems_exporter";
  const saved = Deno.readTextFileSync(defaults);
  Deno.writeTextFileSync(defaults, `CEEMS_EXPORTER_OPTIONS="${options} --web.listen-address=127.0.0.1:${port}"\n`);
  try {
    const text = Deno.readTextFileSync("/lib/systemd/system/ceems_exporter.service");
    const unit = startUnit(unitStart(text, { protectSystem }));
    try {
      const ms = await scrape(`http://127.0.0.1:${port}/metrics`);
      return { name, ms, mem: memory(unit.pid) };
    } finally {
      await unit.stop();
    }
  } finally {
    Deno.writeTextFileSync(defaults, saved);
  }
}

async function nodeExporter(name: string, args: string[]): Promise<Row> {
  const port = freePort();
  const child = new Deno.Command("prometheus-node-exporter", {
    args: [...args, `--web.listen-address=127.0.0.1:${port}`],
    stdout: "null",
    stderr: "null",
  }).spawn();
  try {
    const ms = await scrape(`http://127.0.0.1:${port}/metrics`);
    return { name, ms, mem: memory(child.pid) };
  } finally {
    child.kill("SIGTERM");
    await child.status;
  }
}

if (import.meta.main) {
  if (Deno.uid() !== 0) {
    console.error("bench package: run as root (it installs the .deb and starts the unit as systemd would)");
    Deno.exit(2);
  }
  if (!sh("test", ["-e", deb]).ok) {
    const r = new Deno.Command(Deno.execPath(), { args: ["run", "-A", join(root, "scripts/package/main.ts")] })
      .outputSync();
    if (!r.success) Deno.exit(1);
  }
  const installed = sh("dpkg-query", ["-W", "-f=${Status}", "ceems"]).out.includes("install ok installed");
  if (!installed && !sh("dpkg", ["-i", deb]).ok) throw new Error(`dpkg -i ${deb} failed`);
  try {
    const cpuMem = "--collector.disable-defaults --collector.cpu --collector.meminfo";
    const rows = [
      await installedExporter(
        "ceems exporter (installed unit), cpu + meminfo",
        `--no-collector.slurm --no-collector.ipmi_dcmi ${cpuMem}`,
      ),
      await installedExporter(
        "same, root start without ProtectSystem (Deno's caches in memory)",
        `--no-collector.slurm --no-collector.ipmi_dcmi ${cpuMem}`,
        false,
      ),
      await nodeExporter("node_exporter 1.5, cpu + meminfo", cpuMem.split(" ")),
      await installedExporter("ceems exporter (installed unit, its collectors)", ""),
      await nodeExporter("node_exporter 1.5, its default collectors", []),
    ];
    const mib = (k: number) => (k / 1024).toFixed(1);
    console.log(`${SCRAPES} scrapes 100 ms apart each, then /proc/<pid>/status (MiB):\n`);
    console.log("| process | median scrape ms | RSS | RssAnon | RssFile | RssShmem | peak RSS (VmHWM) |");
    console.log("| --- | --- | --- | --- | --- | --- | --- |");
    for (const r of rows) {
      const m = r.mem;
      console.log(
        `| ${r.name} | ${r.ms.toFixed(1)} | ${mib(m.VmRSS)} | ${mib(m.RssAnon)} | ${mib(m.RssFile)} | ${
          mib(m.RssShmem)
        } | ${mib(m.VmHWM)} |`,
      );
    }
  } finally {
    if (!installed) sh("dpkg", ["--purge", "ceems"]);
  }
}
