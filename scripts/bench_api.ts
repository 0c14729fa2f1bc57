// API server benchmark: a generated DB of 1,000,000 units for 1,000 users; /units and /units/verify through a
// real `ceems api` against raw SQLite, ingest rate, users' /units alone and while an admin reads 30 days of
// /units/admin or a 20,000-unit window is ingested, and memory under a repeated-list attack.

import { loadavg } from "node:os";
import { cpuUsage } from "node:process";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { DatabaseSync } from "node:sqlite";
import { SqliteStorage } from "../api_server/storage/sqlite.ts";
import { parseSacct } from "../api_server/managers/sacct_parse.ts";
import { generateApiDb } from "../tests/helpers/api_db.ts";
import { gatedSlurmTools, sacctRecords } from "../tests/helpers/fake_slurm.ts";

const UNITS = Number(Deno.env.get("BENCH_API_UNITS") ?? 1_000_000);
const USERS = 1000;
const SPAN_DAYS = 180;
const REQS = 200;
const INGEST = 50_000;
const INGEST_REPS = 3;
/** Units of the window ingested while users are measured. */
const WINDOW_UNITS = 20_000;
/** Concurrent users' clients and how long each competition phase measures them. */
const CLIENTS = 4;
const PHASE_MS = 8_000;
/** Requests of the repeated-list attack and the list lengths. */
const ATTACK_REQS = 1000;
/** Entries of the first attack request; the last has ATTACK_LIST + ATTACK_REQS - 1 (~32,700: a 64 KiB URL). */
const ATTACK_LIST = 31_700;
const LONG_LIST = 5_000;
const DAY = 86_400_000;
const ADMIN = "benchadmin";
const root = fileURLToPath(new URL("../", import.meta.url));

const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
};
const ms = (x: number) => `${x.toFixed(2)} ms`;
const sleep = (t: number) => new Promise((r) => setTimeout(r, t));

async function timeGets(url: string, headers: Record<string, string>, n: number): Promise<number[]> {
  const xs: number[] = [];
  for (let i = 0; i < n; i++) {
    const t = performance.now();
    const r = await fetch(url, { headers });
    await r.arrayBuffer();
    if (!r.ok) throw new Error(`${url}: HTTP ${r.status}`);
    xs.push(performance.now() - t);
  }
  return xs;
}

/** The raw SQLite queries /units and /units/verify run, in this process: the floor. */
function floors(dbPath: string, user: string, uuids: string[], from: number, now: number) {
  const db = new DatabaseSync(dbPath, { readOnly: true });
  const unitsSql = db.prepare(
    "SELECT * FROM units WHERE ignore = 0 AND username IN (?) AND (ended_at_ts BETWEEN ? AND ?) ORDER BY cluster_id, uuid",
  );
  const rawUnits: number[] = [];
  let nrows = 0;
  for (let i = 0; i < REQS; i++) {
    const t = performance.now();
    nrows = unitsSql.all(user, from, now).length;
    rawUnits.push(performance.now() - t);
  }
  const verifySql = db.prepare(
    `SELECT COUNT(DISTINCT uuid) AS n FROM units WHERE uuid IN (${uuids.map(() => "?").join(",")}) AND username = ?`,
  );
  const rawVerify: number[] = [];
  for (let i = 0; i < REQS; i++) {
    const t = performance.now();
    verifySql.get(...uuids, user);
    rawVerify.push(performance.now() - t);
  }
  db.close();
  return { rawUnits, rawVerify, nrows };
}

/**
 * Ingest rate in this process: parse sacct output and apply it as one window to a fresh DB; floor = raw inserts
 * of the rows. INGEST_REPS interleaved rounds (ingest, re-ingest of the same records as updates, floor) so that
 * load from other processes hits all three alike; medians reported.
 */
