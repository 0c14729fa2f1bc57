// The whole stack on the real one-node SLURM cluster: alice's job burns CPU, writes and reads files and sends
// over TCP (eBPF counts it), holds a GPU (fake nvidia-smi, DCGM stand-in); the exporter, Prometheus with the
// rules `ceems tool` generates, the API server on real sacct with its updater, and the LB. Checked: every
// recorded series the rules promise, the unit's aggregates in the API, every panel of the three dashboards
// (user ones through the LB as alice, the cluster view as an admin), and cacct.

import { join } from "node:path";
import { assert, assertEquals, assertMatch } from "../helpers/assert.ts";
import { writeScript } from "../helpers/fake_tools.ts";
import { type CeemsProcess, runCeems, startCeems } from "../helpers/process.ts";
import { startPrometheus } from "../helpers/prometheus_server.ts";
import { ensureUsers, sh, startSlurmCluster } from "../helpers/slurm_cluster.ts";
import { ceemsE2eDir } from "../collectors/ceems_fixtures.ts";
import { startDcgmFixture } from "../../scripts/demo/dcgm_fixture.ts";
import { DASHBOARDS } from "../../dashboards/src/all.ts";
import { type PanelContext, type PanelResult, resolveVariables, runPanels } from "../dashboards/panels.ts";
import { parse as parseYaml, stringify } from "yaml";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const NODE_WATTS = 480;
const ADMIN = "ceems-admin";

async function until<T>(what: string, f: () => Promise<T | undefined>, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const v = await f();
    if (v !== undefined) return v;
    await sleep(500);
  }
  throw new Error(`timed out waiting for ${what}${missing.length ? `: missing ${missing.join(", ")}` : ""}`);
}

/** What the last check of `until` found missing. */
let missing: string[] = [];

/** Resolves when every query has a result (recording the missing ones). */
async function allPresent(url: string, queries: string[]): Promise<true | undefined> {
  missing = [];
  for (const q of queries) if (!(await query(url, q)).length) missing.push(q);
  return missing.length ? undefined : true;
}

async function query(url: string, q: string): Promise<{ metric: Record<string, string>; value: [number, string] }[]> {
  const r = await fetch(`${url}/api/v1/query?query=${encodeURIComponent(q)}`);
  const j = await r.json();
  if (j.status !== "success") throw new Error(`${q}: ${JSON.stringify(j)}`);
  return j.data.result;
}

/** Accepts TCP connections, reads them to the end and answers with as many bytes. */
function echoServer(): { port: number; close: () => void } {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  (async () => {
    for await (const c of l) {
      (async () => {
        const buf = new Uint8Array(65536);
        try {
          for (let n = await c.read(buf); n !== null; n = await c.read(buf)) await c.write(buf.subarray(0, n));
        } catch { /* peer gone */ }
        c.close();
      })();
    }
  })().catch(() => {});
  return { port: (l.addr as Deno.NetAddr).port, close: () => l.close() };
}

/** The recorded series every part of the dashboards reads, for alice's job. */
const UNIT_SERIES = [
  "uuid:ceems_cpu_usage:ratio_irate",
  "uuid:ceems_cpu_memory_usage:ratio",
  "uuid:ceems_host_power_watts:pue",
  "uuid:ceems_host_emissions_g_s:pue",
  "uuid:ceems_gpu_usage:ratio",
  "uuid:ceems_gpu_memory_usage:ratio",
  "uuid:ceems_gpu_power_watts:pue",
  "uuid:ceems_gpu_emissions_g_s:pue",
  "uuid:ceems_gpu_sm_active:ratio",
  "uuid:ceems_io_read_bytes:irate",
  "uuid:ceems_io_write_bytes:irate",
  "uuid:ceems_io_read_requests:irate",
  "uuid:ceems_net_ingress_bytes:irate",
  "uuid:ceems_net_egress_bytes:irate",
  "uuid:ceems_net_egress_packets:irate",
];
const JOB_SERIES = [
  "job:ceems_cpu_usage:avg_ratio_irate",
  "job:ceems_cpu_memory_usage:avg_ratio",
  "job:ceems_host_power_watts:pue",
  "job:ceems_host_emissions_g_s:pue",
  "job:ceems_gpu_power_watts:pue",
  "job:ceems_gpu_usage:avg",
  "job:ceems_gpu_emissions_g_s:pue",
  "job:ceems_io_read_bytes:sum_irate",
  "job:ceems_net_ingress_bytes:sum_irate",
];

