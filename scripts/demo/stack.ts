// The whole CEEMS stack on one machine for the demo (and its test): the exporter on the live fixture node,
// a DCGM stand-in, Debian's Prometheus with rules from `ceems tool`, the API server on the fixture's SLURM
// jobs with its TSDB updater, the LB in front of Prometheus, and a cacct config pointing at them.

import { join } from "node:path";
import { parse as parseYaml, stringify } from "yaml";
import { exporterFlags, type FixtureNode, unpackNode } from "./fixtures.ts";
import { type SimGpu, startDcgmFixture } from "./dcgm_fixture.ts";
import { freePort } from "../free_port.ts";
import { ceemsCommand, CHILD_ENV, type Proc, start, stopAll, waitReady } from "./procs.ts";
import { type DemoJob, demoJobs, writeSlurmTools } from "./sacct.ts";
import { startTicker } from "./ticker.ts";

/** Options of the stack. */
export interface StackOptions {
  /** CEEMS's e2e data directory (fixtures.tar.gz, tools/). */
  e2e: string;
  /** Work directory (logs, data, configs); created, removed by stop() unless `keep`. */
  dir: string;
  /** Login name owning the demo's own jobs (cacct's user). */
  me: string;
  /** The three other job owners. */
  others?: string[];
  /** Admin user of the API server. */
  admin?: string;
  scrapeIntervalS?: number;
  updateInterval?: string;
  keep?: boolean;
  /** Progress lines (stderr by default). */
  say?: (line: string) => void;
}

/** A running stack. */
export interface Stack {
  dir: string;
  cluster: string;
  jobs: DemoJob[];
  urls: { exporter: string; dcgm: string; prometheus: string; api: string; lb: string };
  /** XDG_CONFIG_HOME holding ceems/config.yml for cacct. */
  cacctConfigHome: string;
  rulesDir: string;
  stop(): Promise<void>;
}

/** The fixture's GPUs as the DCGM stand-in reports them (GPU-956348bc… in MIG mode, instances 1 and 5). */
export function fixtureGpus(n: FixtureNode): SimGpu[] {
  const out: SimGpu[] = [];
  n.gpuUuids.forEach((uuid, index) => {
    if (uuid.startsWith("GPU-956348bc")) out.push({ uuid, index, migInstance: "1" }, { uuid, index, migInstance: "5" });
    else out.push({ uuid, index });
  });
  return out;
}

async function promQuery(
  url: string,
  q: string,
): Promise<{ metric: Record<string, string>; value: [number, string] }[]> {
  const r = await fetch(`${url}/api/v1/query?query=${encodeURIComponent(q)}`);
  const j = await r.json();
  return j.status === "success" ? j.data.result : [];
}

async function until(what: string, f: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await f()) return;
    await new Promise((r) => setTimeout(r, 500));
  }
  throw new Error(`timed out waiting for ${what}`);
}

async function runCeemsTool(args: string[]): Promise<string> {
  const [cmd, a] = ceemsCommand(["tool", ...args]);
  const o = await new Deno.Command(cmd, { args: a, stdin: "null", stdout: "piped", stderr: "piped", env: CHILD_ENV })
    .output();
  const dec = new TextDecoder();
  if (!o.success) throw new Error(`ceems tool ${args.slice(0, 2).join(" ")}: ${dec.decode(o.stderr)}`);
  return dec.decode(o.stdout);
}

