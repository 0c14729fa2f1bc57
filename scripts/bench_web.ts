// Benchmark of the header-deadline relay (common/web/header_deadline.ts): the same handler served by
// ceems's web server and by a bare Deno.serve in one run: latency, throughput, a large body, event-loop stalls.

import { serve } from "../common/web/server.ts";
import { nullLogger } from "../common/log.ts";
import { makeTestCerts, tlsWebConfig } from "../tests/helpers/certs.ts";
import { closedLoopRate } from "./bench_load.ts";

const SEQUENTIAL = Number(Deno.env.get("BENCH_WEB_REQUESTS") ?? 2000);
const CLIENTS = 50;
const SECONDS = Number(Deno.env.get("BENCH_WEB_SECONDS") ?? 4);
const BIG = 128 * 1024 * 1024;

const small = "x".repeat(2000);
/** About one user's /units answer for 30 days (167 units). */
const medium = "y".repeat(100_000);
const MiB = new Uint8Array(1024 * 1024);
/** The large answer streams in 1 MiB slices, as the API server streams its large lists. */
function bigBody(): ReadableStream<Uint8Array> {
  let sent = 0;
  return new ReadableStream({
    pull(c) {
      if (sent === BIG) return c.close();
      c.enqueue(MiB.slice());
      sent += MiB.length;
    },
  });
}
function handler(req: Request): Response {
  const path = new URL(req.url).pathname;
  if (path === "/big") return new Response(bigBody());
  return new Response(path === "/medium" ? medium : small);
}

function quantile(sorted: number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}

/** The longest gap between 1 ms timer ticks while `work` runs: how long the event loop was held. */
async function longestStall<T>(work: () => Promise<T>): Promise<{ result: T; stallMs: number }> {
  let last = performance.now();
  let worst = 0;
  const tick = setInterval(() => {
    const now = performance.now();
    worst = Math.max(worst, now - last);
    last = now;
  }, 1);
  try {
    const result = await work();
    return { result, stallMs: worst };
  } finally {
    clearInterval(tick);
  }
}

async function once(url: string, client?: Deno.HttpClient): Promise<number> {
  const t0 = performance.now();
  const r = await fetch(url, client ? { client } : {});
  await r.arrayBuffer();
  if (r.status !== 200) throw new Error(`${url}: HTTP ${r.status}`);
  return performance.now() - t0;
}

function throughput(url: string, client?: Deno.HttpClient): Promise<number> {
  return closedLoopRate(CLIENTS, SECONDS, () => once(url, client));
}

const certs = makeTestCerts();
const client = Deno.createHttpClient({ caCerts: [certs.caCert] });
const plainConfig = { basicAuthUsers: new Map(), headers: {} };
const relayed = await serve({ addresses: ["127.0.0.1:0"], webConfig: plainConfig, logger: nullLogger, handler });
const relayedTls = await serve({
  addresses: ["127.0.0.1:0"],
  webConfig: tlsWebConfig(certs),
  logger: nullLogger,
  handler,
});
const bare = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, handler);
const bareTls = Deno.serve(
  { hostname: "127.0.0.1", port: 0, cert: certs.serverCert, key: certs.serverKey, onListen() {} },
  handler,
);
const targets: [string, string, string, Deno.HttpClient | undefined][] = [
  ["HTTP", `http://127.0.0.1:${bare.addr.port}`, `http://${relayed.addresses[0]}`, undefined],
  ["HTTPS", `https://127.0.0.1:${bareTls.addr.port}`, `https://${relayedTls.addresses[0]}`, client],
];

console.log(
  `${SEQUENTIAL} interleaved sequential requests per row; ${CLIENTS} clients for ${SECONDS} s for the throughput`,
);
console.log("| transport | answer | p50 bare / relayed | p99 bare / relayed | req/s bare / relayed (ratio) |");
console.log("|---|---|---|---|---|");
for (const [name, bareUrl, relayedUrl, c] of targets) {
  for (const [path, size] of [["/", "2,000 B"], ["/medium", "100,000 B"]]) {
    const a: number[] = [];
    const b: number[] = [];
    for (let i = 0; i < 50; i++) await once(bareUrl + path, c), await once(relayedUrl + path, c);
    for (let i = 0; i < SEQUENTIAL; i++) {
      a.push(await once(bareUrl + path, c));
      b.push(await once(relayedUrl + path, c));
    }
    a.sort((x, y) => x - y);
    b.sort((x, y) => x - y);
    const ta = await throughput(bareUrl + path, c);
    const tb = await throughput(relayedUrl + path, c);
    const f = (n: number) => n.toFixed(3);
    console.log(
      `| ${name} | ${size} | ${f(quantile(a, 0.5))} / ${f(quantile(b, 0.5))} ms | ${f(quantile(a, 0.99))} / ${
        f(quantile(b, 0.99))
      } ms | ${ta.toFixed(0)} / ${tb.toFixed(0)} (${(tb / ta).toFixed(2)}×) |`,
    );
  }
}

/** curl fetching `url` in its own process (the server's event loop is then the only one measured). */
async function curl(url: string): Promise<number> {
  const out = await new Deno.Command("curl", {
    args: ["-s", "-o", "/dev/null", "--cacert", `${certs.dir}/ca.crt`, "-w", "%{http_code} %{time_total}", url],
    stdout: "piped",
  }).output();
  const [code, secs] = new TextDecoder().decode(out.stdout).split(" ");
  if (code !== "200") throw new Error(`${url}: HTTP ${code}`);
  return Number(secs) * 1000;
}

console.log(
  `\n${
    BIG / 1048576
  } MiB answer (streamed in 1 MiB slices) fetched by curl, three times each (best), and the longest event-loop stall of the server`,
);
console.log("| transport | bare | relayed (ratio) | longest stall bare / relayed |");
console.log("|---|---|---|---|");
for (const [name, bareUrl, relayedUrl] of targets) {
  const best = async (url: string) => {
    let t = Infinity;
    let stall = 0;
    for (let i = 0; i < 3; i++) {
      const r = await longestStall(() => curl(url + "/big"));
      t = Math.min(t, r.result);
      stall = Math.max(stall, r.stallMs);
    }
    return { t, stall };
  };
  const x = await best(bareUrl);
  const y = await best(relayedUrl);
  const mbs = (ms: number) => ((BIG / 1048576) / (ms / 1000)).toFixed(0);
  console.log(
    `| ${name} | ${x.t.toFixed(0)} ms (${mbs(x.t)} MiB/s) | ${y.t.toFixed(0)} ms (${mbs(y.t)} MiB/s, ${
      (y.t / x.t).toFixed(2)
    }×) | ${x.stall.toFixed(1)} / ${y.stall.toFixed(1)} ms |`,
  );
}

client.close();
await relayed.close();
await relayedTls.close();
await bare.shutdown();
await bareTls.shutdown();
Deno.removeSync(certs.dir, { recursive: true });
