// `deno task dashboards`: writes the CEEMS dashboards (generated from dashboards/src with the Grafana
// foundation SDK) as Grafana import JSON into dashboards/.

import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { dashboardJson, DASHBOARDS } from "./src/all.ts";

const dir = fileURLToPath(new URL(".", import.meta.url));

if (import.meta.main) {
  for (const d of DASHBOARDS) {
    Deno.writeTextFileSync(join(dir, d.file), dashboardJson(d));
    console.error(`wrote ${join("dashboards", d.file)}`);
  }
}
