// The header read deadline, attacked from raw sockets byte by byte: trickled and silent connections are
// closed, honest slow clients are not; both back ends; the real exporter, API server and LB at CEEMS's 2 s.

import { assert, assertEquals, assertMatch } from "../../helpers/assert.ts";
import { makeTestCerts, tlsWebConfig } from "../../helpers/certs.ts";
import { CEEMS_ENV, freePort, startCeems } from "../../helpers/process.ts";
import {
  defaultMaxConnections,
  HEADER_READ_TIMEOUT_MS,
  HeaderDeadlineFront,
} from "../../../common/web/header_deadline.ts";
import { type RequestInfo, serve, type WebServer } from "../../../common/web/server.ts";
import type { WebConfig } from "../../../common/web/web_config.ts";
import { Logger, nullLogger } from "../../../common/log.ts";
import { CLUSTER, createUnitsDb } from "../../lb/fixtures.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const TIMEOUT = 600;

/** What a raw connection received until the server closed it (or the wait ended). */
interface Outcome {
  received: string;
  closed: boolean;
  afterMs: number;
}

/** One reader per connection (a second concurrent read would take bytes from the first). */
const watchers = new WeakMap<Deno.Conn, { text: string; closedAt?: number; changed: Promise<void> }>();

function watch(conn: Deno.Conn) {
  let w = watchers.get(conn);
  if (w) return w;
  let wake!: () => void;
  const state = { text: "", closedAt: undefined as number | undefined, changed: new Promise<void>((r) => (wake = r)) };
  const bump = () => {
    const old = wake;
    state.changed = new Promise<void>((r) => (wake = r));
    old();
  };
  (async () => {
    const buf = new Uint8Array(65536);
    while (true) {
      const n = await conn.read(buf).catch(() => null);
      if (n === null) break;
      state.text += dec.decode(buf.subarray(0, n));
      bump();
    }
    state.closedAt = performance.now();
    bump();
  })();
  w = state;
  watchers.set(conn, w);
  return w;
}

/**
 * Waits until the server closes the connection, or `waitMs` after `t0` passes, or `until` matches what
 * arrived since the last call; returns what arrived since the last call.
 */
async function readUntilClosed(conn: Deno.Conn, t0: number, waitMs: number, until?: RegExp): Promise<Outcome> {
  const w = watch(conn);
  const deadline = t0 + waitMs;
  while (w.closedAt === undefined && !(until && until.test(w.text)) && performance.now() < deadline) {
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([w.changed, new Promise((r) => (timer = setTimeout(r, deadline - performance.now())))]);
    clearTimeout(timer);
  }
  const received = w.text;
  w.text = "";
  const closed = w.closedAt !== undefined;
  return { received, closed, afterMs: (closed ? w.closedAt! : performance.now()) - t0 };
}

/** Writes `text` one byte every `everyMs` in the background, until the connection fails. */
function trickle(conn: Deno.Conn, text: string, everyMs: number): void {
  void (async () => {
    for (const b of enc.encode(text)) {
      try {
        await conn.write(new Uint8Array([b]));
      } catch {
        return;
      }
      await sleep(everyMs);
    }
  })();
}

/** A request that never ends: a header block that keeps growing. */
const ENDLESS = "GET /metrics HTTP/1.1\r\nHost: x\r\n" + "X-Slow: y\r\n".repeat(200);

function closeQuietly(c: Deno.Conn) {
  try {
    c.close();
  } catch {
    // already closed by the server
  }
}

/** Asserts the server closed a connection after the deadline and before three times it, with no response. */
function assertCutAtDeadline(o: Outcome, timeoutMs: number, what: string) {
  assert(o.closed, `${what}: still open after ${Math.round(o.afterMs)} ms`);
  assertEquals(o.received, "", `${what}: no response is sent`);
  assert(o.afterMs >= timeoutMs - 50, `${what}: closed after ${Math.round(o.afterMs)} ms, before the deadline`);
  assert(o.afterMs < 3 * timeoutMs + 1000, `${what}: closed only after ${Math.round(o.afterMs)} ms`);
}