async function ingestRate(dir: string) {
  const text = sacctRecords(INGEST, { firstId: 5_000_000, users: USERS });
  const runs: { wall: number; cpu: number; parse: number; update: number; raw: number }[] = [];
  for (let rep = 0; rep < INGEST_REPS; rep++) {
    const ing = new SqliteStorage(join(dir, `ingest${rep}`));
    const c0 = cpuUsage();
    const t0 = performance.now();
    const { units: parsed } = parseSacct(text, "slurm-0", Date.parse("2026-01-02T00:00:00Z"), Date.now());
    const tParse = performance.now() - t0;
    const window = { windowStartMs: 0, users: [], projects: [], adminUsers: [], retentionMs: 0 };
    await ing.applyUpdate({ ...window, clusterId: "slurm-0", windowEndMs: Date.now(), units: parsed });
    const tIngest = performance.now() - t0;
    const c1 = cpuUsage(c0);
    // The same records again: every unit is an update (metrics merged), as a catch-up overlap would be.
    const t2 = performance.now();
    const { units: again } = parseSacct(text, "slurm-0", Date.parse("2026-01-02T00:00:00Z"), Date.now());
    await ing.applyUpdate({ ...window, clusterId: "slurm-0", windowEndMs: Date.now(), units: again });
    const tUpdate = performance.now() - t2;
    ing.close();
    const raw = new DatabaseSync(join(dir, `raw${rep}.db`));
    raw.exec("PRAGMA journal_mode = WAL");
    raw.exec("CREATE TABLE t (uuid TEXT, username TEXT, project TEXT, alloc TEXT, tts TEXT)");
    const rins = raw.prepare("INSERT INTO t VALUES (?,?,?,?,?)");
    const t1 = performance.now();
    raw.exec("BEGIN");
    for (const u of parsed) {
      rins.run(u.uuid, u.username, u.project, JSON.stringify(u.allocation), JSON.stringify(u.total_time_seconds));
    }
    raw.exec("COMMIT");
    const tRaw = performance.now() - t1;
    raw.close();
    runs.push({ wall: tIngest, cpu: (c1.user + c1.system) / 1000, parse: tParse, update: tUpdate, raw: tRaw });
  }
  const med = (k: keyof typeof runs[0]) => pct(runs.map((r) => r[k]), 50);
  return { runs, wall: med("wall"), cpu: med("cpu"), parse: med("parse"), update: med("update"), raw: med("raw") };
}

/** The server process: its base URL, pid, resident memory now and its peak since the last `peak()`. */
interface Server {
  base: string;
  child: Deno.ChildProcess;
  rssMb(): number;
  /** Highest resident memory sampled (every 100 ms) since the previous call. */
  peak(): number;
  stopSampling(): void;
  /** Lets sacct answer: the window is ingested. */
  go(): void;
}

/**
 * `ceems api` on the generated DB with one SLURM cluster whose sacct answers (WINDOW_UNITS new jobs) only once
 * `<dir>/go` exists: the window is ingested when the benchmark says so.
 */
async function startServer(dir: string): Promise<Server> {
  const { bin, go } = gatedSlurmTools(dir, sacctRecords(WINDOW_UNITS, { firstId: 90_000_000, users: USERS }));
  const from = new Date(Date.now() - 50 * 60_000).toISOString().slice(0, 16);
  Deno.writeTextFileSync(
    join(dir, "config.yml"),
    `ceems_api_server:
  data: {path: ${dir}/data, update_interval: 1h, max_update_interval: 1h, update_from: '${from}Z'}
  admin: {users: [${ADMIN}]}
clusters:
  - {id: c0, manager: slurm, cli: {path: ${bin}}}
`,
  );
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      join(root, "main.ts"),
      "api",
      `--config.file=${dir}/config.yml`,
      `--web.listen-address=127.0.0.1:${port}`,
      "--log.level=error",
      "--storage.data.skip.delete.old.units",
    ],
    // As a root start must run: Deno's caches in memory (a writable cache past the drop is refused).
    env: { DENO_DIR: "/dev/null" },
    stdout: "null",
    stderr: "inherit",
  }).spawn();
  const base = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 600; i++) {
    try {
      await (await fetch(`${base}/health`)).arrayBuffer();
      break;
    } catch {
      await sleep(100);
    }
  }
  const rssMb = () => {
    const m = /^VmRSS:\s+(\d+) kB$/m.exec(Deno.readTextFileSync(`/proc/${child.pid}/status`));
    return m ? Number(m[1]) / 1024 : NaN;
  };
  let top = 0;
  const sampler = setInterval(() => (top = Math.max(top, rssMb())), 100);
  const peak = () => {
    const p = Math.max(top, rssMb());
    top = 0;
    return p;
  };
  return { base, child, rssMb, peak, stopSampling: () => clearInterval(sampler), go };
}

/** Users' /units for 30 days from CLIENTS concurrent clients (each a different user) until `done()`. */
async function usersLoad(base: string, q: string, done: () => boolean): Promise<number[]> {
  const lat: number[] = [];
  await Promise.all(Array.from({ length: CLIENTS }, async (_, c) => {
    for (let i = 0; !done(); i++) {
      const user = `usr${(c * 250 + i) % USERS}`;
      const t = performance.now();
      const r = await fetch(`${base}/api/v1/units?${q}`, { headers: { "X-Grafana-User": user } });
      await r.arrayBuffer();
      if (!r.ok) throw new Error(`/units: HTTP ${r.status}`);
      lat.push(performance.now() - t);
    }
  }));
  return lat;
}

