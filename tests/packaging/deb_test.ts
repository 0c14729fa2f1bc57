// The Debian package as an operator uses it: built once (deno task package), lintian-clean, installed with dpkg,
// its three units run as systemd would run them, CEEMS's own units on it, then purged down to what policy keeps.

import { join } from "node:path";
import { assert, assertEquals, assertMatch } from "../helpers/assert.ts";
import { fakeSlurmTools } from "../helpers/fake_slurm.ts";
import { freePort, repoRoot } from "../helpers/process.ts";
import { startPrometheus } from "../helpers/prometheus_server.ts";
import {
  createDynamicUser,
  removeDynamicUser,
  type RunningUnit,
  startUnit,
  unitStart,
} from "../helpers/systemd_unit.ts";
import { VERSION } from "../../common/version.ts";

const DEB = join(repoRoot, "dist", `ceems_${VERSION}_amd64.deb`);
const UNITS = ["ceems_exporter", "ceems_api_server", "ceems_lb"];
const CEEMS_UNITS = join(repoRoot, "tests/fixtures/ceems/units");
const dec = new TextDecoder();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function sh(cmd: string, args: string[], opts: { env?: Record<string, string>; ok?: boolean } = {}) {
  const r = new Deno.Command(cmd, { args, env: opts.env, stdout: "piped", stderr: "piped" }).outputSync();
  const out = { code: r.code, stdout: dec.decode(r.stdout), stderr: dec.decode(r.stderr) };
  if (opts.ok !== false && r.code !== 0) throw new Error(`${cmd} ${args.join(" ")}: ${out.stderr}${out.stdout}`);
  return out;
}

/** Logs a line of the transcript the closing note quotes. */
const say = (line: string) => console.log(`deploy: ${line}`);

/** Paths with "ceems" in their name under the system trees a package writes to. */
function ceemsPaths(): string[] {
  const r = sh("find", ["/etc", "/usr", "/lib", "/var", "-xdev", "-name", "*ceems*"], { ok: false });
  return r.stdout.split("\n").filter((p) => p && !p.startsWith("/var/tmp/") && !p.startsWith("/var/cache/man/"))
    .sort();
}

async function until<T>(what: string, f: () => Promise<T | undefined>, ms = 30_000): Promise<T> {
  const end = Date.now() + ms;
  let last: unknown;
  while (Date.now() < end) {
    try {
      const v = await f();
      if (v !== undefined) return v;
    } catch (e) {
      last = e;
    }
    await sleep(250);
  }
  throw new Error(`timed out waiting for ${what}${last ? `: ${last}` : ""}`);
}

/** Uid, groups and effective capabilities of a process. */
function credentials(pid: number): { uid: number; groups: number[]; capEff: string } {
  const st = Deno.readTextFileSync(`/proc/${pid}/status`);
  const field = (k: string) => new RegExp(`^${k}:\\s*(.*)$`, "m").exec(st)![1].trim();
  return {
    uid: Number(field("Uid").split(/\s+/)[0]),
    groups: field("Groups").split(/\s+/).filter((g) => g).map(Number),
    capEff: field("CapEff"),
  };
}

/** Where postinst fills Deno's caches of the installed app (packaging/bin/ceems opens them read-only). */
const CACHE_ROOT = "/var/cache/ceems";
/** The cache of a subcommand: the exporter's is made with its V8 flags (V8 rejects code cached under others). */
const cacheOf = (unit: string) => `${CACHE_ROOT}/${unit === "ceems_exporter" ? "deno-exporter" : "deno"}`;

/** The files under Deno's package caches that `pid` holds open, each with whether it could write through it. */
function cacheDescriptors(pid: number): { path: string; writable: boolean }[] {
  const out: { path: string; writable: boolean }[] = [];
  for (const e of Deno.readDirSync(`/proc/${pid}/fd`)) {
    try {
      const path = Deno.readLinkSync(`/proc/${pid}/fd/${e.name}`);
      if (!path.startsWith(`${CACHE_ROOT}/`)) continue;
      const flags = parseInt(/^flags:\s*(\d+)/m.exec(Deno.readTextFileSync(`/proc/${pid}/fdinfo/${e.name}`))![1], 8);
      out.push({ path, writable: (flags & 3) !== 0 });
    } catch {
      // closed meanwhile
    }
  }
  return out;
}

