// End-to-end tests of `ceems lb` as a subprocess: start-up errors name the flag or config key, and a
// running LB serves both listeners in front of a real Prometheus with DB ownership checks.

import { assert, assertEquals, assertMatch } from "../helpers/assert.ts";
import { CEEMS_ENV, freePort, mainTs, runCeems, startCeems } from "../helpers/process.ts";
import { startPrometheus, toOpenMetrics } from "../helpers/prometheus_server.ts";
import { threadCredentials } from "../../privilege/inspect.ts";
import { CLUSTER, createUnitsDb, runningApiDb, unitSeries } from "./fixtures.ts";

Deno.test("ceems lb start-up errors are one line naming the flag or key, exit 2", async () => {
  const dir = await Deno.makeTempDir();
  try {
    let r = await runCeems(["lb"]);
    assertEquals(r.code, 2);
    assertEquals(r.stderr, "ceems lb: error: --config.file: a configuration file is required\n");
    await Deno.writeTextFile(
      `${dir}/bad.yml`,
      "ceems_lb:\n  strategy: random\n  backends: [{id: a, tsdb: [{web: {url: 'http://x:1'}}]}]\n",
    );
    r = await runCeems(["lb", `--config.file=${dir}/bad.yml`]);
    assertEquals(r.code, 2);
    assertMatch(
      r.stderr,
      /^ceems lb: error: --config\.file: .*bad\.yml: ceems_lb\.strategy: unknown strategy "random"/,
    );
    assertEquals(r.stderr.trim().split("\n").length, 1);
    await Deno.writeTextFile(
      `${dir}/two.yml`,
      "ceems_lb:\n  backends: [{id: a, tsdb: [{web: {url: 'http://x:1'}}], pyroscope: [{web: {url: 'http://x:2'}}]}]\n" +
        "ceems_api_server: {web: {url: 'http://127.0.0.1:1'}}\n",
    );
    r = await runCeems(["lb", `--config.file=${dir}/two.yml`, "--web.listen-address=127.0.0.1:0"]);
    assertEquals(r.code, 2);
    assertMatch(r.stderr, /--web\.listen-address: insufficient addresses\. Expected 2 got 1/);
    const api = await runningApiDb(dir);
    await Deno.writeTextFile(
      `${dir}/ids.yml`,
      `ceems_lb:\n  backends: [{id: slurm-9, tsdb: [{web: {url: 'http://x:1'}}]}]\nceems_api_server:\n  data: {path: "${dir}"}\n`,
    );
    r = await runCeems(["lb", `--config.file=${dir}/ids.yml`]);
    api.storage.close();
    assertEquals(r.code, 2);
    assertMatch(r.stderr, /backend ID\(s\) slurm-9 unknown to the CEEMS API server \(known: slurm-0, slurm-1\)/);
    r = await runCeems(["lb", `--config.file=${dir}/missing.yml`]);
    assertEquals(r.code, 2);
    assertMatch(r.stderr, /--config\.file: .*missing\.yml/);
    // Fail closed: no ownership source, or one expanded from an unset variable, stops start-up naming the key.
    const lb = "ceems_lb:\n  backends: [{id: slurm-0, tsdb: [{web: {url: 'http://x:1'}}]}]\n";
    await Deno.writeTextFile(`${dir}/none.yml`, lb);
    r = await runCeems(["lb", `--config.file=${dir}/none.yml`]);
    assertEquals([r.code, r.stderr.trim().split("\n").length], [2, 1], r.stderr);
    assertMatch(r.stderr, /ceems_api_server: missing/);
    await Deno.writeTextFile(`${dir}/env.yml`, lb + 'ceems_api_server:\n  data: {path: "${CEEMS_DATA_DIR}"}\n');
    r = await runCeems(["lb", `--config.file=${dir}/env.yml`, "--config.file.expand-env-vars"]);
    assertEquals([r.code, r.stderr.trim().split("\n").length], [2, 1], r.stderr);
    assertMatch(r.stderr, /ceems_api_server\.data\.path: empty/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test({
  name: "ceems lb serves the TSDB LB on the first address and the Pyroscope LB on the second",
  sanitizeResources: false,
  async fn() {
    const dir = await Deno.makeTempDir();
    const api = await runningApiDb(dir);
    const now = Date.now();
    const prom = await startPrometheus({ openMetrics: toOpenMetrics(unitSeries(), now - 600e3, now + 1200e3, 30e3) });
    const pyro = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, () => new Response("profiles"));
    await Deno.writeTextFile(
      `${dir}/lb.yml`,
      `ceems_lb:
  strategy: least-connection
  backends:
    - id: ${CLUSTER}
      tsdb: [{web: {url: "${prom.url}"}}]
      pyroscope: [{web: {url: "http://127.0.0.1:${pyro.addr.port}"}}]
ceems_api_server:
  data: {path: "${dir}"}
`,
    );
    const [p1, p2] = [freePort(), freePort()];
    const child = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        mainTs,
        "lb",
        `--config.file=${dir}/lb.yml`,
        `--web.listen-address=127.0.0.1:${p1}`,
        `--web.listen-address=127.0.0.1:${p2}`,
      ],
      env: CEEMS_ENV,
      stdout: "null",
      stderr: "piped",
    }).spawn();
    const stderr = new Response(child.stderr).text();
    try {
      const h = { "X-Ceems-Cluster-Id": CLUSTER };
      let health: Response | undefined;
      for (let i = 0; i < 200 && !health; i++) {
        health = await fetch(`http://127.0.0.1:${p2}/health`, { headers: h }).catch(() => undefined);
        if (!health) await new Promise((r) => setTimeout(r, 100));
      }
      assert(health, "lb did not start");
      assertEquals(await health.text(), "CEEMS LB Server is healthy");
      const bad = await fetch(`http://127.0.0.1:${p1}/health`);
      assertEquals(bad.status, 400);
      assertEquals((await bad.json()).errorType, "bad_request");
      const q = (user: string, query: string) =>
        fetch(`http://127.0.0.1:${p1}/api/v1/query?query=${encodeURIComponent(query)}`, {
          headers: { ...h, "X-Grafana-User": user },
        });
      let r = await q("alice", 'ceems_cpu_usage{uuid="1001"}');
      assertEquals(r.status, 200);
      const body = await r.json();
      assertEquals(body.data.result.map((s: { metric: { uuid: string } }) => s.metric.uuid), ["1001"]);
      r = await q("bob", 'ceems_cpu_usage{uuid="1001"}');
      assertEquals(r.status, 403);
      assertEquals((await r.json()).error, "user do not have permissions to view unit metrics");
      r = await fetch(`http://127.0.0.1:${p1}/api/v1/query?query=up`, { headers: h });
      assertEquals(r.status, 401);
      await r.body?.cancel();
      r = await fetch(`http://127.0.0.1:${p2}/querier.v1.QuerierService/SelectMergeStacktraces`, {
        method: "POST",
        headers: { ...h, "X-Grafana-User": "alice", "content-type": "application/json" },
        body: JSON.stringify({ labelSelector: '{service_name="1002"}' }),
      });
      assertEquals(await r.text(), "profiles");
      // Started as root, it runs as nobody with no capability on any thread, and added no ACL to the database.
      const threads = threadCredentials(child.pid);
      assert(threads.length > 3);
      for (const t of threads) {
        assertEquals([t.uid, t.capEff, t.capPrm, t.capInh, t.capAmb], [[65534, 65534, 65534, 65534], 0n, 0n, 0n, 0n]);
      }
      const acl = await new Deno.Command("getfacl", { args: ["-cp", api.path], stdout: "piped" }).output();
      assertEquals(new TextDecoder().decode(acl.stdout).trim().split("\n"), ["user::rw-", "group::r--", "other::---"]);
    } finally {
      child.kill("SIGTERM");
      const st = await child.status;
      const log = await stderr;
      await pyro.shutdown();
      await prom.stop();
      api.storage.close();
      await Deno.remove(dir, { recursive: true });
      assertEquals(st.code, 0, log);
      assertMatch(log, /ceems lb started/);
    }
  },
});