/** An admin reading /units/admin for 30 days again and again (streamed, discarded) until stopped. */
function adminLoad(base: string, q: string) {
  const s = { stop: false, requests: 0, bytes: 0, ms: [] as number[], done: Promise.resolve() };
  s.done = (async () => {
    while (!s.stop) {
      const t = performance.now();
      const r = await fetch(`${base}/api/v1/units/admin?${q}`, { headers: { "X-Grafana-User": ADMIN } });
      if (!r.ok) throw new Error(`/units/admin: HTTP ${r.status}`);
      const reader = r.body!.getReader();
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        s.bytes += value.length;
      }
      s.requests++;
      s.ms.push(performance.now() - t);
    }
  })();
  return s;
}

/** Requests of each admin query timed. */
const ADMIN_REQS = 5;

/**
 * The audit's expensive admin queries, one at a time: /usage/current/admin over 24 h (each a different quarter of
 * an hour, so the usage cache never answers), /stats/global/admin and /units/admin over 30 days.
 */
async function adminQueries(srv: Server, now: number) {
  const h = { "X-Grafana-User": ADMIN };
  const usage: number[] = [];
  for (let i = 0; i < ADMIN_REQS; i++) {
    const to = Math.floor(now / 1000) - i * 900;
    usage.push(...await timeGets(`${srv.base}/api/v1/usage/current/admin?from=${to - 86_400}&to=${to}`, h, 1));
  }
  const stats = await timeGets(`${srv.base}/api/v1/stats/global/admin`, h, ADMIN_REQS);
  const q = `from=${Math.floor((now - 30 * DAY) / 1000)}&to=${Math.floor(now / 1000)}`;
  const units: number[] = [];
  let unitsBytes = 0;
  for (let i = 0; i < ADMIN_REQS; i++) {
    const t = performance.now();
    const r = await fetch(`${srv.base}/api/v1/units/admin?${q}`, { headers: h });
    unitsBytes = (await r.arrayBuffer()).byteLength;
    units.push(performance.now() - t);
  }
  return { usage, stats, units, unitsBytes };
}

/** Users' latencies alone, beside an admin's 30-day /units/admin, and during a WINDOW_UNITS window's ingest. */
async function competition(dir: string, srv: Server, q: string) {
  await usersLoad(srv.base, q, ((n) => () => n++ >= 200)(0)); // warm-up
  const until = (t: number) => () => performance.now() >= t;
  srv.peak();
  const alone = await usersLoad(srv.base, q, until(performance.now() + PHASE_MS));
  const rssAlone = srv.peak();
  const admin = adminLoad(srv.base, q);
  await sleep(500); // the first admin answer is under way
  const withAdmin = await usersLoad(srv.base, q, until(performance.now() + PHASE_MS));
  admin.stop = true;
  await admin.done;
  const rssAdmin = srv.peak();
  // The window: sacct answers now; the ingest ends when its update_state row appears.
  const db = new DatabaseSync(join(dir, "data/ceems.db"), { readOnly: true });
  const applied = () => db.prepare("SELECT 1 FROM update_state WHERE cluster_id = 'c0'").get() !== undefined;
  if (applied()) throw new Error("the window was applied before the benchmark asked for it");
  const t0 = performance.now();
  srv.go();
  let ingestMs = 0;
  const watch = (async () => {
    while (!applied() && performance.now() - t0 < 120_000) await sleep(20);
    ingestMs = performance.now() - t0;
  })();
  const duringIngest = await usersLoad(srv.base, q, () => ingestMs > 0);
  await watch;
  db.close();
  return { alone, withAdmin, admin, duringIngest, ingestMs, rssAlone, rssAdmin, rssIngest: srv.peak() };
}

/**
 * The repeated-list attack: ATTACK_REQS requests of /units?uuid=a,a,... with ATTACK_LIST entries, one more each
 * time (400: over the list cap), then as many with LONG_LIST distinct uuids (under the cap, answered), with the
 * server's resident memory before, after each, and after idling.
 */
