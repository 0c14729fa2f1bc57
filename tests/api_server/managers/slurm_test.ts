// What the SLURM manager will run as root is settled at start-up: a sacct missing from cli.path is a start-up
// error (a file created there later is never run), and loader variables in cli.environment_variables are refused.

import { join } from "node:path";
import { assert, assertThrows } from "../../helpers/assert.ts";
import { fakeSlurmTools } from "../../helpers/fake_slurm.ts";
import { parseApiConfig } from "../../../api_server/config.ts";
import { SlurmManager } from "../../../api_server/managers/slurm.ts";
import { InlineSecurityManager } from "../../../privilege/security.ts";
import { nullLogger } from "../../../common/log.ts";

function cluster(cliPath: string, env = "{}") {
  return parseApiConfig(`ceems_api_server:
  data: {path: /nonexistent}
clusters:
  - {id: c0, manager: slurm, cli: {path: ${cliPath}, environment_variables: ${env}}}
`).clusters[0];
}

Deno.test("slurm manager run as root: a missing sacct stops start-up; a plain one fails each run instead", () => {
  const dir = Deno.makeTempDirSync();
  Deno.chmodSync(dir, 0o755);
  try {
    const bin = fakeSlurmTools(dir);
    Deno.removeSync(join(bin, "sacct"));
    const sec = new InlineSecurityManager();
    assertThrows(
      () => new SlurmManager(cluster(bin), sec, "privileged", nullLogger),
      /cli\.path: \/.*\/sacct not found/,
    );
    // Not as root: nothing can be slipped in, and a tool installed later is picked up.
    const plain = new SlurmManager(cluster(bin), sec, "plain", nullLogger);
    assert(plain.clusterId === "c0");
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("slurm manager: loader variables in cli.environment_variables are refused at start-up", () => {
  for (const name of ["LD_PRELOAD", "LD_LIBRARY_PATH", "GCONV_PATH", "GLIBC_TUNABLES"]) {
    assertThrows(
      () => new SlurmManager(cluster("", `{${name}: /tmp/x}`), new InlineSecurityManager(), "plain", nullLogger),
      new RegExp(`cli\\.environment_variables: ${name} may not be set`),
    );
  }
  // SLURM's own variables are fine.
  new SlurmManager(
    cluster("", "{SLURM_CONF: /etc/slurm/slurm.conf}"),
    new InlineSecurityManager(),
    "plain",
    nullLogger,
  );
});