/** A handler that records calls: /slow answers after 1.5 s, /stream streams for 1.5 s, POST echoes the body size. */
function recordingHandler() {
  const calls: { path: string; info: RequestInfo; url: string }[] = [];
  const handler = async (req: Request, info: RequestInfo) => {
    const url = new URL(req.url);
    calls.push({ path: url.pathname, info, url: req.url });
    if (req.method === "POST") return new Response(`got ${(await req.arrayBuffer()).byteLength}\n`);
    if (url.pathname === "/slow") {
      await sleep(1500);
      return new Response("slow done\n");
    }
    const mib = Number(url.searchParams.get("mib") ?? 0);
    if (url.pathname === "/bytes") {
      // `mib` MiB in 64 KiB slices, made as they are read.
      let left = mib * 16;
      return new Response(
        new ReadableStream({
          pull(c) {
            if (left-- === 0) c.close();
            else c.enqueue(new Uint8Array(65536).fill(120));
          },
        }),
      );
    }
    if (url.pathname === "/stream") {
      let n = 0;
      return new Response(
        new ReadableStream({
          async pull(c) {
            await sleep(150);
            if (n++ === 10) c.close();
            else c.enqueue(enc.encode(`part ${n}\n`));
          },
        }),
      );
    }
    return new Response(`hello ${url.pathname} from ${info.remoteAddr}\n`);
  };
  return { calls, handler };
}

const plainConfig: WebConfig = { basicAuthUsers: new Map(), headers: {} };

/** This process's IPv4 sockets on 127.0.0.1, as the kernel lists them (/proc/self/net/tcp). */
function ownLoopbackSockets(): { localPort: number; remotePort: number; state: string }[] {
  const inodes = new Set<string>();
  for (const e of Deno.readDirSync("/proc/self/fd")) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(Deno.readLinkSync(`/proc/self/fd/${e.name}`));
      if (m) inodes.add(m[1]);
    } catch {
      // closed meanwhile
    }
  }
  // Columns: sl, local address (0100007F:PORT), remote address, state (0A LISTEN, 01 ESTABLISHED), ..., inode (10th).
  return Deno.readTextFileSync("/proc/self/net/tcp").split("\n").slice(1)
    .map((l) => l.trim().split(/\s+/))
    .filter((f) => f.length > 9 && f[1].startsWith("0100007F:") && inodes.has(f[9]))
    .map((f) => ({
      localPort: parseInt(f[1].split(":")[1], 16),
      remotePort: parseInt(f[2].split(":")[1], 16),
      state: f[3],
    }));
}

/** The loopback ports this process listens on besides `except` (the internal server's, here). */
function ownLoopbackListeners(except: number): number[] {
  return ownLoopbackSockets().filter((s) => s.state === "0A" && s.localPort !== except).map((s) => s.localPort);
}

