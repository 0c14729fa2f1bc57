// "CEEMS · Job": one job's detail over time, every Prometheus query through the CEEMS LB (which lets a user
// see only their own jobs): CPU, memory, power, emissions, GPU usage, memory, power and activity, IO and
// network, and the job's record and totals from the API server.

import * as dashboard from "@grafana/grafana-foundation-sdk/dashboard";
import { api, clusterVariable, grid, PROM, prom, providerVariable, single, ts } from "./common.ts";

const U = 'uuid="${jobid}"';
const H = 'instance=~"${host}"';
/** `name{uuid="$jobid",instance=~"$host"}`. */
const s = (name: string, extra = "") => `${name}{${U},${H}${extra}}`;

/** The dashboard. */
export function jobDetail(): dashboard.Dashboard {
  const energy = (series: string) =>
    `sum(sum_over_time(${series}{${U}}[$__range:$__interval])) * $__interval_ms / 3.6e9`;
  const grams = (series: string) =>
    `sum(sum_over_time(${series}{${U},provider="\${provider}"}[$__range:$__interval])) * $__interval_ms / 1e3`;
  return new dashboard.DashboardBuilder("CEEMS · Job")
    .uid("ceems-job")
    .tags(["ceems"])
    .description("One job's CPU, memory, GPU, IO, network, power and emissions over time.")
    .time({ from: "now-6h", to: "now" })
    .withVariable(clusterVariable())
    .withVariable(new dashboard.TextBoxVariableBuilder("jobid").label("Job ID").defaultValue(""))
    .withVariable(
      new dashboard.QueryVariableBuilder("host").label("Host").datasource(PROM)
        .query(`label_values(uuid:ceems_cpu_usage:ratio_irate{${U}}, instance)`)
        .multi(true).includeAll(true).allValue(".*")
        .refresh(dashboard.VariableRefresh.OnTimeRangeChanged),
    )
    .withVariable(providerVariable())
    .withPanel(
      grid("Job", [
        api("/api/v1/units", false).param("uuid", "${jobid}").param("running", "1")
          .column("uuid", "Job ID", "string")
          .column("name", "Name", "string")
          .column("project", "Account", "string")
          .column("state", "State", "string")
          .column("started_at", "Started", "string")
          .column("ended_at", "Ended", "string")
          .column("elapsed", "Elapsed", "string")
          .column("allocation.cpus", "CPUs")
          .column("allocation.gpus", "GPUs")
          .column("total_cpu_energy_usage_kwh.total", "Host energy (kWh)")
          .column("total_gpu_energy_usage_kwh.total", "GPU energy (kWh)"),
      ], 16).height(5),
    )
    .withPanel(
      single("Energy in range", "kwatth", [
        prom(energy("uuid:ceems_host_power_watts:pue"), "Host", true),
        prom(energy("uuid:ceems_gpu_power_watts:pue"), "GPU", true),
      ], 4),
    )
    .withPanel(
      single("Emissions in range (${provider})", "massg", [
        prom(grams("uuid:ceems_host_emissions_g_s:pue"), "Host", true),
        prom(grams("uuid:ceems_gpu_emissions_g_s:pue"), "GPU", true),
      ], 4),
    )
    .withPanel(ts("CPU usage", "percent", [prom(s("uuid:ceems_cpu_usage:ratio_irate"), "{{instance}}")], 8))
    .withPanel(
      ts("CPU time", "short", [
        prom(
          `sum by (instance) (irate(${s("ceems_compute_unit_cpu_user_seconds_total")}[$__rate_interval]) + ` +
            `irate(${s("ceems_compute_unit_cpu_system_seconds_total")}[$__rate_interval]))`,
          "{{instance}} busy CPUs",
        ),
      ], 8),
    )
    .withPanel(
      ts("CPU memory", "bytes", [
        prom(s("ceems_compute_unit_memory_used_bytes"), "{{instance}} used"),
        prom(s("ceems_compute_unit_memory_total_bytes"), "{{instance}} limit"),
      ], 8),
    )
    .withPanel(ts("Host power", "watt", [prom(s("uuid:ceems_host_power_watts:pue"), "{{instance}}")], 12))
    .withPanel(
      ts("Host emissions (${provider})", "short", [
        prom(s("uuid:ceems_host_emissions_g_s:pue", ',provider="${provider}"'), "{{instance}} g/s"),
      ], 12),
    )
    .withPanel(ts("GPU usage", "percent", [prom(s("uuid:ceems_gpu_usage:ratio"), "{{hindex}}")], 8))
    .withPanel(ts("GPU memory", "percent", [prom(s("uuid:ceems_gpu_memory_usage:ratio"), "{{hindex}}")], 8))
    .withPanel(
      ts("GPU SM activity", "percent", [
        prom(s("uuid:ceems_gpu_sm_active:ratio"), "{{hindex}} active"),
        prom(s("uuid:ceems_gpu_sm_occupancy:ratio"), "{{hindex}} occupancy"),
      ], 8),
    )
    .withPanel(ts("GPU power", "watt", [prom(s("uuid:ceems_gpu_power_watts:pue"), "{{hindex}}")], 12))
    .withPanel(
      ts("GPU emissions (${provider})", "short", [
        prom(s("uuid:ceems_gpu_emissions_g_s:pue", ',provider="${provider}"'), "{{hindex}} g/s"),
      ], 12),
    )
    .withPanel(
      ts("IO bandwidth", "Bps", [
        prom(s("uuid:ceems_io_read_bytes:irate"), "{{instance}} {{mountpoint}} read"),
        prom(s("uuid:ceems_io_write_bytes:irate"), "{{instance}} {{mountpoint}} write"),
      ], 12),
    )
    .withPanel(
      ts("IO requests", "reqps", [
        prom(s("uuid:ceems_io_read_requests:irate"), "{{instance}} {{mountpoint}} read"),
        prom(s("uuid:ceems_io_write_requests:irate"), "{{instance}} {{mountpoint}} write"),
      ], 12),
    )
    .withPanel(
      ts("Network bandwidth", "Bps", [
        prom(s("uuid:ceems_net_ingress_bytes:irate"), "{{instance}} {{proto}}/{{family}} in"),
        prom(s("uuid:ceems_net_egress_bytes:irate"), "{{instance}} {{proto}}/{{family}} out"),
      ], 12),
    )
    .withPanel(
      ts("Network packets", "pps", [
        prom(s("uuid:ceems_net_ingress_packets:irate"), "{{instance}} {{proto}}/{{family}} in"),
        prom(s("uuid:ceems_net_egress_packets:irate"), "{{instance}} {{proto}}/{{family}} out"),
      ], 12),
    )
    .build();
}