async function listAttack(srv: Server) {
  const h = { "X-Grafana-User": "usr1" };
  await sleep(5_000); // settle after the phases before
  const before = srv.rssMb();
  const status = new Map<number, number>();
  const ask = async (uuids: string) => {
    const r = await fetch(`${srv.base}/api/v1/units?uuid=${uuids}`, { headers: h });
    await r.arrayBuffer();
    status.set(r.status, (status.get(r.status) ?? 0) + 1);
  };
  const repeated: number[] = [];
  const t0 = performance.now();
  for (let i = 0; i < ATTACK_REQS; i++) {
    await ask(Array(ATTACK_LIST + i).fill("a").join(","));
    if ((i + 1) % (ATTACK_REQS / 4) === 0) repeated.push(srv.rssMb());
  }
  const attackMs = performance.now() - t0;
  const distinct = Array.from({ length: LONG_LIST + ATTACK_REQS }, (_, i) => String(10_000_000 + i * 7));
  const long: number[] = [];
  const t1 = performance.now();
  for (let i = 0; i < ATTACK_REQS; i++) {
    await ask(distinct.slice(0, LONG_LIST + i).join(","));
    if ((i + 1) % (ATTACK_REQS / 4) === 0) long.push(srv.rssMb());
  }
  const longMs = performance.now() - t1;
  await sleep(5_000);
  return { before, repeated, long, idle: srv.rssMb(), status, attackMs, longMs };
}

