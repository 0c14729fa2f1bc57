// "CEEMS · My jobs": what a user looks at first, all from the API server as that user: jobs, average CPU and
// GPU usage, energy and emissions in the period, energy per account, and the list of their jobs.

import * as dashboard from "@grafana/grafana-foundation-sdk/dashboard";
import { API, api, clusterVariable, grid, percent, pie, providerVariable, single } from "./common.ts";

/** The dashboard. */
export function myJobs(): dashboard.Dashboard {
  const usage = () => api("/api/v1/usage/current");
  return new dashboard.DashboardBuilder("CEEMS · My jobs")
    .uid("ceems-my-jobs")
    .tags(["ceems"])
    .description("Your jobs' usage, energy and equivalent emissions, from the CEEMS API server.")
    .time({ from: "now-7d", to: "now" })
    .withVariable(clusterVariable())
    .withVariable(providerVariable())
    .withPanel(single("Jobs", "short", [usage().column("num_units", "Jobs")], 4, API))
    .withPanel(
      percent(
        "CPU usage",
        [
          usage().column("avg_cpu_usage.global", "CPU").column("avg_cpu_mem_usage.global", "CPU memory"),
        ],
        5,
        API,
      ),
    )
    .withPanel(
      percent(
        "GPU usage",
        [
          usage().column("avg_gpu_usage.global", "GPU").column("avg_gpu_mem_usage.global", "GPU memory"),
        ],
        5,
        API,
      ),
    )
    .withPanel(
      single(
        "Energy",
        "kwatth",
        [
          usage().column("total_cpu_energy_usage_kwh.total", "Host").column("total_gpu_energy_usage_kwh.total", "GPU"),
        ],
        5,
        API,
      ),
    )
    .withPanel(
      single(
        "Emissions (${provider})",
        "massg",
        [
          usage().column("total_cpu_emissions_gms.${provider}_total", "Host").column(
            "total_gpu_emissions_gms.${provider}_total",
            "GPU",
          ),
        ],
        5,
        API,
      ),
    )
    .withPanel(
      pie(
        "Energy by account",
        "kwatth",
        [
          usage().column("project", "Account", "string").column("total_cpu_energy_usage_kwh.total", "Host").column(
            "total_gpu_energy_usage_kwh.total",
            "GPU",
          ),
        ],
        8,
        API,
      ),
    )
    .withPanel(
      grid("My jobs", [
        api("/api/v1/units").param("running", "1")
          .column("uuid", "Job ID", "string")
          .column("name", "Name", "string")
          .column("project", "Account", "string")
          .column("started_at", "Started", "string")
          .column("ended_at", "Ended", "string")
          .column("elapsed", "Elapsed", "string")
          .column("state", "State", "string")
          .column("avg_cpu_usage.global", "CPU (%)")
          .column("total_cpu_energy_usage_kwh.total", "Host energy (kWh)")
          .column("total_cpu_emissions_gms.${provider}_total", "Host emissions (g)")
          .column("avg_gpu_usage.global", "GPU (%)")
          .column("total_gpu_energy_usage_kwh.total", "GPU energy (kWh)")
          .column("total_gpu_emissions_gms.${provider}_total", "GPU emissions (g)"),
      ], 16).dataLinks([
        new dashboard.DashboardLinkBuilder("Job details")
          .type(dashboard.DashboardLinkType.Link)
          .url('/d/ceems-job?var-cluster=${cluster}&var-jobid=${__data.fields["Job ID"]}&${__url_time_range}'),
      ]),
    )
    .build();
}
