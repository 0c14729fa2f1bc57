// Update cycle: clusters catch up independently in max_update_interval windows; a cluster whose sacct fails
// keeps its last window and catches up later, so its units are not lost while the others advance.

import { join } from "node:path";
import { assert, assertEquals, assertRejects } from "../helpers/assert.ts";
import { repoRoot } from "../helpers/process.ts";
import { Logger, nullLogger } from "../../common/log.ts";
import { InlineSecurityManager } from "../../privilege/security.ts";
import { parseApiConfig } from "../../api_server/config.ts";
import { SlurmManager } from "../../api_server/managers/slurm.ts";
import { SqliteStorage } from "../../api_server/storage/sqlite.ts";
import { WorkerStorage } from "../../api_server/storage/writer_client.ts";
import { DatabaseSync } from "node:sqlite";
import { HealthState } from "../../api_server/health.ts";
import { apiHandler } from "../../api_server/http/api.ts";
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
      retryBaseMs: 0,
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

/** A cluster `c0` whose sacct runs `script` (sh) and whose sacctmgr prints the fixture; clock under test control. */
async function scriptedCluster(
  dir: string,
  script: string,
  opts: { retryBaseMs?: number; writerThread?: boolean; health?: HealthState } = {},
) {
  Deno.writeTextFileSync(join(dir, "sacct"), `#!/bin/sh\necho "$@" >> '${dir}/calls'\n${script}`, { mode: 0o755 });
  Deno.writeTextFileSync(join(dir, "sacctmgr"), `#!/bin/sh\ncat '${fixtures}/sacctmgr.txt'\n`, { mode: 0o755 });
  const cfg = parseApiConfig(`ceems_api_server:
  data: {path: ${dir}/data, update_from: '2026-06-01T09:00Z', max_update_interval: 1h}
clusters:
  - {id: c0, manager: slurm, cli: {path: ${dir}}}
`);
  const lines: string[] = [];
  const logger = new Logger("debug", "logfmt", {}, (l) => lines.push(l));
  // In this thread, or on the writer thread as the server runs it (sacct parsed there).
  const storage = opts.writerThread ? await WorkerStorage.open(cfg.data.path) : new SqliteStorage(cfg.data.path);
  const clock = { now: Date.parse("2026-06-01T12:00:00Z") };
  const managers = cfg.clusters.map((c) => new SlurmManager(c, new InlineSecurityManager(), "plain", logger));
  const cycle = new UpdateCycle(cfg, storage, managers, new Map(), logger, {
    skipDeleteOldUnits: true,
    now: () => clock.now,
    retryBaseMs: opts.retryBaseMs ?? 60_000,
    health: opts.health,
  });
  const calls = () => {
    try {
      return Deno.readTextFileSync(join(dir, "calls")).trim().split("\n").length;
    } catch {
      return 0;
    }
  };
  const minUpdates = () => {
    const db = new DatabaseSync(join(cfg.data.path, "ceems.db"), { readOnly: true });
    try {
      return (db.prepare("SELECT MIN(num_updates) AS n FROM units").get() as { n: number }).n;
    } finally {
      db.close();
    }
  };
  return { cycle, storage, clock, lines, calls, minUpdates };
}

for (const writerThread of [false, true]) {
  Deno.test(
    `sacct printing non-records with exit 0 keeps the window; one log line, retried with backoff${
      writerThread ? " (parsed on the writer thread)" : ""
    }`,
    async () => {
      const dir = Deno.makeTempDirSync({ prefix: "ceems-cycle-bad-" });
      try {
        const good = join(dir, "good");
        const c = await scriptedCluster(
          dir,
          `[ -e '${good}' ] && exec cat '${fixtures}/sacct.txt'\necho 'sacct: note: the accounting daemon is being upgraded'\necho 'done'\n`,
          { writerThread },
        );
        const errors = () => c.lines.filter((l) => l.includes("level=error")).length;
        await c.cycle.run().catch(() => {});
        assertEquals(await c.storage.lastUpdateMs("c0"), undefined, "the window is not applied");
        assertEquals(errors(), 1);
        assert(c.lines.some((l) => /update failed.*none parses/.test(l)), c.lines.join("\n"));
        // Within the backoff, ticks leave the cluster alone; after it, the retry fails quietly (same error).
        await c.cycle.run().catch(() => {});
        assertEquals(c.calls(), 1, "no attempt before the backoff ends");
        c.clock.now += 60_000;
        await c.cycle.run().catch(() => {});
        assertEquals(c.calls(), 2);
        c.clock.now += 60_000;
        await c.cycle.run().catch(() => {});
        assertEquals(c.calls(), 2, "the second backoff is twice as long");
        c.clock.now += 60_000;
        await c.cycle.run().catch(() => {});
        assertEquals([c.calls(), errors()], [3, 1], "retried, not logged again");
        // Fixed: every window since update_from arrives.
        Deno.writeTextFileSync(good, "");
        c.clock.now += 4 * 60_000;
        await c.cycle.run();
        assertEquals(await c.storage.lastUpdateMs("c0"), c.clock.now);
        // 09:00-12:07 in 1 h windows: every fixture job is applied once per window, none lost.
        assertEquals(c.minUpdates(), 4);
        assert(c.lines.some((l) => l.includes("update recovered")));
        await c.storage.close();
      } finally {
        Deno.removeSync(dir, { recursive: true });
      }
    },
  );
}