/** Starts every component; on failure stops what was started and rethrows. */
export async function startStack(o: StackOptions): Promise<Stack> {
  const say = o.say ?? ((l: string) => console.error(l));
  const cluster = "demo";
  const scrape = o.scrapeIntervalS ?? 5;
  await Deno.mkdir(o.dir, { recursive: true });
  const logs = join(o.dir, "logs");
  await Deno.mkdir(logs, { recursive: true });
  const procs: Proc[] = [];
  let stopTicker = () => {};
  let dcgm: { port: number; stop: () => Promise<void> } | undefined;
  const stop = async () => {
    stopTicker();
    await stopAll(procs);
    await dcgm?.stop();
    if (!o.keep) await Deno.remove(o.dir, { recursive: true }).catch(() => {});
  };
  try {
    say("unpacking CEEMS's fixture node …");
    const node = await unpackNode(o.e2e, o.dir);
    stopTicker = startTicker(node.root, node.powerFile);
    const jobs = demoJobs(o.me, o.others);
    const startMs = Date.now() - 3600e3;
    writeSlurmTools(node.bin, jobs, startMs);

    const ports = { exporter: freePort(), prometheus: freePort(), api: freePort(), lb: freePort() };
    const urls = {
      exporter: `http://127.0.0.1:${ports.exporter}`,
      dcgm: "",
      prometheus: `http://127.0.0.1:${ports.prometheus}`,
      api: `http://127.0.0.1:${ports.api}`,
      lb: `http://127.0.0.1:${ports.lb}`,
    };
    say("starting the exporter and the DCGM stand-in …");
    const [ec, ea] = ceemsCommand([
      "exporter",
      ...exporterFlags(node),
      `--web.listen-address=127.0.0.1:${ports.exporter}`,
    ]);
    const exporter = start("exporter", ec, ea, logs);
    procs.push(exporter);
    await waitReady(exporter, `${urls.exporter}/health`);
    dcgm = startDcgmFixture(fixtureGpus(node));
    urls.dcgm = `http://127.0.0.1:${dcgm.port}`;

    say("starting Prometheus …");
    const rulesDir = join(o.dir, "rules");
    await Deno.mkdir(rulesDir, { recursive: true });
    const promCfg = join(o.dir, "prometheus.yml");
    await Deno.writeTextFile(
      promCfg,
      stringify({
        global: { scrape_interval: `${scrape}s`, evaluation_interval: `${scrape}s` },
        rule_files: [join(rulesDir, "*.rules")],
        scrape_configs: [
          { job_name: "ceems", static_configs: [{ targets: [`127.0.0.1:${ports.exporter}`] }] },
          { job_name: "dcgm", static_configs: [{ targets: [`127.0.0.1:${dcgm.port}`] }] },
        ],
      }),
    );
    const prometheus = start("prometheus", "prometheus", [
      `--config.file=${promCfg}`,
      `--storage.tsdb.path=${join(o.dir, "prometheus-data")}`,
      `--web.listen-address=127.0.0.1:${ports.prometheus}`,
      "--web.enable-lifecycle",
    ], logs);
    procs.push(prometheus);
    await waitReady(prometheus, `${urls.prometheus}/-/ready`);
    await until(
      "the first scrapes",
      async () =>
        (await promQuery(urls.prometheus, 'up{job=~"ceems|dcgm"} == 1')).length === 2 &&
        (await promQuery(urls.prometheus, "ceems_compute_unit_gpu_index_flag")).length > 0,
      60_000,
    );

    say("generating recording rules with `ceems tool tsdb create-recording-rules` …");
    await runCeemsTool([
      "tsdb",
      "create-recording-rules",
      `--url=${urls.prometheus}`,
      "--country-code=FR",
      `--output-dir=${rulesDir}`,
    ]);
    await (await fetch(`${urls.prometheus}/-/reload`, { method: "POST" })).body?.cancel();
    const recorded = [
      "uuid:ceems_cpu_usage:ratio_irate",
      "uuid:ceems_cpu_memory_usage:ratio",
      "uuid:ceems_host_power_watts:pue",
      "uuid:ceems_host_emissions_g_s:pue",
      "uuid:ceems_gpu_usage:ratio",
      "uuid:ceems_gpu_power_watts:pue",
      "uuid:ceems_gpu_emissions_g_s:pue",
    ];
    // Two evaluations of every rule: the API server's first update (at its start) then finds data.
    await until("recorded per-unit series", async () => {
      for (const r of recorded) {
        const n = await promQuery(urls.prometheus, `count_over_time(${r}[5m])`);
        if (!n.length || n.some((x) => Number(x.value[1]) < 2)) return false;
      }
      return true;
    }, 60_000);
    const now = Math.floor(Date.now() / 1000) + 60;
    const queries = (parseYaml(
      await runCeemsTool([
        "tsdb",
        "create-ceems-tsdb-updater-queries",
        `--url=${urls.prometheus}`,
        `--start=${now - 300}`,
        `--end=${now}`,
      ]),
    ) as { queries: unknown }).queries;

    say("starting the API server and the load balancer …");
    const apiCfg = join(o.dir, "ceems_api_server.yml");
    await Deno.writeTextFile(
      apiCfg,
      stringify({
        ceems_api_server: {
          data: {
            path: join(o.dir, "api-data"),
            update_from: new Date(Date.now() - 10 * 60_000).toISOString().slice(0, 16) + "Z",
            update_interval: o.updateInterval ?? "1m",
            max_update_interval: "1h",
          },
          admin: { users: [o.admin ?? "admin"] },
        },
        clusters: [{ id: cluster, manager: "slurm", updaters: ["tsdb"], cli: { path: node.bin } }],
        updaters: [{ id: "tsdb", updater: "tsdb", web: { url: urls.prometheus }, extra_config: { queries } }],
      }),
    );
    const [ac, aa] = ceemsCommand(["api", `--config.file=${apiCfg}`, `--web.listen-address=127.0.0.1:${ports.api}`]);
    const api = start("api", ac, aa, logs);
    procs.push(api);
    await waitReady(api, `${urls.api}/health`);
    const lbCfg = join(o.dir, "ceems_lb.yml");
    await Deno.writeTextFile(
      lbCfg,
      stringify({
        ceems_lb: { backends: [{ id: cluster, tsdb: [{ web: { url: urls.prometheus } }] }] },
        ceems_api_server: { web: { url: urls.api } },
      }),
    );
    const [lc, la] = ceemsCommand(["lb", `--config.file=${lbCfg}`, `--web.listen-address=127.0.0.1:${ports.lb}`]);
    const lb = start("lb", lc, la, logs);
    procs.push(lb);
    await waitReady(lb, `${urls.lb}/health`, { headers: { "X-Ceems-Cluster-Id": cluster } });

    const cacctConfigHome = join(o.dir, "cacct-config");
    await Deno.mkdir(join(cacctConfigHome, "ceems"), { recursive: true });
    await Deno.writeTextFile(
      join(cacctConfigHome, "ceems", "config.yml"),
      stringify({
        ceems_api_server: { cluster_id: cluster, web: { url: urls.api } },
        tsdb: {
          web: { url: urls.lb },
          queries: {
            cpu_usage: 'uuid:ceems_cpu_usage:ratio_irate{uuid="%s"}',
            host_power: 'uuid:ceems_host_power_watts:pue{uuid="%s"}',
            gpu_power: 'uuid:ceems_gpu_power_watts:pue{uuid="%s"}',
          },
        },
      }),
    );
    await Deno.chmod(o.dir, 0o755);
    for (const d of [cacctConfigHome, join(cacctConfigHome, "ceems")]) await Deno.chmod(d, 0o755);
    return { dir: o.dir, cluster, jobs, urls, cacctConfigHome, rulesDir, stop };
  } catch (e) {
    await stop();
    throw e;
  }
}
