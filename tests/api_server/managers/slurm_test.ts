// What the SLURM manager will run as root is settled at start-up: a sacct missing from cli.path is a start-up
// error (a file created there later is never run), and loader variables in cli.environment_variables are refused.

import { join } from "node:path";
import { assertRejects, assertThrows } from "../../helpers/assert.ts";
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

Deno.test("slurm manager run as root: a sacct that appears after start-up is checked as at start-up before it runs", async () => {
  const dir = Deno.makeTempDirSync();
  Deno.chmodSync(dir, 0o755);
  try {
    const bin = fakeSlurmTools(dir);
    const sacct = Deno.readTextFileSync(join(bin, "sacct"));
    Deno.removeSync(join(bin, "sacct"));
    const sec = new InlineSecurityManager();
    // Started before SLURM is installed: it starts, and each window fails naming the tool.
    const m = new SlurmManager(cluster(bin), sec, "privileged", nullLogger);
    await assertRejects(() => m.fetchRaw!(0, 3_600_000), /sacct: not found/);
    // The tool appears in a directory someone else can write: refused, never run.
    Deno.writeTextFileSync(join(bin, "sacct"), sacct, { mode: 0o755 });
    Deno.chmodSync(bin, 0o777);
    await assertRejects(
      () => m.fetchRaw!(0, 3_600_000),
      /cli\.path: refusing to run .*sacct as root: .*bin is (group-)?writable/,
    );
    // And at start-up the same check stops a start.
    assertThrows(
      () => new SlurmManager(cluster(bin), sec, "privileged", nullLogger),
      /refusing to run .*sacct as root/,
    );
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
