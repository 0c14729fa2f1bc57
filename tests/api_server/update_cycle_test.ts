// Update cycle: clusters catch up independently in max_update_interval windows; a cluster whose sacct fails
// keeps its last window and catches up later, so its units are not lost while the others advance.

import { join } from "node:path";
import { assert, assertEquals } from "../helpers/assert.ts";
import { repoRoot } from "../helpers/process.ts";
import { nullLogger } from "../../common/log.ts";
import { InlineSecurityManager } from "../../privilege/security.ts";
import { parseApiConfig } from "../../api_server/config.ts";
import { SlurmManager } from "../../api_server/managers/slurm.ts";
import { SqliteStorage } from "../../api_server/storage/sqlite.ts";
import { UpdateCycle } from "../../api_server/update_cycle.ts";

const fixtures = join(repoRoot, "tests/api_server/fixtures/tools");

Deno.test("a failing cluster does not advance and catches up later; others are unaffected", async () => {
  const dir = Deno.makeTempDirSync({ prefix: "ceems-cycle-" });
  try {
    const failFlag = join(dir, "fail");
    Deno.writeTextFileSync(failFlag, "");
    for (const [name, guard] of [["ok", ""], ["flaky", `[ -e '${failFlag}' ] && { echo down >&2; exit 1; }\n`]]) {
      Deno.mkdirSync(join(dir, name));
      Deno.writeTextFileSync(join(dir, name, "sacct"), `#!/bin/sh\n${guard}cat '${fixtures}/sacct.txt'\n`, {
        mode: 0o755,
      });
      Deno.writeTextFileSync(join(dir, name, "sacctmgr"), `#!/bin/sh\ncat '${fixtures}/sacctmgr.txt'\n`, {
        mode: 0o755,
      });
    }
    const now = Date.parse("2026-06-01T12:00:00Z");
    const cfg = parseApiConfig(`ceems_api_server:
  data: {path: ${dir}/data, update_from: '2026-06-01T09:00Z', max_update_interval: 1h}
clusters:
  - {id: good, manager: slurm, cli: {path: ${dir}/ok}}
  - {id: flaky, manager: slurm, cli: {path: ${dir}/flaky}}
`);
    const storage = new SqliteStorage(cfg.data.path);
    const sec = new InlineSecurityManager();
    const managers = cfg.clusters.map((c) => new SlurmManager(c, sec, "plain", nullLogger));
    const cycle = new UpdateCycle(cfg, storage, managers, new Map(), nullLogger, {
      skipDeleteOldUnits: true,
      now: () => now,
    });
    let failed = false;
    await cycle.run().catch(() => (failed = true));
    assert(failed, "the run reports the failing cluster");
    assertEquals(storage.lastUpdateMs("good"), now, "three 1 h windows applied");
    assertEquals(storage.lastUpdateMs("flaky"), undefined);
    const count = (c: string) =>
      (storage.db.prepare("SELECT COUNT(*) AS n FROM units WHERE cluster_id = ?").get(c) as { n: number }).n;
    assertEquals(count("good"), 12);
    assertEquals(count("flaky"), 0);
    const num = (c: string) =>
      (storage.db.prepare("SELECT MIN(num_updates) AS n FROM units WHERE cluster_id = ?").get(c) as { n: number }).n;
    assertEquals(num("good"), 3, "each unit updated once per window");

    Deno.removeSync(failFlag);
    await cycle.run();
    assertEquals(storage.lastUpdateMs("flaky"), now);
    assertEquals(count("flaky"), 12, "the flaky cluster's units arrive once it recovers");
    assertEquals(storage.lastUpdateMs("good"), now);
    assertEquals(num("good"), 3, "the good cluster was not re-applied");
    storage.close();
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("Grafana team members become admins; a Grafana outage keeps the last list", async () => {
  const dir = Deno.makeTempDirSync({ prefix: "ceems-cycle-grafana-" });
  let up = true;
  const seen: string[] = [];
  // Grafana's /api/teams/<id>/members answer shape (login per member).
  const grafana = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, (req) => {
    seen.push(req.headers.get("Authorization") ?? "");
    if (!up) return new Response("down", { status: 503 });
    const id = new URL(req.url).pathname.split("/")[3];
    const members = id === "1" ? [{ login: "gadmin" }, { login: "ops" }] : [{ login: "ops" }, { email: "x" }];
    return Response.json(members.map((m) => ({ ...m, teamId: Number(id) })));
  });
  try {
    const cfg = parseApiConfig(`ceems_api_server:
  data: {path: ${dir}/data}
  admin:
    users: [root]
    grafana:
      url: http://127.0.0.1:${grafana.addr.port}/
      teams_ids: ['1', '2']
      basic_auth: {username: svc, password: pw}
`);
    const storage = new SqliteStorage(cfg.data.path);
    const cycle = new UpdateCycle(cfg, storage, [], new Map(), nullLogger, { skipDeleteOldUnits: true });
    await cycle.run();
    const admins = () => storage.adminUsers().map((a) => `${a.name}:${(a.tags as string[])[0]}`);
    assertEquals(admins(), ["ceems-int-svc:ceems", "gadmin:grafana", "ops:grafana", "root:ceems"]);
    assert(storage.isAdmin("gadmin") && !storage.isAdmin("alice"));
    assertEquals(seen[0], "Basic " + btoa("svc:pw"));
    up = false;
    await cycle.run();
    assert(storage.isAdmin("gadmin"), "admins kept while Grafana is down");
    storage.close();
  } finally {
    await grafana.shutdown();
    Deno.removeSync(dir, { recursive: true });
  }
});
