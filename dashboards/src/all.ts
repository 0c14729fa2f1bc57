// The CEEMS dashboards: file name, builder, and who looks at them (user dashboards go through the LB as
// the user and the API server's user resources; the cluster view needs an admin).

import type * as dashboard from "@grafana/grafana-foundation-sdk/dashboard";
import { cluster } from "./cluster.ts";
import { INPUTS } from "./common.ts";
import { jobDetail } from "./job.ts";
import { myJobs } from "./my_jobs.ts";

/** One dashboard to generate. */
export interface DashboardDef {
  file: string;
  audience: "user" | "admin";
  build: () => dashboard.Dashboard;
}

export const DASHBOARDS: DashboardDef[] = [
  { file: "ceems-my-jobs.json", audience: "user", build: myJobs },
  { file: "ceems-job.json", audience: "user", build: jobDetail },
  { file: "ceems-cluster.json", audience: "admin", build: cluster },
];

/** The dashboard as Grafana's import JSON (datasource inputs declared), pretty-printed. */
export function dashboardJson(d: DashboardDef): string {
  const built = d.build() as unknown as Record<string, unknown>;
  return JSON.stringify({ __inputs: INPUTS, ...built }, null, 2) + "\n";
}
