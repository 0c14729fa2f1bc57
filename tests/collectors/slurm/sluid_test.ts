// Tests of the SLUID → job id mapping for Slurm 26.05's cgroup v2 layout: slurmstepd process titles and job
// environments in fixture procfs trees, and the titles of a real slurmstepd on the test SLURM cluster.

import { jobIdFromEnvironments, jobIdFromStepdTitle, SluidResolver } from "../../../collectors/slurm/sluid.ts";
import type { Unit } from "../../../collectors/units/discovery.ts";
import { Logger } from "../../../common/log.ts";
import { InlineSecurityManager, type SecurityManager } from "../../../privilege/security.ts";
import { assert, assertEquals } from "../../helpers/assert.ts";
import { put } from "../unit_helpers.ts";

Deno.test("jobIdFromStepdTitle reads slurmstepd's process title; other processes give nothing", () => {
  assertEquals(jobIdFromStepdTitle("slurmstepd: [4242.0]\0\0\0"), "4242");
  assertEquals(jobIdFromStepdTitle("slurmstepd: [4242.batch]                "), "4242");
  assertEquals(jobIdFromStepdTitle("slurmstepd: [4242.extern]"), "4242");
  assertEquals(jobIdFromStepdTitle("slurmstepd: [sEKNKTV3WPV500.0]"), undefined); // a title by SLUID
  assertEquals(jobIdFromStepdTitle("sleep\x00600\x00"), undefined);
  assertEquals(jobIdFromStepdTitle("/usr/sbin/slurmstepd\0infinity\0"), undefined);
});

Deno.test("jobIdFromEnvironments takes SLURM_JOB_ID of the environment with that SLURM_JOB_SLUID", () => {
  const envs = [
    ["SLURM_JOB_SLUID=sAAAAAAAAAAAA0", "SLURM_JOB_ID=1"],
    ["HOME=/root"],
    ["SLURM_JOB_ID=77", "SLURM_JOB_SLUID=sEKNKTV3WPV500"],
  ];
  assertEquals(jobIdFromEnvironments("sEKNKTV3WPV500", envs), "77");
  assertEquals(jobIdFromEnvironments("sZZZZZZZZZZZZ0", envs), undefined);
});

/** Records environment reads. */
class CountingSecurity extends InlineSecurityManager {
  reads = 0;
  #inner = new InlineSecurityManager();
  override run(...a: Parameters<SecurityManager["run"]>) {
    this.reads++;
    return this.#inner.run(...a);
  }
}

const unit = (uuid: string, pids: number[]): Unit => ({
  uuid,
  cgroupHost: "",
  rel: `/system.slice/slurmstepd.scope/${uuid}`,
  pids,
});

Deno.test("SluidResolver: titles first, then environments; mapped once; an unmapped job is left out with one warning", async () => {
  const procfs = Deno.makeTempDirSync({ prefix: "ceems-sluid-" });
  try {
    put(`${procfs}/100/cmdline`, "sleep\x00600\x00");
    put(`${procfs}/101/cmdline`, "slurmstepd: [4242.0]\0\0\0\0");
    put(`${procfs}/200/cmdline`, "bash\0job.sh\0");
    put(`${procfs}/200/environ`, "SLURM_JOB_ID=5353\0SLURM_JOB_SLUID=s5K1KKYAYG5D00\0");
    put(`${procfs}/300/cmdline`, "python\0");
    const logs: string[] = [];
    const sec = new CountingSecurity();
    const r = new SluidResolver({
      procfs,
      logger: new Logger("info", "logfmt", {}, (l) => logs.push(l)),
      security: sec,
    });
    const units = [
      unit("sEKNKTV3WPV500", [100, 101]),
      unit("s5K1KKYAYG5D00", [200]),
      unit("sQQQQQQQQQQQQ0", [300]),
      { ...unit("77", [400]), rel: "/system.slice/slurmstepd.scope/job_77" },
    ];
    const ids = async () => (await r.resolve(units)).map((u) => u.uuid);
    assertEquals(await ids(), ["4242", "5353", "77"]);
    assertEquals(sec.reads, 1, "environments read for the jobs no title names");
    assertEquals(logs.filter((l) => l.includes("sQQQQQQQQQQQQ0")).length, 1);
    // Mapped SLUIDs are not looked up again; the unmapped one is, without a second warning.
    Deno.removeSync(`${procfs}/101/cmdline`);
    assertEquals(await ids(), ["4242", "5353", "77"]);
    assertEquals(sec.reads, 2);
    assertEquals(logs.filter((l) => l.includes("sQQQQQQQQQQQQ0")).length, 1);
    // Its slurmstepd moves into the job's cgroup: the job appears.
    put(`${procfs}/301/cmdline`, "slurmstepd: [6464.batch]\0");
    units[2] = unit("sQQQQQQQQQQQQ0", [300, 301]);
    assertEquals(await ids(), ["4242", "5353", "6464", "77"]);
  } finally {
    Deno.removeSync(procfs, { recursive: true });
  }
});

const haveSlurm = (() => {
  try {
    return Deno.uid() === 0 && Deno.statSync("/usr/sbin/slurmstepd").isFile;
  } catch {
    return false;
  }
})();

Deno.test({
  name: "a real slurmstepd's process title gives its job id (SLURM cluster, synthetic SLUID cgroup tree)",
  ignore: !haveSlurm,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const { startSlurmCluster, sh } = await import("../../helpers/slurm_cluster.ts");
    const cluster = await startSlurmCluster({ sluidacct: ["sluiduser"] });
    try {
      const id = await cluster.submit("sluiduser", "sluidacct", { name: "sluid", seconds: 60 });
      let stepd: number[] = [];
      for (let i = 0; i < 100 && stepd.length === 0; i++) {
        const r = await sh(["pgrep", "-f", `^slurmstepd: \\[${id}\\.`]);
        stepd = r.stdout.split("\n").filter((l) => l.trim()).map(Number);
        if (stepd.length === 0) await new Promise((res) => setTimeout(res, 200));
      }
      assert(stepd.length > 0, `no slurmstepd for job ${id}`);
      // As on a 26.05 node: the job's steps' slurmstepds in <SLUID>/step_*/slurm, read from the real /proc.
      const r = new SluidResolver({
        procfs: "/proc",
        logger: new Logger("error", "logfmt", {}, () => {}),
        security: new InlineSecurityManager(),
      });
      const [u] = await r.resolve([unit("sEKNKTV3WPV500", stepd)]);
      assertEquals(u?.uuid, id);
      await sh(["scancel", id]);
    } finally {
      await cluster.stop();
    }
  },
});