/**
 * Asserts that the process `pid` of `unit` reads its Deno package cache (module analysis and V8 code caches) and
 * could write none of it.
 */
function assertReadsCacheOnly(pid: number, unit: string, what = unit): string {
  const fds = cacheDescriptors(pid);
  const dir = cacheOf(unit);
  for (const db of ["dep_analysis_cache_v2", "v8_code_cache_v2"]) {
    assert(fds.some((f) => f.path === `${dir}/${db}`), `${what} reads ${dir}/${db}: ${JSON.stringify(fds)}`);
  }
  assertEquals(fds.filter((f) => !f.path.startsWith(`${dir}/`)), [], `${what} reads only ${dir}`);
  assertEquals(fds.filter((f) => f.writable), [], `${what} holds no cache file for writing`);
  return `${what} holds ${fds.length} files of ${dir}, all read-only`;
}

const idOf = (flag: "-u" | "-g", name: string) => Number(sh("id", [flag, name]).stdout.trim());
const gidOf = (group: string) => Number(sh("getent", ["group", group]).stdout.split(":")[2]);

async function text(url: string, headers: Record<string, string> = {}): Promise<{ status: number; body: string }> {
  const r = await fetch(url, { headers });
  return { status: r.status, body: await r.text() };
}

/** sacct and sacctmgr output the fake tools print: jobs (id, account, user) and each user's accounts. */
function fixtureJobs(): { jobs: { id: string; account: string; user: string }[]; accounts: Map<string, string[]> } {
  const tools = join(repoRoot, "tests/api_server/fixtures/tools");
  const jobs = Deno.readTextFileSync(join(tools, "sacct.txt")).split("\n").filter((l) => l).map((l) => l.split("|"))
    .map((f) => ({ id: f[0], account: f[3], user: f[6] }));
  const accounts = new Map<string, string[]>();
  for (const [acc, user] of Deno.readTextFileSync(join(tools, "sacctmgr.txt")).split("\n").map((l) => l.split("|"))) {
    if (user) accounts.set(user, [...(accounts.get(user) ?? []), acc]);
  }
  return { jobs, accounts };
}

/** Two users' jobs where the first user is in none of the second job's accounts (so may not see it). */
function foreignPair(): { me: { id: string; user: string }; other: { id: string; user: string } } {
  const { jobs, accounts } = fixtureJobs();
  for (const a of jobs) {
    const b = jobs.find((j) => j.user !== a.user && !(accounts.get(a.user) ?? [a.account]).includes(j.account));
    if (b) return { me: a, other: b };
  }
  throw new Error("no two users without a shared account in the fixture");
}

/** The unit `id` as `user` sees it through the API at `port` (undefined: not visible to them). */
async function unitVia(port: number, user: string, id: string): Promise<{ uuid: string } | undefined> {
  const r = await text(`http://127.0.0.1:${port}/api/v1/units?uuid=${id}&cluster_id=slurm-0`, {
    "X-Grafana-User": user,
  });
  const data = r.status === 200 ? JSON.parse(r.body).data ?? [] : [];
  return data.length ? data[0] : undefined;
}

/** Purges any earlier install (a failed run), so the test starts from a machine without the package. */
function purgeIfInstalled(): void {
  if (sh("dpkg-query", ["-W", "-f=${Status}", "ceems"], { ok: false }).stdout.includes("installed")) {
    sh("dpkg", ["--purge", "ceems"]);
  }
}

