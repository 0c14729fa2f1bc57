// End-to-end test of `ceems api` as a subprocess with a fake sacct/sacctmgr printing CEEMS's fixtures:
// responses compared with CEEMS's expected bodies, access control, parameters, CORS and start-up errors.

import { join } from "node:path";
import { assert, assertEquals } from "../helpers/assert.ts";
import { repoRoot, runCeems, startCeems } from "../helpers/process.ts";
import { fakeSlurmTools } from "../helpers/fake_slurm.ts";

const fixtures = join(repoRoot, "tests/api_server/fixtures");
const expected = (name: string) => Deno.readTextFileSync(join(fixtures, "expected", `e2e-test-api-${name}.txt`));

Deno.test("ceems api serves CEEMS-compatible responses from sacct fixtures", async (t) => {
  const dir = Deno.makeTempDirSync({ prefix: "ceems-api-e2e-" });
  const bin = fakeSlurmTools(dir);
  Deno.writeTextFileSync(
    join(dir, "config.yml"),
    `ceems_api_server:
  data:
    path: ${dir}/data
    backup_path: ${dir}/backup
    update_from: '${new Date(Date.now() - 86_400_000).toISOString().slice(0, 10)}'
    max_update_interval: 3d
    time_zone: Europe/Paris
  admin:
    users: [grafana, __test_admin]
clusters:
  - id: slurm-0
    manager: slurm
    cli: {path: ${bin}}
  - id: slurm-1
    manager: slurm
    cli: {path: ${bin}}
`,
  );
  const api = await startCeems([
    "api",
    `--config.file=${dir}/config.yml`,
    "--web.route-prefix=/ceems/",
    "--web.cors.origin=https://reqbin\\.com",
    "--query.max-period=2d",
    "--storage.data.skip.delete.old.units",
  ]);
  const base = `${api.base}/ceems/api/v1`;
  const get = async (path: string, user?: string, init: RequestInit = {}) => {
    const headers = new Headers(init.headers);
    if (user) headers.set("X-Grafana-User", user);
    const r = await fetch(base + path, { ...init, headers });
    return { status: r.status, body: await r.text(), headers: r.headers };
  };
  try {
    // Wait for the first update to land.
    const deadline = Date.now() + 20_000;
    while (Date.now() < deadline) {
      const r = await get("/stats/global/admin", "grafana");
      if (r.status === 200 && JSON.parse(r.body).data.length === 2) break;
      await new Promise((r) => setTimeout(r, 200));
    }

    await t.step("units by uuid match CEEMS's body (minus TSDB aggregates)", async () => {
      const r = await get("/units?uuid=1481508&cluster_id=slurm-0", "usr2");
      assertEquals(r.status, 200);
      assertEquals(r.headers.get("content-type"), "application/json");
      const want = JSON.parse(expected("server-uuid-query"));
      for (const u of want.data) {
        for (const k of Object.keys(u)) if (/^(avg_|total_)/.test(k) && k !== "total_time_seconds") delete u[k];
      }
      assertEquals(JSON.parse(r.body), want);
      assert(r.body.endsWith("}\n"), "body ends with a newline like Go's encoder");
      const utc = await get("/units?uuid=1481508&cluster_id=slurm-0&timezone=UTC&field=uuid&field=started_at", "usr2");
      assertEquals(JSON.parse(utc.body).data, [{ uuid: "1481508", started_at: "2023-02-21T14:49:06+0000" }]);
      assertEquals((await get("/units?uuid=1481508&timezone=Mars/Base", "usr2")).status, 400);
    });

    await t.step("users and projects match CEEMS's bodies byte for byte", async () => {
      assertEquals((await get("/users", "usr1")).body, expected("server-user-query"));
      assertEquals((await get("/projects?project=acc1", "usr1")).body, expected("server-project-query"));
      assertEquals((await get("/projects?project=acc3", "usr1")).body, expected("server-project-empty-query"));
    });

    await t.step("access control: 401 without user, 403 for non-admin and foreign uuids", async () => {
      const noUser = await get("/units");
      assertEquals(noUser.status, 401);
      assertEquals(
        noUser.body,
        '{"status":"error","data":null,"errorType":"unauthorized","error":"no user identified"}\n',
      );
      const denied = await get("/units/admin", "usr1");
      assertEquals(denied.status, 403);
      assertEquals(denied.body, expected("server-admin--denied-query"));
      const vf = await get("/units/verify?uuid=1481510", "usr1");
      assertEquals(vf.status, 403);
      assertEquals(vf.body, expected("verify-fail-query"));
      const vp = await get("/units/verify?uuid=1479763&uuid=147973", "usr1");
      assertEquals(vp.status, 200);
      assertEquals(vp.body, expected("verify-pass-query"));
      assertEquals((await get("/units/verify", "usr1")).status, 400);
      // A user never sees another user's units, even asking by uuid.
      assertEquals(JSON.parse((await get("/units?uuid=1481510", "usr1")).body).data, []);
    });

    await t.step("parameters: invalid fields, max period, malformed time, running units", async () => {
      const bad = await get("/units?field=foo", "usr1");
      assertEquals(bad.status, 400);
      assertEquals(bad.body, expected("server-units-invalid-query"));
      const sel = JSON.parse((await get("/units/admin?uuid=1481508&field=uuid&field=state&field=foo", "grafana")).body);
      assertEquals(sel.data[0], { uuid: "1481508", state: "CANCELLED by 1002" });
      const noUuid = JSON.parse((await get("/units/admin?uuid=1481508&field=state", "grafana")).body);
      assertEquals(noUuid.data[0], { uuid: "", state: "CANCELLED by 1002" }, "Go encodes the unselected uuid");
      const long = await get("/units?from=0&to=999999", "usr1");
      assertEquals(long.status, 400);
      assertEquals(JSON.parse(long.body).error, "maximum query window exceeded");
      assertEquals(JSON.parse((await get("/units?from=yesterday", "usr1")).body).error, "malformed timestamp");
      const running = JSON.parse((await get("/units?running&field=uuid&field=state&cluster_id=slurm-0", "usr3")).body);
      assertEquals(running.data, [{ uuid: "2009248", state: "RUNNING" }]);
      const none = JSON.parse((await get("/units?field=uuid", "usr3")).body);
      assertEquals(none.data, [], "ended units outside the default 24 h window are not listed");
    });

    await t.step("admin endpoints: clusters, stats, usage", async () => {
      assertEquals(
        (await get("/clusters/admin", "grafana")).body,
        '{"status":"success","data":[{"id":"slurm-0","manager":"slurm"},{"id":"slurm-1","manager":"slurm"}]}\n',
      );
      const stats = JSON.parse((await get("/stats/global/admin?cluster_id=slurm-0", "grafana")).body);
      assertEquals(stats.data, [{
        cluster_id: "slurm-0",
        resource_manager: "slurm",
        num_units: 12,
        num_inactive_units: 10,
        num_active_units: 2,
        num_projects: 5,
        num_users: 7,
      }]);
      const usage = JSON.parse(
        (await get("/usage/global?cluster_id=slurm-0&field=username&field=project&field=num_units", "usr1")).body,
      );
      // CEEMS's body for the same fixture: every member of usr1's projects (acc1, acc2).
      assertEquals(usage.data, [
        { cluster_id: "", resource_manager: "", num_units: 1, project: "acc1", groupname: "", username: "usr1" },
        { cluster_id: "", resource_manager: "", num_units: 1, project: "acc2", groupname: "", username: "usr1" },
        { cluster_id: "", resource_manager: "", num_units: 2, project: "acc1", groupname: "", username: "usr15" },
        { cluster_id: "", resource_manager: "", num_units: 2, project: "acc2", groupname: "", username: "usr2" },
        { cluster_id: "", resource_manager: "", num_units: 1, project: "acc1", groupname: "", username: "usr8" },
      ]);
      const admins = JSON.parse((await get("/users/admin?role=admin", "__test_admin")).body).data;
      assertEquals(admins.map((a: { name: string }) => a.name), ["__test_admin", "ceems-int-svc", "grafana"]);
    });

    await t.step("current usage aggregates units like CEEMS (times and counts from its body)", async () => {
      const now = Math.floor(Date.now() / 1000);
      const keep = ["cluster_id", "resource_manager", "num_units", "project", "groupname", "username"];
      const pick = (r: Record<string, unknown>) =>
        Object.fromEntries([...keep, "total_time_seconds"].map((k) => [k, r[k]]));
      // usr2's running job is counted here but not in CEEMS's fixed-window body: compare the others.
      const want = JSON.parse(expected("server-current-usage-query")).data
        .filter((r: Record<string, unknown>) => r.cluster_id === "slurm-1" && r.username !== "usr2")
        .map(pick);
      for (const extra of ["", "&experimental"]) {
        // `to` a quarter ahead: CEEMS rounds both bounds down to 15 minutes.
        const r = await get(`/usage/current?cluster_id=slurm-1&from=${now - 3600}&to=${now + 900}${extra}`, "usr1");
        assertEquals(r.status, 200, r.body);
        const got = JSON.parse(r.body).data.filter((x: Record<string, unknown>) => x.username !== "usr2").map(pick);
        assertEquals(got, want, `usage/current${extra}`);
      }
    });

    await t.step("current usage: 15-minute rounding and cache, groupby, per-user cache entries", async () => {
      const now = Math.floor(Date.now() / 1000);
      const q = (from: number) =>
        `/usage/current/admin?from=${from}&to=${
          now + 900
        }&field=num_units&field=cluster_id&field=username&field=project`;
      const from = Math.floor((now - 7200) / 900) * 900;
      const first = await get(q(from), "__test_admin");
      assertEquals(first.status, 200, first.body);
      assertEquals(first.headers.get("expires"), null, "a computed answer carries no Expires");
      // Same quarter of an hour for `from`: the cached answer, with its expiry.
      const again = await get(q(from + 899), "__test_admin");
      assertEquals(again.body, first.body);
      const exp = Date.parse(again.headers.get("expires") ?? "");
      assert(exp > Date.now() && exp <= Date.now() + 15 * 60_000, `Expires ${again.headers.get("expires")}`);
      // Without groupby, clusters merge per (username, project); groupby=cluster_id splits them again.
      const rows = (b: string) => JSON.parse(b).data as { cluster_id: string; username: string; project: string }[];
      const merged = rows(first.body);
      const split = rows((await get(`${q(from)}&groupby=cluster_id`, "__test_admin")).body);
      const pairs = (rs: typeof merged) => new Set(rs.map((r) => `${r.username}/${r.project}`));
      assertEquals(merged.length, pairs(merged).size, "one row per user and project");
      assert(split.length > merged.length, `${split.length} rows by cluster vs ${merged.length}`);
      assertEquals(pairs(split), pairs(merged));
      const bad = await get(`${q(from)}&groupby=uuid`, "__test_admin");
      assertEquals(bad.status, 400);
      assertEquals(JSON.parse(bad.body).errorType, "bad_data");
      // A user's cached answer is never served to another user with the same URL.
      const u1 = rows((await get(`/usage/current?from=${from}&to=${now + 900}`, "usr1")).body);
      const u8 = rows((await get(`/usage/current?from=${from}&to=${now + 900}`, "usr8")).body);
      assert(u1.length > 0 && u8.length > 0);
      assert(JSON.stringify(u1) !== JSON.stringify(u8), "per-user answers differ");
    });

    await t.step("CORS preflight matches CEEMS's headers", async () => {
      const r = await get("/units", undefined, { method: "OPTIONS", headers: { Origin: "https://reqbin.com" } });
      assertEquals(r.status, 200);
      const want = expected("preflight-query").split(/\r?\n/).slice(1).filter((l) => l.includes(": "));
      for (const line of want) {
        const [k, v] = line.split(": ");
        assertEquals(r.headers.get(k), v, k);
      }
      const other = await get("/units", "usr1", { headers: { Origin: "https://evil.example" } });
      assertEquals(other.headers.get("Access-Control-Allow-Origin"), null);
    });

    await t.step("health and demo need no user", async () => {
      const h = await fetch(`${api.base}/health`);
      assertEquals([h.status, await h.text()], [200, "CEEMS API Server is healthy"]);
      const d = await fetch(`${base}/demo/units`);
      assertEquals(d.status, 200);
      assert(JSON.parse(await d.text()).data.length > 0);
    });
  } finally {
    const { code } = await api.stop();
    assertEquals(code, 0);
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("ceems api rejects a bad configuration with one line naming the key", async () => {
  const dir = Deno.makeTempDirSync({ prefix: "ceems-api-badcfg-" });
  try {
    const cases: [string, RegExp][] = [
      [
        "clusters:\n  - {id: a, manager: slurm}\n  - {id: a, manager: slurm}\n",
        /clusters\[1\]\.id: duplicate cluster id "a"/,
      ],
      ["clusters:\n  - {id: a, manager: lsf}\n", /clusters\[0\]\.manager: unknown resource manager "lsf"/],
      ["ceems_api_server:\n  data:\n    update_interval: soon\n", /update_interval: invalid duration "soon"/],
      ["clusters:\n  - {id: a, manager: slurm, updaters: [nope]}\n", /unknown updater id "nope"/],
    ];
    for (const [yaml, re] of cases) {
      Deno.writeTextFileSync(join(dir, "c.yml"), yaml);
      const r = await runCeems(["api", `--config.file=${dir}/c.yml`, "--web.listen-address=127.0.0.1:0"]);
      assertEquals(r.code, 2, r.stderr);
      assertEquals(r.stderr.trim().split("\n").length, 1, r.stderr);
      assert(re.test(r.stderr), `${re} in ${r.stderr}`);
      assert(r.stderr.includes("--config.file"), r.stderr);
    }
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("ceems api without clusters serves an empty API, gzipped with --web.compression", async () => {
  const dir = Deno.makeTempDirSync({ prefix: "ceems-api-gzip-" });
  Deno.writeTextFileSync(join(dir, "c.yml"), `ceems_api_server:\n  data:\n    path: ${dir}/data\n`);
  const api = await startCeems(["api", `--config.file=${dir}/c.yml`, "--web.compression"]);
  try {
    const client = Deno.createHttpClient({});
    const r = await fetch(`${api.base}/api/v1/units`, {
      headers: { "X-Grafana-User": "u", "Accept-Encoding": "gzip" },
      client,
    });
    assertEquals(r.headers.get("content-encoding"), "gzip");
    assertEquals(await r.text(), '{"status":"success","data":[]}\n', "fetch decodes the gzip body");
    client.close();
  } finally {
    assertEquals((await api.stop()).code, 0);
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("ceems api limits: one-year default --query.max-period, times out of range and overlong lists are 400", async () => {
  const dir = Deno.makeTempDirSync({ prefix: "ceems-api-limits-" });
  Deno.writeTextFileSync(join(dir, "c.yml"), `ceems_api_server:\n  data:\n    path: ${dir}/data\n`);
  const api = await startCeems(["api", `--config.file=${dir}/c.yml`]);
  const get = async (q: string) => {
    const r = await fetch(`${api.base}/api/v1/units?${q}`, { headers: { "X-Grafana-User": "u" } });
    return { status: r.status, error: (await r.json()).error as string | undefined };
  };
  try {
    const now = Math.floor(Date.now() / 1000);
    assertEquals(await get(`from=${now - 360 * 86400}&to=${now}`), { status: 200, error: undefined });
    assertEquals(await get(`from=0&to=${now}`), { status: 400, error: "maximum query window exceeded" });
    for (const q of ["from=1e20", "from=99999999999999999&to=99999999999999999", "to=-99999999999999999"]) {
      const r = await get(q);
      assertEquals(r.status, 400, q);
    }
    assertEquals((await get("from=99999999999999999")).error, "timestamp out of range");
    const many = await get(`uuid=${Array(10_001).fill("a").join(",")}`);
    assertEquals(many, { status: 400, error: "too many values of uuid (at most 10000)" });
    assertEquals((await get(`uuid=${Array(10_000).fill("a").join(",")}`)).status, 200);
  } finally {
    assertEquals((await api.stop()).code, 0);
    Deno.removeSync(dir, { recursive: true });
  }
});