Deno.test("header deadline (Deno.serve back end): trickled and silent connections are cut, honest ones served", async () => {
  const { calls, handler } = recordingHandler();
  const srv: WebServer = await serve({
    addresses: ["127.0.0.1:0"],
    webConfig: plainConfig,
    logger: nullLogger,
    handler,
    headerTimeoutMs: TIMEOUT,
  });
  const port = Number(srv.addresses[0].split(":")[1]);
  const open = () => Deno.connect({ hostname: "127.0.0.1", port });
  try {
    // A header block sent one byte every 20 ms never completes: cut at the deadline, unanswered.
    let c = await open();
    let t0 = performance.now();
    trickle(c, ENDLESS, 20);
    assertCutAtDeadline(await readUntilClosed(c, t0, 5000), TIMEOUT, "trickled headers");
    closeQuietly(c);

    // A connection that never sends a byte is cut too.
    c = await open();
    t0 = performance.now();
    assertCutAtDeadline(await readUntilClosed(c, t0, 5000), TIMEOUT, "silent connection");
    closeQuietly(c);
    assertEquals(calls.length, 0, "the handler never saw either");

    // Headers in four pieces, complete before the deadline: served.
    c = await open();
    t0 = performance.now();
    for (const piece of ["GET /a HT", "TP/1.1\r\nHo", "st: x\r\nConnection: close\r\n", "\r\n"]) {
      await c.write(enc.encode(piece));
      await sleep(TIMEOUT / 6);
    }
    let o = await readUntilClosed(c, t0, 5000);
    assertMatch(o.received, /^HTTP\/1\.1 200 [^]*hello \/a from 127\.0\.0\.1\n$/);
    closeQuietly(c);

    // Kept alive: idle for longer than the deadline, the next request is still served (the deadline runs
    // from its first byte); then a trickle on the same connection is cut.
    c = await open();
    await c.write(enc.encode("GET /one HTTP/1.1\r\nHost: x\r\n\r\n"));
    o = await readUntilClosed(c, performance.now(), 3000, /hello \/one/);
    assertMatch(o.received, /hello \/one/);
    await sleep(TIMEOUT * 2);
    await c.write(enc.encode("GET /two HTTP/1.1\r\nHost: x\r\n\r\n"));
    o = await readUntilClosed(c, performance.now(), 3000, /hello \/two/);
    assertMatch(o.received, /hello \/two/);
    assert(!o.closed, "an idle kept-alive connection stays open");
    t0 = performance.now();
    trickle(c, ENDLESS, 20);
    assertCutAtDeadline(await readUntilClosed(c, t0, 5000), TIMEOUT, "trickle after a kept-alive request");
    closeQuietly(c);

    // Neither a slow handler nor a body trickled after complete headers is cut (only headers are timed).
    c = await open();
    await c.write(enc.encode("GET /slow HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"));
    o = await readUntilClosed(c, performance.now(), 5000);
    assertMatch(o.received, /^HTTP\/1\.1 200 [^]*slow done\n$/);
    closeQuietly(c);
    c = await open();
    t0 = performance.now();
    await c.write(enc.encode("POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: 30\r\nConnection: close\r\n\r\n"));
    trickle(c, "x".repeat(30), 50);
    o = await readUntilClosed(c, t0, 5000);
    assertMatch(o.received, /^HTTP\/1\.1 200 [^]*got 30\n$/);
    assert(o.afterMs > 1400, "the body took 1.5 s to arrive");
    closeQuietly(c);

    // A request pipelined behind a response that streams for 1.5 s is answered after it.
    c = await open();
    await c.write(
      enc.encode("GET /stream HTTP/1.1\r\nHost: x\r\n\r\nGET /after HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"),
    );
    o = await readUntilClosed(c, performance.now(), 5000);
    assertMatch(o.received, /part 10\n[^]*hello \/after/);
    closeQuietly(c);

    // The internal server is reachable on loopback, but answers nothing that did not come through the front.
    const inner = ownLoopbackListeners(port);
    assertEquals(inner.length, 1, `one internal listener, found ${inner}`);
    const before = calls.length;
    const direct = await fetch(`http://127.0.0.1:${inner[0]}/metrics`);
    assertEquals([direct.status, await direct.text()], [421, "connect to the server's listen address\n"]);
    assertEquals(calls.length, before, "the handler never saw the direct request");
  } finally {
    await srv.close();
  }
});

/** An HTTP/2 frame: 9-byte header (length, type, flags, stream) and payload. */
function h2Frame(type: number, flags: number, stream: number, payload: number[] = []): Uint8Array {
  const n = payload.length;
  return new Uint8Array([n >> 16, (n >> 8) & 255, n & 255, type, flags, 0, 0, 0, stream, ...payload]);
}
const H2_START = [...enc.encode("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"), ...h2Frame(4, 0, 0)];
const H2_PING = h2Frame(6, 0, 0, [1, 2, 3, 4, 5, 6, 7, 8]);
/** GET / on `stream` (HPACK: :method GET, :scheme http, :path /, :authority x); `complete` sets END_HEADERS. */
const h2Get = (stream: number, complete: boolean) =>
  h2Frame(1, complete ? 5 : 1, stream, [0x82, 0x86, 0x84, 0x41, 0x01, 0x78]);

