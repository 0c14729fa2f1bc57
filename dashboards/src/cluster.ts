// "CEEMS · Cluster": the operator's view (admins only: the LB passes admins through and the API server's
// admin resources): units, power, energy and emissions of the whole cluster and per Prometheus job,
// average CPU, memory and GPU usage, IO and network, and each user's usage.

import * as dashboard from "@grafana/grafana-foundation-sdk/dashboard";
import { API, api, clusterVariable, grid, percent, pie, PROM, prom, providerVariable, single, ts } from "./common.ts";

const J = 'job=~"${job}"';
const E = `${J},provider="\${provider}",country_code="\${country_code}"`;

/** The dashboard. */
export function cluster(): dashboard.Dashboard {
  const kwh = (series: string) => `sum(sum_over_time(${series}{${J}}[$__range:$__interval])) * $__interval_ms / 3.6e9`;
  const grams = (series: string) => `sum(sum_over_time(${series}{${E}}[$__range:$__interval])) * $__interval_ms / 1e3`;
  const avgOver = (series: string) => `avg(avg_over_time(${series}{${J}}[$__range:$__interval]))`;
  return new dashboard.DashboardBuilder("CEEMS · Cluster")
    .uid("ceems-cluster")
    .tags(["ceems"])
    .description("The whole cluster for operators: power, energy, emissions, usage, IO, network and users.")
    .time({ from: "now-24h", to: "now" })
    .withVariable(clusterVariable())
    .withVariable(
      new dashboard.QueryVariableBuilder("job").label("Prometheus job").datasource(PROM)
        .query('label_values({__name__=~"job:ceems_(host|gpu)_power_watts:pue"}, job)')
        .multi(true).includeAll(true).allValue(".*")
        .refresh(dashboard.VariableRefresh.OnTimeRangeChanged),
    )
    .withVariable(providerVariable())
    .withVariable(
      new dashboard.CustomVariableBuilder("country_code").label("Country").values("FR,DE,US,GB,ZZ").current({
        text: "FR",
        value: "FR",
      }),
    )
    .withPanel(
      single(
        "Units",
        "short",
        [
          api("/api/v1/stats/current/admin").column("num_units", "Units").column("num_active_units", "Running")
            .column("num_users", "Users").column("num_projects", "Accounts"),
        ],
        8,
        API,
      ),
    )
    .withPanel(
      single("Power now", "watt", [
        prom(`sum(job:ceems_host_power_watts:pue{${J}})`, "Hosts", true),
        prom(`sum(job:ceems_gpu_power_watts:pue{${J}})`, "GPUs", true),
      ], 4),
    )
    .withPanel(
      single("Energy in range", "kwatth", [
        prom(kwh("job:ceems_host_power_watts:pue"), "Hosts", true),
        prom(kwh("job:ceems_gpu_power_watts:pue"), "GPUs", true),
      ], 4),
    )
    .withPanel(
      single("Emissions in range (${provider}, ${country_code})", "massg", [
        prom(grams("job:ceems_host_emissions_g_s:pue"), "Hosts", true),
        prom(grams("job:ceems_gpu_emissions_g_s:pue"), "GPUs", true),
      ], 8),
    )
    .withPanel(
      percent("CPU and memory usage", [
        prom(avgOver("job:ceems_cpu_usage:avg_ratio_irate"), "CPU", true),
        prom(avgOver("job:ceems_cpu_memory_usage:avg_ratio"), "Memory", true),
      ], 6),
    )
    .withPanel(
      percent("GPU usage", [
        prom(avgOver("job:ceems_gpu_usage:avg"), "GPU", true),
        prom(avgOver("job:ceems_gpu_memory_usage:avg_ratio"), "GPU memory", true),
      ], 6),
    )
    .withPanel(
      pie("Energy by job", "kwatth", [
        prom(
          `sum by (job) (sum_over_time(job:ceems_host_power_watts:pue{${J}}[$__range:$__interval])) * $__interval_ms / 3.6e9`,
          "{{job}} hosts",
          true,
        ),
        prom(
          `sum by (job) (sum_over_time(job:ceems_gpu_power_watts:pue{${J}}[$__range:$__interval])) * $__interval_ms / 3.6e9`,
          "{{job}} GPUs",
          true,
        ),
      ], 12),
    )
    .withPanel(
      ts("Power by job", "watt", [
        prom(`job:ceems_host_power_watts:pue{${J}}`, "{{job}} hosts"),
        prom(`job:ceems_gpu_power_watts:pue{${J}}`, "{{job}} GPUs"),
      ], 12),
    )
    .withPanel(
      ts("Emissions rate (${provider}, ${country_code})", "short", [
        prom(`job:ceems_host_emissions_g_s:pue{${E}}`, "{{job}} hosts g/s"),
        prom(`job:ceems_gpu_emissions_g_s:pue{${E}}`, "{{job}} GPUs g/s"),
      ], 12),
    )
    .withPanel(
      ts("CPU and memory usage", "percent", [
        prom(`job:ceems_cpu_usage:avg_ratio_irate{${J}}`, "{{job}} CPU"),
        prom(`job:ceems_cpu_memory_usage:avg_ratio{${J}}`, "{{job}} memory"),
      ], 12),
    )
    .withPanel(
      ts("GPU usage", "percent", [
        prom(`job:ceems_gpu_usage:avg{${J}}`, "{{job}} GPU"),
        prom(`job:ceems_gpu_memory_usage:avg_ratio{${J}}`, "{{job}} GPU memory"),
      ], 12),
    )
    .withPanel(
      ts("IO bandwidth", "Bps", [
        prom(`job:ceems_io_read_bytes:sum_irate{${J}}`, "{{job}} {{mountpoint}} read"),
        prom(`job:ceems_io_write_bytes:sum_irate{${J}}`, "{{job}} {{mountpoint}} write"),
      ], 12),
    )
    .withPanel(
      ts("Network bandwidth", "Bps", [
        prom(`job:ceems_net_ingress_bytes:sum_irate{${J}}`, "{{job}} {{proto}}/{{family}} in"),
        prom(`job:ceems_net_egress_bytes:sum_irate{${J}}`, "{{job}} {{proto}}/{{family}} out"),
      ], 12),
    )
    .withPanel(
      grid("Usage by user", [
        api("/api/v1/usage/current/admin")
          .column("username", "User", "string")
          .column("project", "Account", "string")
          .column("num_units", "Jobs")
          .column("avg_cpu_usage.global", "CPU (%)")
          .column("total_cpu_energy_usage_kwh.total", "Host energy (kWh)")
          .column("total_gpu_energy_usage_kwh.total", "GPU energy (kWh)")
          .column("total_cpu_emissions_gms.${provider}_total", "Host emissions (g)"),
      ], 24),
    )
    .build();
}
