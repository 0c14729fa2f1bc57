// Tests of the shared web server: plain HTTP routing, bcrypt basic auth (401 on a wrong password),
// configured headers, TLS with a generated certificate, and client-certificate verification.

import bcrypt from "bcryptjs";
import { nullLogger } from "../../../common/log.ts";
import { needsNodeServer, parseListenAddress, serve } from "../../../common/web/server.ts";
import { emptyWebConfig, type WebConfig } from "../../../common/web/web_config.ts";
import { assertEquals, assertRejects } from "../../helpers/assert.ts";
import { makeTestCerts, tlsWebConfig } from "../../helpers/certs.ts";

const handler = (req: Request) => new Response(`hello ${new URL(req.url).pathname} ${req.method}`);

Deno.test("parseListenAddress accepts Go forms and rejects garbage", () => {
  assertEquals(parseListenAddress(":9010"), { host: "", port: 9010 });
  assertEquals(parseListenAddress("127.0.0.1:1"), { host: "127.0.0.1", port: 1 });
  assertEquals(parseListenAddress("[::1]:9010"), { host: "::1", port: 9010 });
  for (const bad of ["9010", "host:", "a:99999"]) {
    let threw = false;
    try {
      parseListenAddress(bad);
    } catch {
      threw = true;
    }
    assertEquals(threw, true, bad);
  }
});

Deno.test("server: basic auth rejects wrong passwords with 401 and adds configured headers", async () => {
  const cfg: WebConfig = {
    basicAuthUsers: new Map([["prometheus", bcrypt.hashSync("password", 4)]]),
    headers: { "X-Frame-Options": "deny" },
  };
  const srv = await serve({ addresses: ["127.0.0.1:0"], webConfig: cfg, logger: nullLogger, handler });
  const url = `http://${srv.addresses[0]}/metrics`;
  try {
    const none = await fetch(url);
    assertEquals(none.status, 401);
    assertEquals(none.headers.get("www-authenticate"), "Basic");
    assertEquals(none.headers.get("x-frame-options"), "deny");
    await none.body?.cancel();
    const wrong = await fetch(url, { headers: { authorization: `Basic ${btoa("prometheus:nope")}` } });
    assertEquals(wrong.status, 401);
    await wrong.body?.cancel();
    const unknown = await fetch(url, { headers: { authorization: `Basic ${btoa("root:password")}` } });
    assertEquals(unknown.status, 401);
    await unknown.body?.cancel();
    for (let i = 0; i < 2; i++) { // the second time hits the verified-credentials cache
      const ok = await fetch(url, { headers: { authorization: `Basic ${btoa("prometheus:password")}` } });
      assertEquals(ok.status, 200);
      assertEquals(await ok.text(), "hello /metrics GET");
    }
  } finally {
    await srv.close();
  }
});

Deno.test("server: POST bodies stream through to the handler", async () => {
  const srv = await serve({
    addresses: ["127.0.0.1:0"],
    webConfig: emptyWebConfig,
    logger: nullLogger,
    handler: async (req) => new Response(`${req.method} ${(await req.text()).length}`),
  });
  try {
    const r = await fetch(`http://${srv.addresses[0]}/x`, { method: "POST", body: "a".repeat(100_000) });
    assertEquals(await r.text(), "POST 100000");
  } finally {
    await srv.close();
  }
});

Deno.test("server: TLS with client certificate verification", async () => {
  const certs = makeTestCerts();
  const cfg = tlsWebConfig(certs, "RequireAndVerifyClientCert");
  const srv = await serve({ addresses: ["127.0.0.1:0"], webConfig: cfg, logger: nullLogger, handler });
  const url = `https://${srv.addresses[0]}/health`;
  const trusted = Deno.createHttpClient({ caCerts: [certs.caCert], cert: certs.clientCert, key: certs.clientKey });
  const noCert = Deno.createHttpClient({ caCerts: [certs.caCert] });
  const stranger = Deno.createHttpClient({
    caCerts: [certs.caCert],
    cert: certs.strangerCert,
    key: certs.strangerKey,
  });
  try {
    const ok = await fetch(url, { client: trusted });
    assertEquals(await ok.text(), "hello /health GET");
    await assertRejects(() => fetch(url, { client: noCert }));
    await assertRejects(() => fetch(url, { client: stranger }));
    // Plain HTTP against the TLS port fails too.
    await assertRejects(async () => {
      const r = await fetch(url.replace("https", "http"));
      await r.text();
      if (r.ok) throw new Error("plain HTTP accepted");
    });
  } finally {
    trusted.close();
    noCert.close();
    stranger.close();
    await srv.close();
    Deno.removeSync(certs.dir, { recursive: true });
  }
});