Deno.test("header deadline resists what reviewers tried: HTTP/2 pings, pipelined, idle, unsent bodies, unread answers", async () => {
  const { handler } = recordingHandler();
  const srv = await serve({
    addresses: ["127.0.0.1:0"],
    webConfig: plainConfig,
    logger: nullLogger,
    handler,
    headerTimeoutMs: TIMEOUT,
    idleTimeoutMs: 1500,
  });
  const port = Number(srv.addresses[0].split(":")[1]);
  const open = () => Deno.connect({ hostname: "127.0.0.1", port });
  try {
    // h2c prior knowledge, then a PING every 200 ms (each answered by the server) and no request: cut.
    let c = await open();
    let t0 = performance.now();
    await c.write(new Uint8Array(H2_START));
    const pinger = setInterval(() => c.write(H2_PING).catch(() => {}), 200);
    let o = await readUntilClosed(c, t0, 5000);
    clearInterval(pinger);
    assert(o.closed && o.afterMs < 3 * TIMEOUT + 1000, `h2 pings kept a request-less connection ${o.afterMs} ms`);
    closeQuietly(c);

    // h2: a first request is answered; a second one's HEADERS never end: cut by the idle limit.
    c = await open();
    await c.write(new Uint8Array([...H2_START, ...h2Get(1, true)]));
    o = await readUntilClosed(c, performance.now(), 3000, /hello \//);
    assertMatch(o.received, /hello \/ from 127\.0\.0\.1/);
    t0 = performance.now();
    await c.write(h2Get(3, false));
    o = await readUntilClosed(c, t0, 6000);
    assert(o.closed && o.afterMs < 1500 + 1000, `a pending h2 HEADERS frame held the connection ${o.afterMs} ms`);
    closeQuietly(c);

    // HTTP/1: a complete request and a partial one sent together; the partial one is cut after the answer.
    c = await open();
    t0 = performance.now();
    await c.write(enc.encode("GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nX-Slow: "));
    o = await readUntilClosed(c, t0, 5000);
    assertMatch(o.received, /hello \/a/);
    assert(o.closed && o.afterMs < 3 * TIMEOUT + 1000, `a pipelined partial request held it ${o.afterMs} ms`);
    closeQuietly(c);

    // HTTP/1: a partial request sent while a slow one (1.5 s) runs is cut once that one is answered.
    c = await open();
    t0 = performance.now();
    await c.write(enc.encode("GET /slow HTTP/1.1\r\nHost: x\r\n\r\n"));
    await sleep(200);
    await c.write(enc.encode("GET /b HTTP/1.1\r\nX-Slow: "));
    o = await readUntilClosed(c, t0, 6000);
    assertMatch(o.received, /slow done/);
    assert(o.closed && o.afterMs < 1500 + 3 * TIMEOUT + 1000, `a partial request held it ${o.afterMs} ms`);
    closeQuietly(c);

    // An idle kept-alive connection is closed at the idle limit, not before.
    c = await open();
    await c.write(enc.encode("GET /one HTTP/1.1\r\nHost: x\r\n\r\n"));
    o = await readUntilClosed(c, performance.now(), 3000, /hello \/one/);
    t0 = performance.now();
    o = await readUntilClosed(c, t0, 6000);
    assert(o.closed && o.afterMs > 1400 && o.afterMs < 1500 + 1000, `idle connection closed after ${o.afterMs} ms`);
    closeQuietly(c);

    // A POST that declares a body and never sends it: cut at the idle limit (Go's ReadTimeout).
    c = await open();
    t0 = performance.now();
    await c.write(enc.encode("POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nabc"));
    o = await readUntilClosed(c, t0, 6000);
    assert(o.closed && o.afterMs < 1500 + 1000, `an unsent body held the connection ${o.afterMs} ms`);
    closeQuietly(c);

    // A client that asks for 256 MiB and stops reading: cut when writing makes no progress for the idle limit.
    c = await open();
    await c.write(enc.encode("GET /bytes?mib=256 HTTP/1.1\r\nHost: x\r\n\r\n"));
    await sleep(3500);
    let got = 0;
    const buf = new Uint8Array(1 << 20);
    t0 = performance.now();
    while (performance.now() - t0 < 5000) {
      const n = await c.read(buf).catch(() => null);
      if (n === null) break;
      got += n;
    }
    assert(got < 64 << 20, `a client that stopped reading still received ${got} bytes`);
    closeQuietly(c);

    // Honest: a slow reader (64 KiB every 40 ms, 3.2 s for 4 MiB, longer than the idle limit) gets it all.
    c = await open();
    await c.write(enc.encode("GET /bytes?mib=4 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"));
    got = 0;
    const slice = new Uint8Array(65536);
    while (true) {
      const n = await c.read(slice).catch(() => null);
      if (n === null) break;
      got += n;
      await sleep(40 * n / 65536);
    }
    assert(got > 4 << 20, `a slow reader received ${got} bytes of 4 MiB and headers`);
    closeQuietly(c);

    // Honest: a request pipelined behind an answer that streams for 1.5 s (pauses of 150 ms) is answered.
    c = await open();
    await c.write(enc.encode("GET /stream HTTP/1.1\r\nHost: x\r\n\r\n"));
    await sleep(300);
    await c.write(enc.encode("GET /after HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"));
    o = await readUntilClosed(c, performance.now(), 6000);
    assertMatch(o.received, /part 10\n[^]*hello \/after/);
    closeQuietly(c);
  } finally {
    await srv.close();
  }
});

Deno.test("header deadline: the handler sees the client's own address, never the relay's", async () => {
  // A host address that is not loopback, where the host has one; loopback alone otherwise (said below).
  const other = Deno.networkInterfaces().find((i) => i.family === "IPv4" && !i.address.startsWith("127."));
  const { calls, handler } = recordingHandler();
  const srv = await serve({ addresses: [":0"], webConfig: plainConfig, logger: nullLogger, handler });
  const port = Number(srv.addresses[0].split(":").at(-1));
  try {
    for (const host of ["127.0.0.1", ...other ? [other.address] : []]) {
      const c = await Deno.connect({ hostname: host, port });
      await c.write(enc.encode("GET /who HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"));
      const o = await readUntilClosed(c, performance.now(), 5000);
      closeQuietly(c);
      // Served on "::" (dual stack) the peer may read ::ffff:a.b.c.d; either way it is the client's address.
      const seen = calls.at(-1)!.info.remoteAddr;
      assert(seen === host || seen === `::ffff:${host}`, `handler saw ${seen} for a client at ${host}`);
      assertMatch(o.received, new RegExp(`hello /who from (::ffff:)?${host.replaceAll(".", "\\.")}\n$`));
    }
    if (!other) console.log("no non-loopback IPv4 address on this host: checked the loopback client only");
  } finally {
    await srv.close();
  }
});

Deno.test("header deadline front: a client is known by its relay's 127.0.0.1 port while it is open", async () => {
  const inner = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, () => new Response("x"));
  const front = new HeaderDeadlineFront({ inner: inner.addr, headerTimeoutMs: 60_000, logger: nullLogger });
  const addr = await front.listen("127.0.0.1", 0);
  try {
    const c = await Deno.connect({ hostname: "127.0.0.1", port: addr.port });
    await c.write(enc.encode("G"));
    await sleep(100);
    assertEquals(front.openConnections, 1);
    // The relay's own loopback port maps to the client; any other port, or that port from another loopback
    // address (a local user can bind 127.0.0.9:<port>), to nothing.
    const relayPorts = ownLoopbackConnections(inner.addr.port);
    assertEquals(relayPorts.length, 1, `one relay connection, found ${relayPorts}`);
    const at = (hostname: string, port: number) => front.connectionOf({ transport: "tcp", hostname, port });
    const known = at("127.0.0.1", relayPorts[0]);
    assertEquals(known?.peer.port, (c.localAddr as Deno.NetAddr).port);
    assertEquals(known?.tls, false);
    assertEquals(at("127.0.0.1", addr.port), undefined);
    assertEquals(at("127.0.0.9", relayPorts[0]), undefined);
    c.close();
    await sleep(200);
    assertEquals(front.openConnections, 0);
    // A request the internal server read before the close may reach the handler after it: it finds no
    // client (the port may already be someone else's), and no new relay is given the port meanwhile.
    assertEquals(known?.closed, true);
    assertEquals(at("127.0.0.1", relayPorts[0]), undefined);
  } finally {
    front.stopAccepting();
    front.closeAll();
    await inner.shutdown();
  }
});

