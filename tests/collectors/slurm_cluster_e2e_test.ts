// The exporter on a real one-node SLURM cluster (cgroup/v1 plugins): jobs of two unprivileged users, read by
// an exporter started as root and dropped to nobody; then Prometheus with generated per-job power rules.

import { join } from "node:path";
import { assert, assertEquals, assertMatch } from "../helpers/assert.ts";
import { writeScript } from "../helpers/fake_tools.ts";
import { type CeemsProcess, parseExposition, runCeems, startCeems } from "../helpers/process.ts";
import { startPrometheus } from "../helpers/prometheus_server.ts";
import { sh, startSlurmCluster } from "../helpers/slurm_cluster.ts";
import { ceemsE2eDir } from "./ceems_fixtures.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const MIB = 1024 * 1024;
/** Memory the allocation job touches. */
const ALLOC_MIB = 200;
/** Node power the fake DCMI tool reports. */
const NODE_WATTS = 332;

/** C program: allocates and touches `argv[1]` MiB, then sleeps `argv[2]` seconds. */
const ALLOC_C = `#include <stdlib.h>
#include <string.h>
#include <unistd.h>
int main(int argc, char **argv) {
  size_t n = (size_t)atoi(argv[1]) * 1024 * 1024;
  char *p = malloc(n);
  if (!p) return 1;
  memset(p, 1, n);
  sleep(atoi(argv[2]));
  return p[n - 1] == 1 ? 0 : 2;
}
`;

async function scrape(p: CeemsProcess): Promise<Map<string, number>> {
  const r = await fetch(`${p.base}/metrics`);
  return parseExposition(await r.text());
}

/** Values of `family` whose labels include every `want` pair. */
function pick(m: Map<string, number>, family: string, want: Record<string, string>): number[] {
  const out: number[] = [];
  for (const [k, v] of m) {
    if (!k.startsWith(family + "{")) continue;
    if (Object.entries(want).every(([l, val]) => k.includes(`${l}="${val}"`))) out.push(v);
  }
  return out;
}

async function until<T>(what: string, f: () => Promise<T | undefined>, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const v = await f();
    if (v !== undefined) return v;
    await sleep(500);
  }
  throw new Error(`timed out waiting for ${what}`);
}

/** State of a job in the controller (squeue), "" once it has left the queue. */
async function jobState(id: string): Promise<string> {
  return (await sh(["squeue", "-h", "-j", id, "-o", "%T"])).stdout.trim();
}

async function promQuery(
  url: string,
  q: string,
): Promise<{ metric: Record<string, string>; value: [number, string] }[]> {
  const r = await fetch(`${url}/api/v1/query?query=${encodeURIComponent(q)}`);
  const j = await r.json();
  if (j.status !== "success") throw new Error(`query ${q}: ${JSON.stringify(j)}`);
  return j.data.result;
}

