// Discovery of the rules generator on label sets as Prometheus's series API returns them: node power
// source preference, Redfish chassis choice, GPU exporter pairing by instance host, AMD metric prefix.

import { assertEquals, assertRejects } from "../helpers/assert.ts";
import { discoverJobs, type DiscoverOptions, gpuJobKind, jobsFromSeries } from "../../tool/rules/discover.ts";

const s = (name: string, job: string, instance: string, extra: Record<string, string> = {}) => ({
  __name__: name,
  job,
  instance,
  ...extra,
});

function opts(over: Partial<DiscoverOptions> = {}): DiscoverOptions {
  return {
    start: 0,
    end: 3600,
    scrapeIntervals: new Map([["cpu", 10_000]]),
    globalScrapeMs: 30_000,
    choose: () => Promise.reject(new Error("no choice expected")),
    includesGpus: () => Promise.resolve(true),
    ...over,
  };
}

Deno.test("discovery: power source by CEEMS's preference, GPU job paired by host, scrape interval per job", async () => {
  const found = [
    s("ceems_compute_unit_cpu_user_seconds_total", "cpu", "c0:9010"),
    s("ceems_compute_unit_gpu_index_flag", "cpu", "c0:9010"),
    s("ceems_rapl_package_joules_total", "cpu", "c0:9010"),
    s("ceems_ipmi_dcmi_power_current_watts", "cpu", "c0:9010"), // the newer CEEMS name
    s("DCGM_FI_DEV_POWER_USAGE_INSTANT", "dcgm-a", "c9:9400"), // another node: not this job's GPUs
    s("DCGM_FI_DEV_POWER_USAGE_INSTANT", "dcgm-b", "c0:9400"),
    s("DCGM_FI_PROF_SM_ACTIVE", "dcgm-b", "c0:9400"),
    s("ceems_compute_unit_cpu_user_seconds_total", "nopower", "c1:9010"),
  ];
  const jobs = await discoverJobs(found, opts());
  assertEquals(jobs.length, 1);
  assertEquals(jobs[0].job, "cpu");
  assertEquals(jobs[0].scrapeIntervalMs, 10_000);
  assertEquals(jobs[0].hostPower, { kind: "ipmi", metric: "ceems_ipmi_dcmi_power_current_watts" });
  assertEquals(jobs[0].gpu?.kind, "dcgm");
  assertEquals(jobs[0].gpu?.job, "dcgm-b");
  assertEquals(jobs[0].gpu?.inHostPower, true);
  assertEquals(jobs[0].gpu?.series.has("DCGM_FI_PROF_SM_ACTIVE"), true);
});

Deno.test("discovery: several Redfish chassis are chosen by the operator; one is taken as is", async () => {
  const two = [
    s("ceems_compute_unit_cpu_user_seconds_total", "r", "r0:9010"),
    s("ceems_redfish_current_watts", "r", "r0:9010", { chassis: "Chassis_2" }),
    s("ceems_redfish_current_watts", "r", "r0:9010", { chassis: "Chassis_1" }),
  ];
  const asked: string[][] = [];
  const jobs = await discoverJobs(
    two,
    opts({ choose: ({ values }) => (asked.push(values), Promise.resolve([values[0]])) }),
  );
  assertEquals(asked, [["Chassis_1", "Chassis_2"]]);
  assertEquals(jobs[0].hostPower.selectValues, ["Chassis_1"]);
  const one = await discoverJobs(two.slice(0, 2), opts());
  assertEquals(one[0].hostPower, {
    kind: "redfish",
    metric: "ceems_redfish_current_watts",
    selectLabel: "chassis",
    selectValues: ["Chassis_2"],
  });
  await assertRejects(() => discoverJobs(two, opts()), /no choice expected/);
});

Deno.test("discovery: NVML GPUs of the CEEMS job itself; Cray and RAPL never take GPU power off", async () => {
  const nvml = [
    s("ceems_compute_unit_cpu_user_seconds_total", "g", "g0:9010"),
    s("ceems_compute_unit_gpu_index_flag", "g", "g0:9010"),
    s("ceems_gpu_power_watts", "g", "g0:9010"),
    s("ceems_cray_pm_counters_power_watts", "g", "g0:9010", { domain: "node" }),
  ];
  const jobs = await discoverJobs(nvml, opts());
  assertEquals(jobs[0].hostPower.kind, "cray");
  assertEquals(jobs[0].gpu?.kind, "nvml");
  assertEquals(jobs[0].gpu?.inHostPower, false);
});

Deno.test("discovery: AMD exporters recognised, the device metrics exporter's prefix found", () => {
  const jobs = jobsFromSeries([
    s("amd_gpu_power", "smi", "a:9500", { gpu_power: "0" }),
    s("myprefix_gpu_package_power", "dev", "a:9600"),
    s("myprefix_gpu_gfx_activity", "dev", "a:9600"),
  ]);
  assertEquals(gpuJobKind(jobs.get("smi")!), { kind: "amd-smi", prefix: "" });
  assertEquals(gpuJobKind(jobs.get("dev")!), { kind: "amd-device-metrics", prefix: "myprefix_" });
});