Deno.test("header deadline front: connections beyond the cap are closed at accept, with one warning", async () => {
  const inner = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, () => new Response("x"));
  const lines: string[] = [];
  const logger = new Logger("info", "logfmt", {}, (l) => lines.push(l));
  const front = new HeaderDeadlineFront({ inner: inner.addr, headerTimeoutMs: 60_000, maxConnections: 2, logger });
  const addr = await front.listen("127.0.0.1", 0);
  const conns: Deno.Conn[] = [];
  try {
    for (let i = 0; i < 4; i++) conns.push(await Deno.connect({ hostname: "127.0.0.1", port: addr.port }));
    await sleep(200);
    assertEquals(front.openConnections, 2);
    const outcomes = await Promise.all(conns.map((c) => readUntilClosed(c, performance.now(), 500)));
    assertEquals(outcomes.map((o) => o.closed), [false, false, true, true]);
    assertEquals(lines.length, 1, lines.join("\n"));
    assertMatch(lines[0], /too many open connections: closing new ones.* open=2 max=2 refused=1/);
  } finally {
    conns.forEach(closeQuietly);
    front.stopAccepting();
    front.closeAll();
    await inner.shutdown();
  }
});

Deno.test("defaultMaxConnections: four descriptors per connection within three quarters of the limit", () => {
  const limits = (soft: string) =>
    `Limit Soft Limit Hard Limit Units\nMax open files            ${soft}  ${soft}  files\n`;
  assertEquals(defaultMaxConnections(limits("1024")), 176);
  assertEquals(defaultMaxConnections(limits("20000")), 3734);
  assertEquals(defaultMaxConnections(limits("1048576")), 20_000);
  assertEquals(defaultMaxConnections(limits("unlimited")), 20_000);
  assertEquals(defaultMaxConnections(limits("64")), 16);
});