for (const writerThread of [false, true]) {
  Deno.test(
    `an empty window after running units counts only when sacct still lists them by id${
      writerThread ? " (parsed on the writer thread)" : ""
    }`,
    async () => {
      const dir = Deno.makeTempDirSync({ prefix: "ceems-cycle-empty-" });
      try {
        const mode = join(dir, "mode");
        // First the fixture (with running jobs); then nothing for windows, and --jobs answered per `mode`.
        const c = await scriptedCluster(
          dir,
          `case "$*" in *--jobs*) [ "$(cat '${mode}')" = knows ] && echo "$*" | tr ' ,' '\\n\\n' | grep -x '[0-9]*'; exit 0;; esac
[ "$(cat '${mode}')" = fixture ] && cat '${fixtures}/sacct.txt'
exit 0
`,
          { retryBaseMs: 0, writerThread },
        );
        Deno.writeTextFileSync(mode, "fixture");
        c.clock.now = Date.parse("2026-06-01T10:00:00Z");
        await c.cycle.run();
        const running = await c.storage.runningUnits("c0", 50);
        assert(running.length > 0, "the fixture has running jobs");
        Deno.writeTextFileSync(mode, "silent");
        c.clock.now += 3_600_000;
        await assertRejects(() => c.cycle.run(), /cluster/);
        assertEquals(
          await c.storage.lastUpdateMs("c0"),
          Date.parse("2026-06-01T10:00:00Z"),
          "the silent window is kept",
        );
        Deno.writeTextFileSync(mode, "knows");
        await c.cycle.run();
        assertEquals(
          await c.storage.lastUpdateMs("c0"),
          c.clock.now,
          "sacct knows the jobs: the window really was empty",
        );
        await c.storage.close();
      } finally {
        Deno.removeSync(dir, { recursive: true });
      }
    },
  );
}

Deno.test("started, a failing cluster is retried before the next tick, at growing intervals; stop ends the loop", async () => {
  const dir = Deno.makeTempDirSync({ prefix: "ceems-cycle-loop-" });
  try {
    const c = await scriptedCluster(dir, "echo down >&2\nexit 1\n", { retryBaseMs: 100 });
    c.clock.now = Date.now();
    const cfgClock = setInterval(() => (c.clock.now = Date.now()), 5);
    c.cycle.start(60_000);
    await new Promise((r) => setTimeout(r, 1_000));
    await c.cycle.stop();
    clearInterval(cfgClock);
    const calls = Deno.readTextFileSync(join(dir, "calls")).trim().split("\n").length;
    // Attempts at 0, 0.1, 0.3, 0.7 s (then 1.5 s): four, give or take scheduling.
    assert(calls >= 3 && calls <= 5, `${calls} attempts in 1 s`);
    assertEquals(c.lines.filter((l) => l.includes("level=error")).length, 1, c.lines.join("\n"));
    c.storage.close();
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("/health turns 503 after three failed attempts of a cluster, naming it, and recovers with it", async () => {
  const dir = Deno.makeTempDirSync({ prefix: "ceems-cycle-health-" });
  try {
    const health = new HealthState();
    const ok = join(dir, "ok");
    const c = await scriptedCluster(
      dir,
      `[ -e '${ok}' ] && exec cat '${fixtures}/sacct.txt'\necho 'slurmdbd down' >&2\nexit 1\n`,
      {
        retryBaseMs: 0,
        health,
      },
    );
    const handler = apiHandler({
      storage: c.storage as SqliteStorage,
      health: () => health.reason(),
      logger: nullLogger,
      routePrefix: "/",
      userHeaders: ["X-Grafana-User"],
      corsOrigin: ".*",
      maxRequestsPerMinute: 0,
      maxQueryPeriodMs: 0,
      adminUsers: [],
      serviceClients: [],
    });
    const check = async () => {
      const r = await handler(new Request("http://x/health"), { remoteAddr: "127.0.0.1" })!;
      return [r.status, await r.text()];
    };
    for (let i = 0; i < 2; i++) await c.cycle.run().catch(() => {});
    assertEquals(await check(), [200, "CEEMS API Server is healthy"], "two failures: not yet");
    await c.cycle.run().catch(() => {});
    const [status, body] = await check();
    assertEquals(status, 503);
    assert(
      /^KO: cluster c0: 3 consecutive update failures: \S*sacct .* exited with status 1: slurmdbd down$/.test(
        body as string,
      ),
      body as string,
    );
    Deno.writeTextFileSync(ok, "");
    await c.cycle.run();
    assertEquals(await check(), [200, "CEEMS API Server is healthy"]);
    c.storage.close();
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});
