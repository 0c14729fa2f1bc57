// Tests of the proxy path: client credentials and identity headers never reach a backend, backend
// credentials come from the config (checked by a real Prometheus), retries, 503 and streaming.

import bcrypt from "bcryptjs";
import { assert, assertEquals } from "../helpers/assert.ts";
import { nullLogger } from "../../common/log.ts";
import { serve } from "../../common/web/server.ts";
import { emptyWebConfig } from "../../common/web/web_config.ts";
import { tsdbHandler } from "../../lb/frontend.ts";
import { CachedOwnership } from "../../lb/ownership.ts";
import { ServerPool } from "../../lb/pool.ts";
import { makeTestCerts } from "../helpers/certs.ts";
import { freePort } from "../helpers/process.ts";
import { startPrometheus, toOpenMetrics } from "../helpers/prometheus_server.ts";
import { ADMIN, CLUSTER, ownershipOnRunningApi, unitSeries } from "./fixtures.ts";

/** Starts the TSDB frontend in-process on a free port for `pool`, with ownership from a fixture database. */
async function startFrontend(pool: ServerPool) {
  const dbDir = await Deno.makeTempDir();
  const ownership = new CachedOwnership(await ownershipOnRunningApi(dbDir));
  const server = await serve({
    addresses: ["127.0.0.1:0"],
    webConfig: emptyWebConfig,
    logger: nullLogger,
    handler: tsdbHandler({ pool, ownership, logger: nullLogger }),
  });
  return {
    url: `http://${server.addresses[0]}`,
    async close() {
      await server.close();
      pool.stop();
      ownership.close();
      await Deno.remove(dbDir, { recursive: true });
    },
  };
}

/** A backend that records each request and answers with a small JSON body. */
function recordingBackend() {
  const seen: { url: string; method: string; headers: Headers; body: string }[] = [];
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (req) => {
    seen.push({ url: req.url, method: req.method, headers: req.headers, body: await req.text() });
    return Response.json({ status: "success", data: { resultType: "vector", result: [] } });
  });
  return { url: `http://127.0.0.1:${server.addr.port}`, seen, close: () => server.shutdown() };
}

Deno.test("client Authorization, cookies and identity headers are dropped; config credentials are added", async () => {
  const backend = recordingBackend();
  const pool = new ServerPool("round-robin", nullLogger);
  pool.add(CLUSTER, {
    url: backend.url,
    client: {
      basic_auth: { username: "prom", password: "s3cret" },
      http_headers: { "X-Scope-OrgID": { values: ["t1"] } },
    },
    filterLabels: [],
  });
  const fe = await startFrontend(pool);
  try {
    const q = encodeURIComponent('ceems_cpu_usage{uuid="1001"}');
    const r = await fetch(`${fe.url}/api/v1/query?query=${q}&time=5`, {
      headers: {
        "Authorization": "Bearer client-token",
        "Cookie": "grafana_session=abc",
        "X-Grafana-User": "alice",
        "X-Ceems-Cluster-Id": CLUSTER,
        "X-Forwarded-For": "10.0.0.1",
        "X-Ceems-Admin-User": "alice",
      },
    });
    assertEquals(r.status, 200);
    await r.body?.cancel();
    assertEquals(backend.seen.length, 1);
    const h = backend.seen[0].headers;
    assertEquals(h.get("authorization"), `Basic ${btoa("prom:s3cret")}`);
    assertEquals(h.get("x-scope-orgid"), "t1");
    for (const name of ["cookie", "x-grafana-user", "x-ceems-cluster-id", "x-forwarded-for", "x-ceems-admin-user"]) {
      assertEquals(h.get(name), null, `${name} was forwarded`);
    }
    const u = new URL(backend.seen[0].url);
    assertEquals(u.pathname, "/api/v1/query");
    assertEquals(u.searchParams.get("query"), 'ceems_cpu_usage{uuid="1001"}');
    assertEquals(u.searchParams.get("time"), "5");

    // POST bodies are re-encoded from the checked parameters.
    const p = await fetch(`${fe.url}/api/v1/query_range`, {
      method: "POST",
      headers: {
        "X-Grafana-User": "alice",
        "X-Ceems-Cluster-Id": CLUSTER,
        "content-type": "application/x-www-form-urlencoded",
      },
      body: `query=${q}&start=1&end=2&step=1`,
    });
    assertEquals(p.status, 200);
    await p.body?.cancel();
    assertEquals(backend.seen[1].method, "POST");
    assertEquals(new URLSearchParams(backend.seen[1].body).get("query"), 'ceems_cpu_usage{uuid="1001"}');
    assertEquals(backend.seen[1].headers.get("authorization"), `Basic ${btoa("prom:s3cret")}`);
  } finally {
    await fe.close();
    await backend.close();
  }
});