/** Local ports of this process's established connections to 127.0.0.1:`port`. */
function ownLoopbackConnections(port: number): number[] {
  return ownLoopbackSockets().filter((s) => s.state === "01" && s.remotePort === port).map((s) => s.localPort);
}

Deno.test("header deadline over TLS: a stalled handshake and trickled headers are cut; HTTP/2 and https URLs work", async () => {
  const certs = makeTestCerts();
  const { calls, handler } = recordingHandler();
  const webConfig = tlsWebConfig(certs);
  const srv = await serve({ addresses: ["127.0.0.1:0"], webConfig, logger: nullLogger, handler, headerTimeoutMs: 800 });
  const port = Number(srv.addresses[0].split(":")[1]);
  try {
    // TCP connected, no ClientHello: cut.
    const raw = await Deno.connect({ hostname: "127.0.0.1", port });
    assertCutAtDeadline(await readUntilClosed(raw, performance.now(), 5000), 800, "stalled TLS handshake");
    closeQuietly(raw);
    // Handshake done, headers trickled: cut.
    const t0 = performance.now();
    const tls = await Deno.connectTls({ hostname: "127.0.0.1", port, caCerts: [certs.caCert] });
    await tls.handshake();
    trickle(tls, ENDLESS, 20);
    assertCutAtDeadline(await readUntilClosed(tls, t0, 5000), 800, "trickle over TLS");
    closeQuietly(tls);
    assertEquals(calls.length, 0);
    // fetch negotiates HTTP/2 by ALPN; the handler sees an https URL and the client's address.
    const client = Deno.createHttpClient({ caCerts: [certs.caCert] });
    const r = await fetch(`https://127.0.0.1:${port}/h2`, { client });
    assertEquals([r.status, await r.text()], [200, "hello /h2 from 127.0.0.1\n"]);
    client.close();
    assertEquals(calls.at(-1)!.url, `https://127.0.0.1:${port}/h2`);
    const h2 = await Deno.connectTls({ hostname: "127.0.0.1", port, caCerts: [certs.caCert], alpnProtocols: ["h2"] });
    assertEquals((await h2.handshake()).alpnProtocol, "h2");
    closeQuietly(h2);
  } finally {
    await srv.close();
    Deno.removeSync(certs.dir, { recursive: true });
  }
});