Deno.test({
  name: "exporter as root→nobody on a real SLURM cluster; Prometheus records per-job power from generated rules",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    assertEquals(Deno.uid(), 0, "the SLURM harness needs root");
    const e2e = ceemsE2eDir();
    assert(e2e, "CEEMS e2e fixtures (nvidia-smi recording) not found: set CEEMS_E2E_DIR");

    // Tools the exporter runs after its drop to nobody must be reachable by nobody.
    const tools = Deno.makeTempDirSync({ prefix: "ceems-slurm-e2e-" });
    Deno.chmodSync(tools, 0o755);
    Deno.copyFileSync(join(e2e, "tools/nvidia-smi_--query_--xml-format.xml"), join(tools, "smi.xml"));
    Deno.chmodSync(join(tools, "smi.xml"), 0o644);
    const smi = writeScript(tools, "nvidia-smi", `exec /bin/cat ${join(tools, "smi.xml")}`);
    const dcmi = writeScript(
      tools,
      "ipmi-dcmi",
      `echo "Current Power                        : ${NODE_WATTS} Watts"\necho "Power Measurement                    : Active"`,
    );
    Deno.writeTextFileSync(join(tools, "alloc.c"), ALLOC_C);
    const cc = await sh(["gcc", "-O1", "-o", join(tools, "alloc"), join(tools, "alloc.c")]);
    assertEquals(cc.code, 0, cc.stderr);
    Deno.chmodSync(join(tools, "alloc"), 0o755);

    const cluster = await startSlurmCluster({ ceemsproj1: ["alice"], ceemsproj2: ["bob"] }, { cgroups: true });
    let exporter: CeemsProcess | undefined;
    let prom: Awaited<ReturnType<typeof startPrometheus>> | undefined;
    const jobs: string[] = [];
    try {
      const uid = async (u: string) => (await sh(["id", "-u", u])).stdout.trim();
      const [aliceUid, bobUid] = [await uid("alice"), await uid("bob")];
      // alice: a CPU burn; bob: a known allocation whose environment names GPU 1 (as SLURM does with GRES).
      const burn = await cluster.submit("alice", "ceemsproj1", {
        name: "burn",
        seconds: 0,
        script: "end=$(($(date +%s) + 240)); while [ $(date +%s) -lt $end ]; do :; done",
      });
      jobs.push(burn);
      const alloc = await cluster.submit("bob", "ceemsproj2", {
        name: "alloc",
        seconds: 0,
        mem: "400M",
        script: `export SLURM_JOB_GPUS=1\nexec ${join(tools, "alloc")} ${ALLOC_MIB} 25`,
      });
      jobs.push(alloc);
      await until("both jobs running", async () => {
        const states = [await jobState(burn), await jobState(alloc)];
        return states.every((s) => s === "RUNNING") ? true : undefined;
      });
      // The job cgroups exist once slurmstepd has set them up.
      for (const [id, u] of [[burn, aliceUid], [alloc, bobUid]]) {
        await until(`cgroup of job ${id}`, () => {
          try {
            Deno.statSync(`/sys/fs/cgroup/memory/slurm_localhost/uid_${u}/job_${id}`);
            return Promise.resolve(true);
          } catch {
            return Promise.resolve(undefined);
          }
        }, 20_000);
      }

      exporter = await startCeems([
        "exporter",
        "--collector.disable-defaults",
        "--collector.slurm",
        "--collector.cpu",
        "--collector.meminfo",
        "--collector.ipmi_dcmi",
        `--collector.ipmi_dcmi.cmd=${dcmi}`,
        "--collector.cgroups.force-version=v1",
        "--collector.gpu.type=nvidia",
        `--collector.gpu.nvidia-smi-path=${smi}`,
      ]);
      const status = Deno.readTextFileSync(`/proc/${exporter.child.pid}/status`);
      assertMatch(status, /^Uid:\s+65534\s+65534\s+65534\s+65534$/m, "the exporter runs as nobody");

      // Prometheus scrapes the exporter every second from now on (its first scrape lands ~9 s after start).
      const rulesDir = join(tools, "rules");
      Deno.mkdirSync(rulesDir);
      prom = await startPrometheus({
        config: `global: {scrape_interval: 1s, evaluation_interval: 1s}\nrule_files: ['${rulesDir}/*.rules']\n` +
          `scrape_configs:\n  - job_name: ceems\n    static_configs: [{targets: ['127.0.0.1:${exporter.port}']}]\n`,
        args: ["--web.enable-lifecycle"],
      });

      const first = await until("both jobs in /metrics", async () => {
        const m = await scrape(exporter!);
        const seen = [burn, alloc].every((id) => pick(m, "ceems_compute_unit_cpus", { uuid: id }).length === 1);
        return seen ? m : undefined;
      }, 20_000);
      assertEquals(pick(first, "ceems_compute_unit_cpus", { uuid: burn, cgrouphostname: "localhost" }), [1]);
      assertEquals(pick(first, "ceems_compute_units", { manager: "slurm" }), [2]);

      // CPU time of the burn job rises across scrapes.
      const cpu = (m: Map<string, number>) =>
        pick(m, "ceems_compute_unit_cpu_user_seconds_total", { uuid: burn })[0] +
        pick(m, "ceems_compute_unit_cpu_system_seconds_total", { uuid: burn })[0];
      await sleep(1500);
      const second = await scrape(exporter);
      assert(cpu(second) > cpu(first) + 0.2, `burn job CPU time must rise: ${cpu(first)} → ${cpu(second)}`);

      // Memory of the allocation job is close to what it touched (once the allocation is done).
      const used = await until("allocation touched", async () => {
        const v = pick(await scrape(exporter!), "ceems_compute_unit_memory_used_bytes", { uuid: alloc })[0];
        return v >= ALLOC_MIB * MIB ? v : undefined;
      }, 20_000);
      assert(used <= ALLOC_MIB * MIB * 1.15, `memory ${used / MIB} MiB not within 15 % of ${ALLOC_MIB} MiB`);
      assertEquals(pick(second, "ceems_compute_unit_memory_total_bytes", { uuid: alloc }), [400 * MIB]);

      // The GPU index comes from the job's environment, read through the slurm security context.
      const gpu = [...second.keys()].filter((k) => k.startsWith("ceems_compute_unit_gpu_index_flag{"));
      assertEquals(gpu.length, 1, `one GPU mapping expected: ${gpu.join(" ")}`);
      assertMatch(gpu[0], new RegExp(`uuid="${alloc}"`));
      assertMatch(gpu[0], /index="1"/);
      assertMatch(gpu[0], /gpuuuid="GPU-61a65011-6571-a6d2-5ab8-66cbb6f7f9c3"/);
      assertEquals(second.get(gpu[0]), 1);
      assertEquals(pick(second, "ceems_scrape_collector_success", { collector: "slurm" }), [1]);

      // Per-job power: wait for Prometheus to hold the series, generate rules from it, load them.
      await until("prometheus scraped the jobs", async () => {
        const r = await promQuery(prom!.url, `ceems_compute_unit_cpu_user_seconds_total{uuid="${burn}"}`);
        return r.length ? true : undefined;
      }, 30_000);
      const gen = await runCeems([
        "tool",
        "tsdb",
        "create-recording-rules",
        `--url=${prom.url}`,
        `--output-dir=${rulesDir}`,
        "--pue=1.2",
        "--emission-factor=50",
        "--eval-interval=1s",
      ]);
      assertEquals(gen.code, 0, gen.stderr);
      const check = await sh(["promtool", "check", "rules", join(rulesDir, "ceems.rules")]);
      assertEquals(check.code, 0, check.stdout + check.stderr);
      const reload = await fetch(`${prom.url}/-/reload`, { method: "POST" });
      await reload.body?.cancel();
      assertEquals(reload.status, 200);
      const power = await until("per-job power series", async () => {
        const r = await promQuery(prom!.url, `uuid:ceems_host_power_watts:pue{uuid="${burn}"}`);
        return r.length ? Number(r[0].value[1]) : undefined;
      }, 30_000);
      // The burn job holds most of this node's busy CPU time: a real share of 1.2 × 332 W, never more.
      assert(power > 0 && power <= 1.2 * NODE_WATTS, `per-job power ${power} W`);
      console.log(
        `figures: burn CPU ${cpu(first).toFixed(2)}→${cpu(second).toFixed(2)} s; alloc memory ${
          (used / MIB).toFixed(1)
        } MiB of ${ALLOC_MIB}; burn job power ${power.toFixed(1)} W of node ${1.2 * NODE_WATTS} W (PUE 1.2)`,
      );
      // Each rule of a group is committed on its own: the emissions rule may land just after the power rule.
      const emissions = await until("per-job emissions series", async () => {
        const r = await promQuery(prom!.url, `uuid:ceems_host_emissions_g_s:pue{uuid="${burn}"}`);
        return r.length ? r : undefined;
      }, 10_000);
      assert(emissions.length === 1 && Number(emissions[0].value[1]) > 0, JSON.stringify(emissions));

      // A finished job's series disappear: bob's job ends on its own after 25 s.
      await until("allocation job finished", async () => (await jobState(alloc)) === "" ? true : undefined, 60_000);
      await until("finished job's series gone", async () => {
        const m = await scrape(exporter!);
        const left = [...m.keys()].filter((k) => k.includes(`uuid="${alloc}"`));
        return left.length === 0 && pick(m, "ceems_compute_unit_cpus", { uuid: burn }).length === 1 ? true : undefined;
      }, 20_000);
    } finally {
      for (const id of jobs) await sh(["scancel", id]);
      if (prom) await prom.stop();
      if (exporter) await exporter.stop();
      for (const id of jobs) {
        await until(`job ${id} gone`, async () => (await jobState(id)) === "" ? true : undefined, 30_000).catch(
          () => {},
        );
      }
      await cluster.stop();
      Deno.removeSync(tools, { recursive: true });
    }
  },
});