Deno.test({
  name: "real SLURM node: rules record every series, the API fills aggregates, every dashboard panel has data",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    assertEquals(Deno.uid(), 0, "the SLURM harness needs root");
    const e2e = ceemsE2eDir();
    assert(e2e, "CEEMS e2e fixtures (nvidia-smi recording) not found: set CEEMS_E2E_DIR");
    const work = Deno.makeTempDirSync({ prefix: "ceems-stack-e2e-" });
    Deno.chmodSync(work, 0o755);
    const smiXml = join(work, "smi.xml");
    Deno.copyFileSync(join(e2e, "tools/nvidia-smi_--query_--xml-format.xml"), smiXml);
    Deno.chmodSync(smiXml, 0o644);
    const smi = writeScript(work, "nvidia-smi", `exec /bin/cat ${smiXml}`);
    const dcmi = writeScript(
      work,
      "ipmi-dcmi",
      `echo "Current Power                        : ${NODE_WATTS} Watts"\necho "Power Measurement                    : Active"`,
    );
    const uuids = [...Deno.readTextFileSync(smiXml).matchAll(/<uuid>([^<]+)<\/uuid>/g)].map((m) => m[1]);
    const echo = echoServer();
    await ensureUsers(["alice", "bob"]);
    const cluster = await startSlurmCluster({ ceemsproj1: ["alice"], ceemsproj2: ["bob"] }, { cgroups: true });
    const procs: CeemsProcess[] = [];
    let prom: Awaited<ReturnType<typeof startPrometheus>> | undefined;
    const dcgm = startDcgmFixture(uuids.map((uuid, index) => ({ uuid, index })));
    const jobs: string[] = [];
    try {
      // alice: CPU, file IO and TCP, holding GPU 1 (SLURM_JOB_GPUS as SLURM sets it with GRES); bob: CPU.
      const bash = join(cluster.jobDir, "work.bash");
      Deno.writeTextFileSync(
        bash,
        `end=$(($(date +%s) + 300))\nwhile [ $(date +%s) -lt $end ]; do\n` +
          `  dd if=/dev/zero of=${cluster.jobDir}/io-$SLURM_JOB_ID bs=64k count=64 2>/dev/null\n` +
          `  cat ${cluster.jobDir}/io-$SLURM_JOB_ID > /dev/null\n` +
          `  exec 3<>/dev/tcp/127.0.0.1/${echo.port}; head -c 200000 /dev/zero >&3; exec 3>&-\n` +
          `  i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done\ndone\n`,
      );
      Deno.chmodSync(bash, 0o755);
      // The GPU index in the job's environment, as SLURM sets it with GRES (read from /proc/<pid>/environ).
      const work1 = `export SLURM_JOB_GPUS=1\nexec /bin/bash ${bash}`;
      const a = await cluster.submit("alice", "ceemsproj1", { name: "ajob", seconds: 0, script: work1 });
      jobs.push(a);
      const b = await cluster.submit("bob", "ceemsproj2", {
        name: "bjob",
        seconds: 0,
        script: "end=$(($(date +%s) + 300)); while [ $(date +%s) -lt $end ]; do :; done",
      });
      jobs.push(b);
      await until("both jobs running", async () => {
        const st = await Promise.all(
          jobs.map(async (id) => (await sh(["squeue", "-h", "-j", id, "-o", "%T"])).stdout.trim()),
        );
        return st.every((s) => s === "RUNNING") ? true : undefined;
      });

      const exporter = await startCeems([
        "exporter",
        "--collector.disable-defaults",
        "--collector.slurm",
        "--collector.cpu",
        "--collector.meminfo",
        "--collector.ipmi_dcmi",
        `--collector.ipmi_dcmi.cmd=${dcmi}`,
        "--collector.emissions",
        "--collector.emissions.provider=owid",
        "--collector.cgroups.force-version=v1",
        "--collector.gpu.type=nvidia",
        `--collector.gpu.nvidia-smi-path=${smi}`,
        "--collector.ebpf.io-metrics",
        "--collector.ebpf.network-metrics",
      ], { readyTimeoutMs: 60_000 });
      procs.push(exporter);
      const rulesDir = join(work, "rules");
      Deno.mkdirSync(rulesDir);
      prom = await startPrometheus({
        config: stringify({
          global: { scrape_interval: "1s", evaluation_interval: "1s" },
          rule_files: [join(rulesDir, "*.rules")],
          scrape_configs: [
            { job_name: "ceems", static_configs: [{ targets: [`127.0.0.1:${exporter.port}`] }] },
            { job_name: "dcgm", static_configs: [{ targets: [`127.0.0.1:${dcgm.port}`] }] },
          ],
        }),
        args: ["--web.enable-lifecycle"],
      });
      const promUrl = prom.url;
      const t0 = Date.now() / 1000;
      await until("the job's CPU, IO, network and GPU series", () =>
        allPresent(promUrl, [
          `ceems_compute_unit_cpu_user_seconds_total{uuid="${a}"}`,
          `ceems_compute_unit_gpu_index_flag{uuid="${a}"}`,
          `ceems_ebpf_read_bytes_total{uuid="${a}"}`,
          `ceems_ebpf_egress_bytes_total{uuid="${a}"}`,
          "DCGM_FI_DEV_POWER_USAGE_INSTANT",
          'ceems_emissions_gCo2_kWh{country_code="FR"}',
          "ceems_ipmi_dcmi_current_watts",
        ]));

      // Rules from the tool, loaded into Prometheus: every series the dashboards read is recorded.
      const gen = await runCeems([
        "tool",
        "tsdb",
        "create-recording-rules",
        `--url=${promUrl}`,
        "--pue=1.1",
        "--country-code=FR",
        `--output-dir=${rulesDir}`,
      ]);
      assertEquals(gen.code, 0, gen.stderr);
      assertEquals(
        [...Deno.readDirSync(rulesDir)].map((e) => e.name).sort(),
        ["ceems.rules", "dcgm-gpu.rules"],
        gen.stderr,
      );
      await (await fetch(`${promUrl}/-/reload`, { method: "POST" })).body?.cancel();
      await until(
        "every recorded series",
        () => allPresent(promUrl, [...UNIT_SERIES.map((r) => `${r}{uuid="${a}"}`), ...JOB_SERIES]),
      );
      const unitPower = (await query(promUrl, "sum(uuid:ceems_host_power_watts:pue)"))[0];
      const jobPower = (await query(promUrl, 'job:ceems_host_power_watts:pue{job="ceems"}'))[0];
      assert(
        Number(unitPower.value[1]) > 0 && Number(unitPower.value[1]) <= Number(jobPower.value[1]) * 1.01,
        `units' host power ${unitPower.value[1]} W within the node's ${jobPower.value[1]} W`,
      );
      assert(Number(jobPower.value[1]) <= 1.1 * NODE_WATTS + 1e-9, `node host power ${jobPower.value[1]} W`);
      const io = await query(promUrl, `sum(uuid:ceems_io_write_bytes:irate{uuid="${a}"})`);
      assert(Number(io[0].value[1]) > 0, "alice's job writes");

      // API server on real sacct, with the updater's queries from the tool; the LB asks it for ownership.
      const now = Math.floor(Date.now() / 1000);
      const upd = await runCeems([
        "tool",
        "tsdb",
        "create-ceems-tsdb-updater-queries",
        `--url=${promUrl}`,
        `--start=${now - 600}`,
        `--end=${now + 60}`,
      ]);
      assertEquals(upd.code, 0, upd.stderr);
      const apiCfg = join(work, "api.yml");
      Deno.writeTextFileSync(
        apiCfg,
        stringify({
          ceems_api_server: {
            data: {
              path: join(work, "api-data"),
              update_from: new Date(Date.now() - 10 * 60_000).toISOString().slice(0, 16) + "Z",
              update_interval: "5s",
            },
            admin: { users: [ADMIN] },
          },
          clusters: [{ id: "slurm-0", manager: "slurm", updaters: ["tsdb"], cli: { path: "/usr/bin" } }],
          updaters: [{ id: "tsdb", updater: "tsdb", web: { url: promUrl }, extra_config: parseYaml(upd.stdout) }],
        }),
      );
      const api = await startCeems(["api", `--config.file=${apiCfg}`]);
      procs.push(api);
      const apiGet = async (path: string, user: string) =>
        (await (await fetch(`${api.base}${path}`, { headers: { "X-Grafana-User": user } })).json()).data;
      await until("alice's job with aggregates in the API", async () => {
        const u = await apiGet(`/api/v1/units?cluster_id=slurm-0&running&uuid=${a}`, "alice");
        const ok = u?.[0] &&
          [
            "total_cpu_energy_usage_kwh",
            "total_gpu_energy_usage_kwh",
            "total_cpu_emissions_gms",
            "total_io_write_stats",
            "total_egress_stats",
          ]
            .every((k) => u[0][k] && Object.keys(u[0][k]).length);
        return ok ? true : undefined;
      }, 90_000);
      Deno.writeTextFileSync(
        join(work, "lb.yml"),
        stringify({
          ceems_lb: { backends: [{ id: "slurm-0", tsdb: [{ web: { url: promUrl } }] }] },
          ceems_api_server: { web: { url: api.base } },
        }),
      );
      const lb = await startCeems(["lb", `--config.file=${join(work, "lb.yml")}`], {
        fetchInit: { headers: { "X-Ceems-Cluster-Id": "slurm-0" } },
      });
      procs.push(lb);

      // Every panel of every dashboard, as Grafana would run it over the last minutes.
      const toS = Date.now() / 1000;
      const figures: string[] = [];
      const failures: string[] = [];
      for (const d of DASHBOARDS) {
        const dash = JSON.parse(Deno.readTextFileSync(join(Deno.cwd(), "dashboards", d.file)));
        const ctx: PanelContext = {
          lbUrl: lb.base,
          apiUrl: api.base,
          user: d.audience === "admin" ? ADMIN : "alice",
          cluster: "slurm-0",
          vars: { jobid: a, provider: "owid", country_code: "FR" },
          fromS: Math.floor(t0),
          toS,
          apiToS: toS + 900,
          intervalS: 2,
          scrapeS: 1,
        };
        const multi = await resolveVariables(dash, ctx);
        for (const [k, v] of Object.entries(multi)) assert(v.length, `${d.file}: variable ${k} has no value`);
        const results: PanelResult[] = await runPanels(dash, ctx, multi);
        const withData = results.filter((r) => r.ok).length;
        figures.push(`${d.file}: ${results.length} panels, ${withData} with data`);
        for (const r of results.filter((r) => !r.ok)) {
          failures.push(`${d.file} ${r.title}: ${JSON.stringify(r.targets)}`);
        }
      }
      console.log(`figures: ${figures.join("; ")}`);
      assertEquals(failures, [], "every panel returns data");
      // bob cannot look at alice's job through the LB.
      const denied = await fetch(
        `${lb.base}/api/v1/query?query=${encodeURIComponent(`uuid:ceems_host_power_watts:pue{uuid="${a}"}`)}`,
        {
          headers: { "X-Grafana-User": "bob", "X-Ceems-Cluster-Id": "slurm-0" },
        },
      );
      await denied.body?.cancel();
      assertEquals(denied.status, 403);

      // cacct as alice: her job with its energy.
      const home = join(work, "cacct");
      Deno.mkdirSync(join(home, "ceems"), { recursive: true });
      Deno.writeTextFileSync(
        join(home, "ceems", "config.yml"),
        stringify({ ceems_api_server: { cluster_id: "slurm-0", web: { url: api.base } } }),
      );
      Deno.chmodSync(home, 0o755);
      Deno.chmodSync(join(home, "ceems"), 0o755);
      const ids = async (flag: string) => Number((await sh(["id", flag, "alice"])).stdout.trim());
      const cacct = await runCeems(["cacct", "--format=jobid,account,hostenergy,gpuenergy"], {
        env: { XDG_CONFIG_HOME: home },
        uid: await ids("-u"),
        gid: await ids("-g"),
      });
      assertEquals(cacct.code, 0, cacct.stderr);
      assertMatch(cacct.stdout, new RegExp(`│ ${a} +│ ceemspro │ \\d\\.\\d{6} │ \\d\\.\\d{6} │`));
    } finally {
      for (const id of jobs) await sh(["scancel", id]);
      for (const p of procs.reverse()) await p.stop();
      if (prom) await prom.stop();
      await dcgm.stop();
      echo.close();
      await cluster.stop();
      Deno.removeSync(work, { recursive: true });
    }
  },
});