Deno.test("header deadline (node back end, client certificates): trickled and silent connections are cut", async () => {
  const certs = makeTestCerts();
  const { calls, handler } = recordingHandler();
  const webConfig = tlsWebConfig(certs, "RequireAndVerifyClientCert");
  const srv = await serve({ addresses: ["127.0.0.1:0"], webConfig, logger: nullLogger, handler, headerTimeoutMs: 800 });
  const port = Number(srv.addresses[0].split(":")[1]);
  const connect = async () => {
    const c = await Deno.connectTls({
      hostname: "127.0.0.1",
      port,
      caCerts: [certs.caCert],
      cert: certs.clientCert,
      key: certs.clientKey,
    });
    await c.handshake();
    return c;
  };
  try {
    let raw: Deno.Conn = await Deno.connect({ hostname: "127.0.0.1", port });
    assertCutAtDeadline(await readUntilClosed(raw, performance.now(), 6000), 800, "stalled TLS handshake (node)");
    closeQuietly(raw);
    let t0 = performance.now();
    raw = await connect();
    trickle(raw, ENDLESS, 20);
    // The node back end restarts the deadline once the handshake is done: at most twice the timeout.
    assertCutAtDeadline(await readUntilClosed(raw, t0, 6000), 800, "trickle over TLS (node)");
    closeQuietly(raw);
    assertEquals(calls.length, 0);
    // A slow handler is not cut, and a kept-alive connection serves a request after an idle pause.
    raw = await connect();
    await raw.write(enc.encode("GET /slow HTTP/1.1\r\nHost: x\r\n\r\n"));
    t0 = performance.now();
    let o = await readUntilClosed(raw, t0, 2500, /\r\n0\r\n\r\n$/);
    assertMatch(o.received, /^HTTP\/1\.1 200 [^]*slow done\n\r\n0\r\n\r\n$/);
    assert(!o.closed, "a slow handler's connection stays open");
    await sleep(1600);
    await raw.write(enc.encode("GET /again HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"));
    o = await readUntilClosed(raw, performance.now(), 3000);
    assertMatch(o.received, /hello \/again from 127\.0\.0\.1/);
    closeQuietly(raw);
  } finally {
    await srv.close();
    Deno.removeSync(certs.dir, { recursive: true });
  }
});

Deno.test({
  name: "header deadline: the real exporter, API server and LB cut a trickled request at CEEMS's 2 s",
  sanitizeResources: false,
  async fn() {
    const dir = Deno.makeTempDirSync({ prefix: "ceems-header-deadline-" });
    Deno.chmodSync(dir, 0o755);
    const dbPath = await createUnitsDb(dir);
    Deno.chownSync(dbPath, 0, 65534);
    Deno.writeTextFileSync(`${dir}/api.yml`, `ceems_api_server:\n  data: {path: ${dir}/api}\n`);
    Deno.writeTextFileSync(
      `${dir}/lb.yml`,
      `ceems_lb:\n  backends: [{id: ${CLUSTER}, tsdb: [{web: {url: "http://127.0.0.1:${freePort()}"}}]}]\n` +
        `ceems_api_server:\n  data: {path: "${dir}"}\n`,
    );
    Deno.chmodSync(`${dir}/lb.yml`, 0o644);
    const subjects: [string, string[], string][] = [
      ["exporter", ["exporter", "--collector.disable-defaults", "--collector.cpu"], "/metrics"],
      ["api", ["api", `--config.file=${dir}/api.yml`], "/health"],
      ["lb", ["lb", `--config.file=${dir}/lb.yml`], "/health"],
    ];
    try {
      for (const [name, args, path] of subjects) {
        const p = await startCeems(args, { env: CEEMS_ENV, readyPath: path });
        try {
          const c = await Deno.connect({ hostname: "127.0.0.1", port: p.port });
          const t0 = performance.now();
          trickle(c, ENDLESS, 100);
          const o = await readUntilClosed(c, t0, 15_000);
          closeQuietly(c);
          assertCutAtDeadline(o, HEADER_READ_TIMEOUT_MS, `ceems ${name}`);
          console.log(`ceems ${name}: trickled connection closed after ${Math.round(o.afterMs)} ms`);
          const ok = await fetch(p.base + path, { headers: { "X-Ceems-Cluster-Id": CLUSTER } });
          assertEquals(ok.status, 200, `${name} still serves`);
          await ok.body?.cancel();
        } finally {
          const { code, stderr } = await p.stop();
          assertEquals(code, 0, stderr);
        }
      }
    } finally {
      Deno.removeSync(dir, { recursive: true });
    }
  },
});