Deno.test("backend basic auth from the config is accepted by a real Prometheus with a web config", async () => {
  const dir = await Deno.makeTempDir();
  const webCfg = `${dir}/web.yml`;
  await Deno.writeTextFile(webCfg, `basic_auth_users:\n  prom: ${bcrypt.hashSync("s3cret", 4)}\n`);
  const now = Date.now();
  const prom = await startPrometheus({
    openMetrics: toOpenMetrics(unitSeries(), now - 600e3, now + 600e3, 30e3),
    args: [`--web.config.file=${webCfg}`],
    readyHeaders: { Authorization: `Basic ${btoa("prom:s3cret")}` },
  });
  try {
    for (const [password, status] of [["s3cret", 200], ["wrong", 401]] as const) {
      const pool = new ServerPool("round-robin", nullLogger);
      pool.add(CLUSTER, { url: prom.url, client: { basic_auth: { username: "prom", password } }, filterLabels: [] });
      const fe = await startFrontend(pool);
      try {
        const r = await fetch(`${fe.url}/api/v1/query?query=${encodeURIComponent('ceems_cpu_usage{uuid="1001"}')}`, {
          // The client's own credentials must not reach Prometheus (they are Prometheus's, too).
          headers: {
            "X-Ceems-Cluster-Id": CLUSTER,
            "X-Grafana-User": ADMIN,
            Authorization: `Basic ${btoa("prom:s3cret")}`,
          },
        });
        assertEquals(r.status, status);
        const text = await r.text();
        if (status === 200) assertEquals(JSON.parse(text).data.result.length, 1);
      } finally {
        await fe.close();
      }
    }
  } finally {
    await prom.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("TLS backend with client certificate and basic auth: a real Prometheus answers through the LB", async () => {
  const certs = makeTestCerts();
  const d = certs.dir;
  await Deno.writeTextFile(
    `${d}/web.yml`,
    `tls_server_config:
  cert_file: ${d}/server.crt
  key_file: ${d}/server.key
  client_ca_file: ${d}/ca.crt
  client_auth_type: RequireAndVerifyClientCert
basic_auth_users:
  prom: ${bcrypt.hashSync("s3cret", 4)}
`,
  );
  const readyClient = Deno.createHttpClient({ caCerts: [certs.caCert], cert: certs.clientCert, key: certs.clientKey });
  const now = Date.now();
  const prom = await startPrometheus({
    openMetrics: toOpenMetrics(unitSeries(), now - 600e3, now + 600e3, 30e3),
    args: [`--web.config.file=${d}/web.yml`],
    scheme: "https",
    readyClient,
    readyHeaders: { Authorization: `Basic ${btoa("prom:s3cret")}` },
  });
  try {
    const tls = { ca_file: `${d}/ca.crt`, cert_file: `${d}/client.crt`, key_file: `${d}/client.key` };
    for (const [tlsConfig, status] of [[tls, 200], [{ ca_file: `${d}/ca.crt` }, 503]] as const) {
      const pool = new ServerPool("round-robin", nullLogger);
      pool.add(CLUSTER, {
        url: prom.url,
        client: { basic_auth: { username: "prom", password: "s3cret" }, tls_config: tlsConfig },
        filterLabels: [],
      });
      const fe = await startFrontend(pool);
      try {
        const r = await fetch(`${fe.url}/api/v1/query?query=${encodeURIComponent('ceems_cpu_usage{uuid="1001"}')}`, {
          headers: { "X-Ceems-Cluster-Id": CLUSTER, "X-Grafana-User": ADMIN },
        });
        const text = await r.text();
        assertEquals(r.status, status, text);
        if (status === 200) assertEquals(JSON.parse(text).data.result[0].metric.uuid, "1001");
      } finally {
        await fe.close();
      }
    }
  } finally {
    readyClient.close();
    await prom.stop();
    await Deno.remove(d, { recursive: true });
  }
});

Deno.test("a connection error marks the backend down and retries another; none alive gives 503", async () => {
  const backend = recordingBackend();
  const pool = new ServerPool("round-robin", nullLogger);
  const dead = pool.add(CLUSTER, { url: `http://127.0.0.1:${freePort()}`, client: {}, filterLabels: [] });
  const live = pool.add(CLUSTER, { url: backend.url, client: {}, filterLabels: [] });
  const fe = await startFrontend(pool);
  const get = () =>
    fetch(`${fe.url}/api/v1/query?query=up`, { headers: { "X-Ceems-Cluster-Id": CLUSTER, "X-Grafana-User": ADMIN } });
  try {
    const r = await get();
    assertEquals(r.status, 200);
    await r.body?.cancel();
    assertEquals(dead.alive, false);
    assertEquals(backend.seen.length, 1);
    live.alive = false;
    const r2 = await get();
    assertEquals(r2.status, 503);
    assertEquals(await r2.text(), "Service not available\n");
    // Health checks bring the live one back (and keep the dead one down).
    await pool.checkHealth(2000);
    assertEquals([dead.alive, live.alive], [false, true]);
    const r3 = await get();
    assertEquals(r3.status, 200);
    await r3.body?.cancel();
  } finally {
    await fe.close();
    await backend.close();
  }
});

Deno.test("responses stream through without buffering", async () => {
  let release!: () => void;
  const gate = new Promise<void>((r) => release = r);
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, () => {
    const body = new ReadableStream<Uint8Array>({
      async start(ctrl) {
        ctrl.enqueue(new TextEncoder().encode('{"status":"success","data":['));
        await gate; // the rest only comes once the client has seen the first chunk
        for (let i = 0; i < 2000; i++) ctrl.enqueue(new TextEncoder().encode(`${i ? "," : ""}"${"x".repeat(500)}"`));
        ctrl.enqueue(new TextEncoder().encode("]}"));
        ctrl.close();
      },
    });
    return new Response(body, { headers: { "content-type": "application/json" } });
  });
  const pool = new ServerPool("least-connection", nullLogger);
  const b = pool.add(CLUSTER, { url: `http://127.0.0.1:${server.addr.port}`, client: {}, filterLabels: [] });
  const fe = await startFrontend(pool);
  try {
    const r = await fetch(`${fe.url}/api/v1/labels`, {
      headers: { "X-Ceems-Cluster-Id": CLUSTER, "X-Grafana-User": ADMIN },
    });
    const reader = r.body!.getReader();
    const first = await reader.read();
    assert(new TextDecoder().decode(first.value).startsWith('{"status":"success"'));
    assertEquals(b.active, 1); // still streaming: counted as an active connection
    release();
    let total = first.value!.length;
    while (true) {
      const { done, value } = await reader.read();
      if (done) break;
      total += value.length;
    }
    assert(total > 1_000_000, `only ${total} bytes`);
    assertEquals(b.active, 0);
  } finally {
    await fe.close();
    await server.shutdown();
  }
});
