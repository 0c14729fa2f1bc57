// The dashboards kept as code: the committed JSON is what dashboards/src generates (run `deno task
// dashboards`), every target has a CEEMS datasource, and every Prometheus query of the user dashboards is
// one the LB accepts for the job's owner (parsed, each selector pinned to the job), the cluster view's parse.

import { assert, assertEquals } from "../helpers/assert.ts";
import { repoRoot } from "../helpers/process.ts";
import { join } from "node:path";
import { dashboardJson, DASHBOARDS } from "../../dashboards/src/all.ts";
import { analyseQuery } from "../../lb/promql_access.ts";
import { interpolate, type PanelContext } from "./panels.ts";

const ctx: PanelContext = {
  lbUrl: "",
  apiUrl: "",
  user: "alice",
  cluster: "slurm-0",
  vars: { jobid: "1234", provider: "owid", country_code: "FR" },
  fromS: 1_700_000_000,
  toS: 1_700_003_600,
  intervalS: 15,
  scrapeS: 15,
};

Deno.test("dashboards: committed JSON is generated from dashboards/src; targets and queries are sound", () => {
  for (const d of DASHBOARDS) {
    const text = dashboardJson(d);
    assertEquals(
      Deno.readTextFileSync(join(repoRoot, "dashboards", d.file)),
      text,
      `${d.file}: run deno task dashboards`,
    );
    const dash = JSON.parse(text);
    assert(dash.panels.length >= 7, d.file);
    const multi = { host: ["n1:9010", "n2:9010"], job: ["ceems"] };
    for (const p of dash.panels) {
      assert(p.targets?.length, `${d.file}: ${p.title} has no target`);
      for (const t of p.targets) {
        assert(["${DS_CEEMS_LB}", "${DS_CEEMS_API}"].includes(t.datasource?.uid), `${p.title}: datasource`);
        if (t.datasource.type !== "prometheus") {
          assert(t.url.startsWith("/api/v1/") && t.columns.length, `${p.title}: API target`);
          continue;
        }
        const a = analyseQuery(interpolate(t.expr, ctx, multi));
        if (d.audience === "user") {
          assert(a.ok, `${d.file}: ${p.title}: the LB refuses ${t.expr}: ${!a.ok && a.reason}`);
          assertEquals(a.ok && a.units, ["1234"], `${p.title}: only the job's series`);
        } else {
          assert(a.ok || a.status === 403, `${d.file}: ${p.title}: ${t.expr} does not parse`);
        }
      }
    }
  }
});