async function main() {
  const dir = Deno.makeTempDirSync({ prefix: "ceems-bench-api-" });
  let srv: Server | undefined;
  try {
    const now = Date.now();
    console.log(
      `load average (1 min) at the start: ${loadavg()[0].toFixed(1)} on ${navigator.hardwareConcurrency} CPUs`,
    );
    console.log(`generating ${UNITS.toLocaleString()} units for ${USERS} users over ${SPAN_DAYS} days...`);
    const gen = generateApiDb(join(dir, "data"), { units: UNITS, users: USERS, spanDays: SPAN_DAYS, now });
    const size = Deno.statSync(gen.dbPath).size;
    console.log(
      `generated in ${(gen.genMs / 1000).toFixed(1)} s (${
        Math.round(UNITS / (gen.genMs / 1000)).toLocaleString()
      } rows/s), DB ${(size / 1e6).toFixed(0)} MB`,
    );
    const from = now - 30 * DAY;
    const fl = floors(gen.dbPath, gen.user, gen.uuids, from, now);
    const ing = await ingestRate(dir);

    // The real server (its window waits for the competition phase).
    srv = await startServer(dir);
    const h = { "X-Grafana-User": gen.user };
    const q = `from=${Math.floor(from / 1000)}&to=${Math.floor(now / 1000)}`;
    await timeGets(`${srv.base}/api/v1/units?${q}`, h, 20); // warm-up
    const health = await timeGets(`${srv.base}/health`, {}, REQS);
    const units = await timeGets(`${srv.base}/api/v1/units?${q}`, h, REQS);
    const vq = gen.uuids.map((u) => `uuid=${u}`).join("&");
    await timeGets(`${srv.base}/api/v1/units/verify?${vq}`, h, 20);
    const verify = await timeGets(`${srv.base}/api/v1/units/verify?${vq}`, h, REQS);
    // sacct (called at start) gives up after 60 s: the window's phase comes first.
    const comp = await competition(dir, srv, q);
    const admin = await adminQueries(srv, now);
    const attack = await listAttack(srv);

    const p50u = pct(units, 50);
    const p50v = pct(verify, 50);
    console.log(`load average (1 min) at the end: ${loadavg()[0].toFixed(1)} on ${navigator.hardwareConcurrency} CPUs`);
    console.log(`\n/api/v1/units, one user, 30 days (${fl.nrows} units per response), ${REQS} requests:`);
    console.log(`  p50 ${ms(p50u)}  p99 ${ms(pct(units, 99))}   goal p50 <= 20 ms`);
    console.log(
      `  floor: raw SQLite query p50 ${ms(pct(fl.rawUnits, 50))} -> ${(p50u / pct(fl.rawUnits, 50)).toFixed(1)}x;` +
        ` HTTP /health p50 ${ms(pct(health, 50))}`,
    );
    console.log(`/api/v1/units/verify, 50 uuids, ${REQS} requests:`);
    console.log(`  p50 ${ms(p50v)}  p99 ${ms(pct(verify, 99))}   goal <= 5 ms`);
    console.log(
      `  floor: raw SQLite count p50 ${ms(pct(fl.rawVerify, 50))} -> ${(p50v / pct(fl.rawVerify, 50)).toFixed(1)}x;` +
        ` HTTP /health p50 ${ms(pct(health, 50))} -> ${(p50v / pct(health, 50)).toFixed(1)}x`,
    );
    console.log(`admin queries (the issue's audit at 1M units: 2,715 / 861 / 6,033 ms), ${ADMIN_REQS} each, p50:`);
    console.log(
      `  /usage/current/admin 24 h ${ms(pct(admin.usage, 50))}; /stats/global/admin ${
        ms(pct(admin.stats, 50))
      }; /units/admin 30 days, all fields ${ms(pct(admin.units, 50))} (${(admin.unitsBytes / 1e6).toFixed(0)} MB)`,
    );
    const rate = INGEST / (ing.wall / 1000);
    console.log(
      `ingest of ${INGEST.toLocaleString()} sacct records (parse + upsert units and usage, one window), median of ${INGEST_REPS}:`,
    );
    console.log(
      `  ${Math.round(rate).toLocaleString()} units/s wall (parse ${ms(ing.parse)}, total ${
        ms(ing.wall)
      })   goal >= 20,000/s; per round: ${
        ing.runs.map((r) => Math.round(INGEST / (r.wall / 1000)).toLocaleString()).join(", ")
      }`,
    );
    console.log(
      `  ${Math.round(INGEST / (ing.cpu / 1000)).toLocaleString()} units/s of process CPU time (${ms(ing.cpu)} CPU;` +
        ` wall/CPU ${(ing.wall / ing.cpu).toFixed(1)}x = share lost to other load)`,
    );
    console.log(
      `  re-ingest of the same records (all updates, metrics merged): ${
        Math.round(INGEST / (ing.update / 1000)).toLocaleString()
      } units/s wall`,
    );
    console.log(
      `  floor: raw prepared INSERT of the same rows (5 columns, no index) ${
        Math.round(INGEST / (ing.raw / 1000)).toLocaleString()
      } rows/s -> ingest costs ${(ing.wall / ing.raw).toFixed(1)}x the raw inserts`,
    );

    const p99a = pct(comp.alone, 99);
    const row = (label: string, xs: number[]) =>
      console.log(
        `  ${label.padEnd(44)} ${String(xs.length).padStart(6)} ${ms(pct(xs, 50)).padStart(10)} ${
          ms(pct(xs, 99)).padStart(10)
        } ${(pct(xs, 99) / p99a).toFixed(2).padStart(6)}x`,
      );
    console.log(
      `\nusers' /api/v1/units (30 days, ${CLIENTS} concurrent clients, a different user per request), goal: p99 <= 2x alone:`,
    );
    console.log(
      `  ${"".padEnd(44)} ${"reqs".padStart(6)} ${"p50".padStart(10)} ${"p99".padStart(10)} ${"p99/alone".padStart(7)}`,
    );
    row("alone", comp.alone);
    row(`while an admin reads /units/admin, 30 days`, comp.withAdmin);
    row(`while a ${WINDOW_UNITS.toLocaleString()}-unit window is ingested`, comp.duringIngest);
    console.log(
      `  the admin: ${comp.admin.requests} answers of ${
        (comp.admin.bytes / Math.max(1, comp.admin.requests) / 1e6).toFixed(0)
      } MB (streamed), ${
        (pct(comp.admin.ms, 50) / 1000).toFixed(1)
      } s each; the window: ${WINDOW_UNITS.toLocaleString()} units ingested in ${
        (comp.ingestMs / 1000).toFixed(1)
      } s (sacct, parse, write on the writer thread)`,
    );
    console.log(
      `  server resident memory, peak: ${comp.rssAlone.toFixed(0)} MB alone, ${
        comp.rssAdmin.toFixed(0)
      } MB with the admin, ${comp.rssIngest.toFixed(0)} MB during the ingest`,
    );
    const codes = [...attack.status].map(([c, n]) => `${n}x ${c}`).join(", ");
    const mb = (xs: number[]) => xs.map((x) => x.toFixed(0)).join(" / ");
    console.log(`\nrepeated-list attack (answers: ${codes}), server resident memory:`);
    console.log(`  ${attack.before.toFixed(0)} MB before`);
    console.log(
      `  ${
        mb(attack.repeated)
      } MB after each quarter of ${ATTACK_REQS} /units?uuid=a,a,... of ${ATTACK_LIST.toLocaleString()}+i entries (400: over the list cap; ${
        (attack.attackMs / 1000).toFixed(1)
      } s)`,
    );
    console.log(
      `  ${
        mb(attack.long)
      } MB after each quarter of ${ATTACK_REQS} of ${LONG_LIST.toLocaleString()}+i distinct uuids (answered; ${
        (attack.longMs / 1000).toFixed(1)
      } s)`,
    );
    console.log(`  ${attack.idle.toFixed(0)} MB after 5 s idle`);
  } finally {
    if (srv) {
      srv.stopSampling();
      srv.child.kill("SIGTERM");
      await srv.child.status;
    }
    Deno.removeSync(dir, { recursive: true });
  }
}

await main();