Deno.test("server: back end choice — Deno.serve unless client certificates or TLS version bounds", () => {
  const tls = { cert: "c", key: "k", minVersion: "TLSv1.2", maxVersion: "TLSv1.3" } as const;
  assertEquals(needsNodeServer(undefined), false);
  assertEquals(needsNodeServer({ ...tls, clientAuthType: "NoClientCert" }), false);
  assertEquals(needsNodeServer({ ...tls, clientAuthType: "RequireAndVerifyClientCert", clientCa: "ca" }), true);
  assertEquals(needsNodeServer({ ...tls, clientAuthType: "NoClientCert", minVersion: "TLSv1.3" }), true);
  assertEquals(needsNodeServer({ ...tls, clientAuthType: "NoClientCert", maxVersion: "TLSv1.2" }), true);
});

Deno.test("server: TLS without client certificates (Deno.serve) serves HTTPS and refuses plain HTTP", async () => {
  const certs = makeTestCerts();
  const cfg: WebConfig = {
    basicAuthUsers: new Map(),
    headers: { "X-Content-Type-Options": "nosniff" },
    tls: {
      cert: certs.serverCert,
      key: certs.serverKey,
      clientAuthType: "NoClientCert",
      minVersion: "TLSv1.2",
      maxVersion: "TLSv1.3",
    },
  };
  const srv = await serve({ addresses: ["127.0.0.1:0"], webConfig: cfg, logger: nullLogger, handler });
  const url = `https://${srv.addresses[0]}/metrics`;
  const client = Deno.createHttpClient({ caCerts: [certs.caCert] });
  try {
    const ok = await fetch(url, { client });
    assertEquals(await ok.text(), "hello /metrics GET");
    assertEquals(ok.headers.get("x-content-type-options"), "nosniff");
    await assertRejects(() => fetch(url)); // the system trust store does not know the test CA
    await assertRejects(async () => {
      const r = await fetch(url.replace("https", "http"));
      await r.text();
      if (r.ok) throw new Error("plain HTTP accepted");
    });
  } finally {
    client.close();
    await srv.close();
    Deno.removeSync(certs.dir, { recursive: true });
  }
});

Deno.test("server: configured headers are added to proxied (immutable) responses; handler errors give 500", async () => {
  const upstream = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, () => new Response("up"));
  const srv = await serve({
    addresses: ["127.0.0.1:0"],
    webConfig: { basicAuthUsers: new Map(), headers: { "X-Frame-Options": "deny" } },
    logger: nullLogger,
    handler: (req) => {
      if (new URL(req.url).pathname === "/boom") throw new Error("boom");
      return fetch(`http://127.0.0.1:${upstream.addr.port}/`);
    },
  });
  try {
    const r = await fetch(`http://${srv.addresses[0]}/`);
    assertEquals([r.status, await r.text(), r.headers.get("x-frame-options")], [200, "up", "deny"]);
    const b = await fetch(`http://${srv.addresses[0]}/boom`);
    assertEquals(b.status, 500);
    await b.body?.cancel();
  } finally {
    await srv.close();
    await upstream.shutdown();
  }
});

Deno.test("server: an empty host listens on every address, IPv4 included", async () => {
  const srv = await serve({ addresses: [":0"], webConfig: emptyWebConfig, logger: nullLogger, handler });
  try {
    const port = Number(srv.addresses[0].slice(srv.addresses[0].lastIndexOf(":") + 1));
    const r = await fetch(`http://127.0.0.1:${port}/x`);
    assertEquals(await r.text(), "hello /x GET");
  } finally {
    await srv.close();
  }
});
