// `deno task demo`: the whole stack on this machine (exporter on CEEMS's fixture node, Prometheus with
// generated rules, API server on the fixture's SLURM jobs, LB), then what to open, sample queries and
// cacct lines; Ctrl-C (or SIGTERM) stops every process and removes the work directory.

import { join } from "node:path";
import { currentUserName } from "../cacct/cli.ts";
import { findCeemsFixtures } from "./demo/fixtures.ts";
import { type Stack, startStack } from "./demo/stack.ts";

/** The text printed once the stack runs. */
export function banner(s: Stack, me: string): string {
  const own = s.jobs.find((j) => j.user === me)!.id;
  const foreign = s.jobs.find((j) => j.user !== me)!.id;
  const h = `-H 'X-Grafana-User: ${me}' -H 'X-Ceems-Cluster-Id: ${s.cluster}'`;
  const cacct = `XDG_CONFIG_HOME=${s.cacctConfigHome} deno task cacct`;
  return `
CEEMS demo is running. Ctrl-C stops it and removes ${s.dir}.

  Exporter     ${s.urls.exporter}/metrics   (CEEMS's fixture node, counters advancing every second)
  Prometheus   ${s.urls.prometheus}   (rules by 'ceems tool' in ${s.rulesDir})
  API server   ${s.urls.api}/api/v1/units   (send X-Grafana-User: ${me})
  LB           ${s.urls.lb}   (send X-Grafana-User and X-Ceems-Cluster-Id: ${s.cluster})
  Dashboards   dashboards/*.json: import them into a Grafana of yours (none runs here), with a Prometheus
               datasource on the LB (header X-Ceems-Cluster-Id: ${s.cluster}, send user header on) and an
               Infinity datasource on the API server.

Sample queries through the LB as ${me} (your job ${own}; job ${foreign} is someone else's: 403):
  curl -s ${h} ${s.urls.lb}/api/v1/query --data-urlencode 'query=uuid:ceems_host_power_watts:pue{uuid="${own}"}'
  curl -s ${h} ${s.urls.lb}/api/v1/query --data-urlencode 'query=uuid:ceems_gpu_usage:ratio{uuid="${own}"}'
  curl -s ${h} ${s.urls.lb}/api/v1/query --data-urlencode 'query=uuid:ceems_host_power_watts:pue{uuid="${foreign}"}'
  curl -s -H 'X-Grafana-User: ${me}' '${s.urls.api}/api/v1/units?cluster_id=${s.cluster}&running'

cacct (energy and emissions appear after the API server's first update, within a minute):
  ${cacct}
  ${cacct} --long
  ${cacct} --job=${own} --ts --ts.out-dir=${join(s.dir, "ts")}
`;
}

if (import.meta.main) {
  const e2e = findCeemsFixtures();
  if (!e2e) {
    console.error("demo: error: CEEMS's e2e fixtures not found: set CEEMS_E2E_DIR to the directory of fixtures.tar.gz");
    Deno.exit(2);
  }
  for (const bin of ["prometheus", "promtool", "tar"]) {
    const ok = await new Deno.Command("sh", { args: ["-c", `command -v ${bin}`], stdout: "null" }).output();
    if (!ok.success) {
      console.error(`demo: error: ${bin} not found (Debian: apt-get install prometheus)`);
      Deno.exit(2);
    }
  }
  const me = currentUserName();
  const dir = await Deno.makeTempDir({ prefix: "ceems-demo-" });
  const stack = await startStack({ e2e, dir, me }).catch((e) => {
    console.error(`demo: error: ${(e as Error).message.split("\n")[0]}`);
    Deno.exit(1);
  });
  let stopping = false;
  const shutdown = async () => {
    if (stopping) return;
    stopping = true;
    console.error("stopping the demo …");
    await stack.stop();
    console.error("stopped");
    Deno.exit(0);
  };
  Deno.addSignalListener("SIGINT", shutdown);
  Deno.addSignalListener("SIGTERM", shutdown);
  console.log(banner(stack, me));
}