Deno.test({
  name: "deb: built, lintian-clean, installed, run as the units say (with CEEMS's own units), purged",
  ignore: Deno.uid() !== 0,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn(t) {
    await t.step("deno task package builds the .deb (dpkg-deb, nothing fetched but the npm registry's Deno)", () => {
      const r = sh(Deno.execPath(), ["run", "-A", join(repoRoot, "scripts/package/main.ts")], {
        env: { NO_COLOR: "1" },
      });
      say(r.stdout.trim());
      const info = sh("dpkg-deb", ["-f", DEB, "Package", "Version", "Architecture", "Depends"]).stdout;
      assertMatch(
        info,
        new RegExp(`^Package: ceems\nVersion: ${VERSION.replaceAll(".", "\\.")}\nArchitecture: amd64\n`),
      );
      assertMatch(info, /Depends: .*libc6 \(>= /);
      const listing = sh("dpkg-deb", ["-c", DEB]).stdout;
      for (const line of listing.split("\n").filter((l) => l)) {
        assert(/ root\/root /.test(line), `owned by root: ${line}`);
      }
      for (
        const p of [
          "./usr/bin/ceems",
          "./usr/bin/ceems_exporter -> ceems",
          "./usr/bin/ceems_api_server -> ceems",
          "./usr/bin/ceems_lb -> ceems",
          "./usr/bin/ceems_tool -> ceems",
          "./lib/systemd/system/ceems_exporter.service",
          "./usr/lib/sysusers.d/ceems.conf",
          "./etc/ceems/ceems_api_server.yml",
          "./usr/lib/ceems/app/.bpf/io.bpf.o",
          "./usr/share/man/man1/ceems_exporter.1.gz",
        ]
      ) {
        assert(listing.includes(p), `the package has ${p}`);
      }
      const conffiles = sh("dpkg-deb", ["-I", DEB, "conffiles"]).stdout.split("\n").filter((l) => l).sort();
      assertEquals(conffiles, [
        "/etc/ceems/ceems_api_server.yml",
        "/etc/ceems/ceems_lb.yml",
        "/etc/ceems/redfish-config.yml",
        "/etc/ceems/web-config.yml",
        "/etc/default/ceems_api_server",
        "/etc/default/ceems_exporter",
        "/etc/default/ceems_lb",
      ]);
    });

    await t.step("lintian finds nothing (overrides carry their reasons)", () => {
      const r = sh("lintian", ["-I", "--pedantic", DEB], { ok: false });
      const tags = r.stdout.split("\n").filter((l) => /^[EWIPX]: /.test(l));
      say(`lintian -I --pedantic: ${tags.length} tags (exit ${r.code})`);
      assertEquals(tags, []);
      assertEquals(r.code, 0, r.stderr);
    });

    purgeIfInstalled();
    const before = ceemsPaths();
    const work = Deno.makeTempDirSync({ prefix: "ceems-deploy-" });
    // The API server (user ceems) checks the SLURM tools it has root run: it must be able to see them.
    Deno.chmodSync(work, 0o755);
    const running: RunningUnit[] = [];
    const dyn = `ceems-lb-${Deno.pid}`;
    let prom: Awaited<ReturnType<typeof startPrometheus>> | undefined;
    const operatorFiles: string[] = [];
    try {
      await t.step("dpkg -i: ceems user and group, root-owned files the service user cannot change", () => {
        const r = sh("dpkg", ["-i", DEB]);
        say(`dpkg -i: ${r.stdout.split("\n").filter((l) => /Setting up|Creating|fill_cache/.test(l)).join("; ")}`);
        for (const dir of [cacheOf("ceems_api_server"), cacheOf("ceems_exporter")]) {
          assertMatch(
            r.stdout,
            new RegExp(`^${dir}: fill_cache: loaded (\\d+) of \\1 modules of /usr/lib/ceems/app$`, "m"),
          );
        }
        const ceemsUid = idOf("-u", "ceems");
        assertEquals(gidOf("ceems"), idOf("-g", "ceems"));
        // The package's files and the caches postinst filled from them: root's, and no group or other may write.
        const cache = sh("find", [CACHE_ROOT]).stdout.split("\n").filter((p) => p);
        for (const dir of [cacheOf("ceems_api_server"), cacheOf("ceems_exporter")]) {
          for (const db of ["dep_analysis_cache_v2", "v8_code_cache_v2"]) {
            for (const f of [db, `${db}-wal`, `${db}-shm`]) assert(cache.includes(`${dir}/${f}`), `${dir}/${f}`);
          }
        }
        assertEquals(cache.filter((p) => (Deno.lstatSync(p).mode! & 0o022) !== 0), [], "group/other-writable");
        // Each subcommand's start takes its compiled code from its cache (the exporter's V8 flags included):
        // hits, and no entry V8 rejects (Deno would try to replace it, and fail on the read-only cache).
        for (const [unit, sub] of [["ceems_exporter", "exporter"], ["ceems_api_server", "api"], ["ceems_lb", "lb"]]) {
          const run = sh("setpriv", [
            "--reuid=ceems",
            "--regid=ceems",
            "--init-groups",
            "/usr/bin/ceems",
            sub,
            "--help",
          ], {
            env: { DENO_LOG: "debug", NO_COLOR: "1" },
          });
          const count = (re: RegExp) => run.stderr.split("\n").filter((l) => re.test(l)).length;
          const hits = count(/V8 code cache hit/);
          assert(hits >= 50, `${sub}: ${hits} code cache hits`);
          assertEquals(count(/Updating V8 code cache|Error using code cache/), 0, `${sub}: rejected code cache`);
          say(`${sub} --help as ceems: ${hits} modules from ${cacheOf(unit)}'s V8 code cache, none rejected`);
        }
        const files = [
          ...sh("dpkg", ["-L", "ceems"]).stdout.split("\n").filter((p) => p && p !== "/."),
          ...cache,
        ];
        const writable = sh("setpriv", [
          "--reuid=ceems",
          "--regid=ceems",
          "--init-groups",
          "sh",
          "-c",
          'for p in "$@"; do [ -w "$p" ] && echo "$p"; done; true',
          "sh",
          ...files,
        ]).stdout.split("\n").filter((p) => p);
        assertEquals(writable, ["/var/lib/ceems"]);
        for (const p of files) {
          const st = Deno.lstatSync(p);
          assertEquals(st.uid, p === "/var/lib/ceems" ? ceemsUid : 0, p);
        }
        const rt = Deno.statSync("/usr/lib/ceems/deno");
        assertEquals([rt.mode! & 0o7777, rt.gid], [0o750, gidOf("ceems")]);
        const other = sh("setpriv", [
          "--reuid=nobody",
          "--regid=nogroup",
          "--clear-groups",
          "/usr/bin/ceems",
          "--version",
        ], {
          ok: false,
        });
        assertEquals(other.code, 126);
        assertMatch(other.stderr, /^ceems: \/usr\/lib\/ceems\/deno is for root and the ceems group only/);
        for (const c of ["/etc/ceems/ceems_api_server.yml", "/etc/ceems/web-config.yml"]) {
          const s = Deno.statSync(c);
          assertEquals([s.uid, s.gid, s.mode! & 0o777], [0, gidOf("ceems"), 0o640], c);
        }
        say(
          `installed ${files.length - cache.length} paths and ${cache.length} of Deno's caches; only /var/lib/ceems ` +
            `is writable by ceems (uid ${ceemsUid})`,
        );
        const verify = sh("systemd-analyze", ["verify", ...UNITS.map((u) => `/lib/systemd/system/${u}.service`)], {
          ok: false,
        });
        assertEquals([verify.code, verify.stdout + verify.stderr], [0, ""]);
      });

      const [pExp, pApi, pLb] = [freePort(), freePort(), freePort()];
      const bin = fakeSlurmTools(work);
      const pair = foreignPair();
      await t.step(
        "the three units start as their ExecStart/User lines say; Prometheus scrapes the exporter",
        async () => {
          // What an operator edits: the cluster, the LB's backend, and each unit's listen address.
          const yesterday = new Date(Date.now() - 86_400_000).toISOString().slice(0, 10);
          Deno.writeTextFileSync(
            "/etc/ceems/ceems_api_server.yml",
            `ceems_api_server:\n  data:\n    path: /var/lib/ceems\n    update_from: '${yesterday}'\n    max_update_interval: 3d\n` +
              `  admin:\n    users: [admin]\nclusters:\n  - id: slurm-0\n    manager: slurm\n    cli: {path: ${bin}}\n`,
          );
          const defaults: Record<string, string> = {
            ceems_exporter: `CEEMS_EXPORTER_OPTIONS="--web.listen-address=127.0.0.1:${pExp}"`,
            ceems_api_server: `CEEMS_API_SERVER_OPTIONS="--web.listen-address=127.0.0.1:${pApi}"`,
            ceems_lb: `CEEMS_LB_OPTIONS="--web.listen-address=127.0.0.1:${pLb}"`,
          };
          for (const [u, line] of Object.entries(defaults)) Deno.writeTextFileSync(`/etc/default/${u}`, `${line}\n`);
          prom = await startPrometheus({
            config: `global: {scrape_interval: 1s}\nscrape_configs:\n  - job_name: ceems\n` +
              `    static_configs: [{targets: ['127.0.0.1:${pExp}']}]\n`,
          });
          Deno.writeTextFileSync(
            "/etc/ceems/ceems_lb.yml",
            `ceems_lb:\n  backends:\n    - id: slurm-0\n      tsdb: [{web: {url: '${prom.url}'}}]\n` +
              "ceems_api_server:\n  data: {path: /var/lib/ceems}\n",
          );
          for (const u of ["ceems_exporter", "ceems_api_server"]) {
            const start = unitStart(Deno.readTextFileSync(`/lib/systemd/system/${u}.service`));
            say(`${u}: ${start.user || "root"}: ${start.argv.slice(start.argv.indexOf("--") + 1).join(" ")}`);
            running.push(startUnit(start));
          }
          await until("exporter /metrics", async () => {
            const r = await text(`http://127.0.0.1:${pExp}/metrics`);
            return r.status === 200 && r.body.includes("ceems_cpu_count") ? true : undefined;
          });
          await until(
            "api /health",
            async () => (await text(`http://127.0.0.1:${pApi}/health`)).status === 200 || undefined,
          );
          const ceems = idOf("-u", "ceems");
          for (const [i, u] of running.entries()) {
            const c = credentials(u.pid);
            assertEquals(c.uid, ceems, "root start dropped to ceems");
            assertEquals(c.capEff, "0000000000000000");
            // ProtectSystem=strict made the caches read-only for the root start: /usr/bin/ceems opened them.
            say(assertReadsCacheOnly(u.pid, UNITS[i]));
          }
          say(`exporter pid ${running[0].pid} and api pid ${running[1].pid} run as ceems, CapEff 0`);
        },
      );

      await t.step(
        "the API ingests from sacct; through the LB a user reads their unit and is refused another's",
        async () => {
          const [me, other] = [pair.me.user, pair.other.user];
          const mine = [(await until(`${me}'s unit in the API`, () => unitVia(pApi, me, pair.me.id), 60_000)).uuid];
          const theirs = [(await until(`${other}'s unit in the API`, () => unitVia(pApi, other, pair.other.id))).uuid];
          assertEquals(await unitVia(pApi, me, theirs[0]), undefined, `the API shows ${me} none of ${other}'s units`);
          const db = Deno.statSync("/var/lib/ceems/ceems.db");
          assertEquals([db.uid, db.gid, db.mode! & 0o777], [idOf("-u", "ceems"), gidOf("ceems"), 0o640]);
          createDynamicUser(dyn);
          const lbStart = unitStart(Deno.readTextFileSync("/lib/systemd/system/ceems_lb.service"), {
            dynamicUser: dyn,
          });
          say(
            `ceems_lb: DynamicUser stand-in ${dyn} + SupplementaryGroups=ceems: ${
              lbStart.argv.slice(lbStart.argv.indexOf("--") + 1).join(" ")
            }`,
          );
          const lb = startUnit(lbStart);
          running.push(lb);
          const headers = (user: string) => ({ "X-Grafana-User": user, "X-Ceems-Cluster-Id": "slurm-0" });
          const q = (uuid: string) =>
            `http://127.0.0.1:${pLb}/api/v1/query?query=${encodeURIComponent(`ceems_cpu_count{uuid="${uuid}"}`)}`;
          const own = await until("the LB answering", async () => {
            const r = await text(q(mine[0]), headers(me));
            return r.status === 200 ? r : undefined;
          });
          assertEquals(JSON.parse(own.body).status, "success");
          const foreign = await text(q(theirs[0]), headers(me));
          assertEquals(foreign.status, 403, foreign.body);
          const c = credentials(lb.pid);
          assertEquals(c.uid, idOf("-u", dyn));
          say(assertReadsCacheOnly(lb.pid, "ceems_lb"));
          assert(c.groups.includes(gidOf("ceems")), `LB groups ${c.groups}`);
          say(
            `LB as ${dyn} (groups ${c.groups.join(",")}): ${me} reads unit ${mine[0]} (200), is refused ${other}'s ` +
              `${theirs[0]} (${foreign.status})`,
          );
          const scraped = await until("Prometheus scraping the exporter", async () => {
            const r = await text(
              `${prom!.url}/api/v1/query?query=${encodeURIComponent('ceems_cpu_count{job="ceems"}')}`,
            );
            const res = JSON.parse(r.body).data?.result ?? [];
            return res.length ? res[0].value[1] as string : undefined;
          });
          say(`Prometheus 2.42 scraped ceems_cpu_count{job="ceems"} = ${scraped}`);
        },
      );

      await t.step("stopped by SIGTERM: exit 0, and no registry line in any log", async () => {
        for (const [i, u] of running.splice(0).entries()) {
          const code = await u.stop();
          const log = u.log();
          assertEquals(code, 0, log);
          assert(!/Download|registry\.npmjs|npm:/.test(log), log);
          assertMatch(log, /msg=stopped/);
          say(`${UNITS[i]}: exit ${code}, ${log.trim().split("\n").length} log lines, none from a registry`);
        }
      });

      await t.step("a root start without ProtectSystem's read-only view keeps Deno's caches in memory", async () => {
        const port = freePort();
        const start = unitStart(Deno.readTextFileSync("/lib/systemd/system/ceems_exporter.service"), {
          protectSystem: false,
        });
        // Its /etc/default listen address, moved to a port of its own.
        start.argv = start.argv.map((a) =>
          a.startsWith("--web.listen-address=") ? `--web.listen-address=127.0.0.1:${port}` : a
        );
        const u = startUnit(start);
        try {
          await until(
            "exporter /metrics",
            async () => (await text(`http://127.0.0.1:${port}/metrics`)).status === 200 || undefined,
          );
          assertEquals(credentials(u.pid).uid, idOf("-u", "ceems"));
          assertEquals(cacheDescriptors(u.pid), [], "no descriptor of the cache root could write");
          say(`root start without a read-only view: pid ${u.pid} as ceems holds no file of ${CACHE_ROOT}`);
        } finally {
          assertEquals(await u.stop(), 0, u.log());
        }
      });

      await t.step(
        "CEEMS's own units (User=ceems, ambient capabilities, /usr/local/bin names) start the package",
        async () => {
          // The operator's move from CEEMS: its binaries' paths point at ours, its config directories stay.
          for (const u of UNITS) {
            const link = `/usr/local/bin/${u}`;
            Deno.symlinkSync(`/usr/bin/${u}`, link);
            operatorFiles.push(link);
            const dir = `/etc/${u}`;
            Deno.mkdirSync(dir);
            operatorFiles.push(dir);
            const copyTo = (from: string, to: string) => {
              Deno.copyFileSync(from, to);
              sh("chown", ["root:ceems", to]);
              Deno.chmodSync(to, 0o640);
            };
            copyTo("/etc/ceems/web-config.yml", `${dir}/web-config.yml`);
            if (u === "ceems_api_server") copyTo("/etc/ceems/ceems_api_server.yml", `${dir}/config.yml`);
            if (u === "ceems_lb") copyTo("/etc/ceems/ceems_lb.yml", `${dir}/config.yml`);
          }
          const opts: Record<string, string> = {
            ceems_exporter: "CEEMS_EXPORTER_OPTIONS",
            ceems_api_server: "CEEMS_API_SERVER_OPTIONS",
            ceems_lb: "CEEMS_LB_OPTIONS",
          };
          const ports = Object.fromEntries(UNITS.map((u) => [u, freePort()]));
          const started: RunningUnit[] = [];
          try {
            for (const u of UNITS) {
              const start = unitStart(Deno.readTextFileSync(join(CEEMS_UNITS, `${u}.service`)), {
                extraEnv: { [opts[u]]: `--web.listen-address=127.0.0.1:${ports[u]}` },
              });
              say(`CEEMS ${u}.service as ${start.user}: ${start.argv.slice(start.argv.indexOf("--") + 1).join(" ")}`);
              started.push(startUnit(start));
              if (u === "ceems_api_server") {
                await until("CEEMS's API unit", () => unitVia(ports[u], pair.me.user, pair.me.id));
              }
            }
            const metrics = await until("CEEMS's exporter unit", async () => {
              const r = await text(`http://127.0.0.1:${ports.ceems_exporter}/metrics`);
              return r.status === 200 ? r.body : undefined;
            });
            assertMatch(metrics, /ceems_cpu_count/);
            const q = `http://127.0.0.1:${ports.ceems_lb}/api/v1/query?query=${
              encodeURIComponent(`ceems_cpu_count{uuid="${pair.me.id}"}`)
            }`;
            const lb = await until("CEEMS's LB unit", async () => {
              const r = await text(q, { "X-Grafana-User": pair.me.user, "X-Ceems-Cluster-Id": "slurm-0" });
              return r.status === 200 ? r : undefined;
            });
            assertEquals(JSON.parse(lb.body).status, "success");
            for (const [i, u] of started.entries()) {
              assertEquals(credentials(u.pid).uid, idOf("-u", "ceems"));
              if (UNITS[i] === "ceems_lb") {
                // User=ceems without capabilities cannot write the caches: opened read-only.
                say(assertReadsCacheOnly(u.pid, UNITS[i], `CEEMS's ${UNITS[i]}`));
              } else {
                // CEEMS's exporter and API units hand ceems ambient capabilities (CAP_DAC_OVERRIDE; CAP_SETUID):
                // it could write the caches, so /usr/bin/ceems keeps them in memory.
                assertEquals(cacheDescriptors(u.pid), [], `CEEMS's ${UNITS[i]}: caches in memory`);
                say(`CEEMS's ${UNITS[i]} (ambient capabilities) holds no file of ${CACHE_ROOT}`);
              }
            }
            say(
              `CEEMS's units: exporter /metrics 200, API serves ${pair.me.user}'s unit, the LB answers them; all as ceems`,
            );
          } finally {
            for (const u of started.reverse()) {
              const code = await u.stop();
              assertEquals(code, 0, u.log());
            }
          }
        },
      );
    } finally {
      for (const u of running) await u.stop();
      await prom?.stop();
      for (const f of operatorFiles.reverse()) Deno.removeSync(f, { recursive: true });
      removeDynamicUser(dyn);
      Deno.removeSync(work, { recursive: true });
    }

    await t.step("dpkg --purge leaves only what Debian policy keeps: the ceems user and group", () => {
      sh("dpkg", ["--purge", "ceems"]);
      const left = ceemsPaths().filter((p) => !before.includes(p));
      assertEquals(left, []);
      assertEquals(sh("dpkg-statoverride", ["--list"]).stdout.split("\n").filter((l) => l.includes("ceems")), []);
      for (const p of ["/usr/lib/ceems", "/etc/ceems", "/var/lib/ceems", "/run/ceems", "/usr/bin/ceems"]) {
        let exists = true;
        try {
          Deno.lstatSync(p);
        } catch {
          exists = false;
        }
        assert(!exists, `${p} is gone`);
      }
      const user = sh("getent", ["passwd", "ceems"]).stdout.trim();
      say(
        `purged: no path named ceems left under /etc /usr /lib /var; kept: ${
          user.split(":").slice(0, 4).join(":")
        } (system account)`,
      );
    });
  },
});
