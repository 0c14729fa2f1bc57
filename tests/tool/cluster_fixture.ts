// A small cluster's raw series for the rules generator tests: an IPMI+RAPL node with eBPF counters, a
// Redfish node with two chassis and a DCGM exporter, an emissions job; counters rise at known rates.

import type { BackfillSeries } from "../helpers/prometheus_server.ts";

/** Sample spacing of the series; the rules read them with a 1 min rate window (4 × 15 s scrape interval). */
export const STEP = 5_000;

/**
 * The cluster: a counter rises at `perS` per second (sampled every STEP), a gauge is constant. Each series
 * appears once: promtool's backfill fails ("out of order sample") on a repeated series whose copies straddle
 * one of its 5,000-sample commits.
 */
export function cluster(): BackfillSeries[] {
  const out: BackfillSeries[] = [];
  const g = (name: string, labels: Record<string, string>, v: number) => out.push({ name, labels, value: () => v });
  const c = (name: string, labels: Record<string, string>, perS: number) =>
    out.push({ name, labels, value: (i) => i * perS * STEP / 1000 });
  for (const [job, inst, host] of [["cpu-ipmi", "ni:9010", "ni"], ["cpu-redfish", "nr:9010", "nr"]]) {
    const n = { job, instance: inst, hostname: host };
    c("ceems_cpu_seconds_total", { ...n, mode: "user" }, 2);
    c("ceems_cpu_seconds_total", { ...n, mode: "idle" }, 2);
    g("ceems_cpu_count", n, 4);
    g("ceems_meminfo_MemTotal_bytes", n, 16e9);
    g("ceems_meminfo_MemAvailable_bytes", n, 8e9);
    g("ceems_compute_units", { ...n, manager: "slurm" }, 2);
    for (const [id, cpu, mem] of [["1", 1, 2e9], ["2", 0.5, 6e9]] as const) {
      const u = { ...n, manager: "slurm", uuid: `${host}-${id}` };
      c("ceems_compute_unit_cpu_user_seconds_total", u, cpu);
      c("ceems_compute_unit_cpu_system_seconds_total", u, 0);
      g("ceems_compute_unit_cpus", u, 2);
      g("ceems_compute_unit_memory_used_bytes", u, mem);
      g("ceems_compute_unit_memory_total_bytes", u, 8e9);
    }
    g("ceems_emissions_gCo2_kWh", {
      ...n,
      provider: "owid",
      provider_name: "OWID",
      country_code: "FR",
      country: "France",
    }, 50);
  }
  const ni = { job: "cpu-ipmi", instance: "ni:9010", hostname: "ni" };
  g("ceems_ipmi_dcmi_current_watts", ni, 500);
  c("ceems_rapl_package_joules_total", { ...ni, index: "0", path: "p0" }, 60);
  c("ceems_rapl_dram_joules_total", { ...ni, index: "0", path: "p0d" }, 20);
  c("ceems_ebpf_read_bytes_total", { ...ni, manager: "slurm", uuid: "ni-1", mountpoint: "/home" }, 1000);
  c("ceems_ebpf_ingress_bytes_total", { ...ni, manager: "slurm", uuid: "ni-1", family: "ipv4", proto: "tcp" }, 500);
  const nr = { job: "cpu-redfish", instance: "nr:9010", hostname: "nr" };
  g("ceems_redfish_current_watts", { ...nr, chassis: "Chassis_1" }, 400);
  g("ceems_redfish_current_watts", { ...nr, chassis: "Chassis_2" }, 900);
  g("ceems_compute_unit_gpu_index_flag", { ...nr, manager: "slurm", uuid: "nr-1", index: "0", gpuuuid: "GPU-r0" }, 1);
  const d = { job: "dcgm", instance: "nr:9400", Hostname: "nr", UUID: "GPU-r0", gpu: "0", modelName: "NVIDIA A100" };
  g("DCGM_FI_DEV_POWER_USAGE_INSTANT", d, 250);
  g("DCGM_FI_DEV_GPU_UTIL", d, 70);
  g("DCGM_FI_DEV_FB_USED", d, 10);
  g("DCGM_FI_DEV_FB_FREE", d, 30);
  g("ceems_emissions_gCo2_kWh", {
    job: "emissions",
    instance: "e:9010",
    provider: "rte",
    provider_name: "RTE",
    country_code: "FR",
    country: "France",
  }, 20);
  return out;
}