Deno.test({
  name:
    "ceems lb as root: an unreadable database stops start-up; with the API server stopped it answers 503 until it runs",
  sanitizeResources: false,
  async fn() {
    const dir = await Deno.makeTempDir();
    Deno.chmodSync(dir, 0o755);
    const path = await createUnitsDb(dir);
    const cfg = `${dir}/lb.yml`;
    await Deno.writeTextFile(
      cfg,
      `ceems_lb:\n  backends: [{id: ${CLUSTER}, tsdb: [{web: {url: "http://127.0.0.1:${freePort()}"}}]}]\n` +
        `ceems_api_server:\n  data: {path: "${dir}"}\n`,
    );
    Deno.chmodSync(cfg, 0o644);
    try {
      // 0640 root:root: nobody may not read it. No ACL is added for it: start-up stops, naming the key.
      const r = await runCeems(["lb", `--config.file=${cfg}`, "--web.listen-address=127.0.0.1:0"]);
      assertEquals([r.code, r.stderr.trim().split("\n").length], [2, 1], r.stderr);
      assertMatch(
        r.stderr,
        /^ceems lb: error: ceems_api_server\.data\.path: .*ceems\.db is not readable by nobody.*no ACL/,
      );

      // Readable, but the API server is not running: its WAL files are gone and the read-only LB cannot
      // create them. It starts with a warning and refuses (503) until the API server runs again.
      Deno.chownSync(path, 0, 65534);
      const lb = await startCeems(["lb", `--config.file=${cfg}`], { env: CEEMS_ENV });
      const q = () =>
        fetch(`${lb.base}/api/v1/query?query=${encodeURIComponent('ceems_cpu_usage{uuid="1001"}')}`, {
          headers: { "X-Ceems-Cluster-Id": CLUSTER, "X-Grafana-User": "alice" },
        });
      try {
        let resp = await q();
        assertEquals(resp.status, 503, await resp.text());
        const { SqliteStorage } = await import("../../api_server/storage/sqlite.ts");
        const storage = new SqliteStorage(dir);
        storage.ping();
        try {
          resp = await q();
          // The backend is down (503 from the proxy) but the ownership check passed: the body says which.
          assertEquals(await resp.text(), "Service not available\n");
          resp = await fetch(`${lb.base}/api/v1/query?query=up`, {
            headers: { "X-Ceems-Cluster-Id": CLUSTER, "X-Grafana-User": "bob" },
          });
          assertEquals(resp.status, 403);
          await resp.body?.cancel();
        } finally {
          storage.close();
        }
      } finally {
        const { code, stderr } = await lb.stop();
        assertEquals(code, 0, stderr);
        assertMatch(stderr, /could not verify backend IDs/);
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test("ceems lb --print-capabilities: none, and no CAP_FOWNER for a root start", async () => {
  const r = await runCeems(["lb", "--print-capabilities"]);
  assertEquals(r.code, 0);
  assertMatch(r.stdout, /^capabilities: none$/m);
  assertMatch(r.stdout, /^CapabilityBoundingSet=CAP_SETGID CAP_SETPCAP CAP_SETUID$/m);
});
