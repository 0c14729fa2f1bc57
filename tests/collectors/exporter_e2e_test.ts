// End-to-end tests of `ceems exporter` as a subprocess: series on a fixture procfs checked by
// promtool, collector selection flags, web routes, web-config auth/TLS, flag errors and shutdown.

import bcrypt from "bcryptjs";
import { join } from "node:path";
import { assert, assertEquals, assertMatch } from "../helpers/assert.ts";
import { makeTestCerts } from "../helpers/certs.ts";
import { parseExposition, parseTypes, repoRoot, runCeems, startCeems } from "../helpers/process.ts";

const procfs = join(repoRoot, "tests/fixtures/proc");
const base = [`--path.procfs=${procfs}`, "--collector.empty-hostname-label"];

/** CEEMS's own metric names that promtool's style lint complains about; they are a compatibility contract. */
const contractNames = /^(ceems_cpu_count|ceems_cpu_per_core_count|ceems_meminfo_\w+) /;

Deno.test("exporter e2e: cpu and meminfo series on a fixture procfs pass promtool", async () => {
  const p = await startCeems(["exporter", ...base]);
  try {
    const body = await (await fetch(`${p.base}/metrics`)).text();
    const s = parseExposition(body);
    const t = parseTypes(body);
    assertEquals(s.get('ceems_cpu_seconds_total{hostname="",mode="user"}'), 1234.56);
    assertEquals(s.get('ceems_cpu_seconds_total{hostname="",mode="idle"}'), 98765.43);
    assertEquals(s.get('ceems_cpu_seconds_total{hostname="",mode="steal"}'), 0.12);
    assertEquals(s.get('ceems_cpu_count{hostname=""}'), 8);
    assertEquals(s.get('ceems_cpu_per_core_count{hostname=""}'), 2);
    assertEquals(s.get('ceems_meminfo_MemTotal_bytes{hostname=""}'), 32768000 * 1024);
    assertEquals(s.get('ceems_meminfo_MemAvailable_bytes{hostname=""}'), 20000000 * 1024);
    assertEquals(s.get('ceems_scrape_collector_success{collector="cpu"}'), 1);
    assertEquals(s.get('ceems_scrape_collector_success{collector="meminfo"}'), 1);
    assertEquals(t.get("ceems_cpu_seconds_total"), "counter");
    assertEquals(t.get("ceems_meminfo_MemFree_bytes"), "gauge");
    assertEquals(
      s.get(
        'ceems_exporter_build_info{branch="main",goarch="amd64",goos="linux",goversion="deno' +
          Deno.version.deno + '",revision="unknown",tags="",version="0.1.0"}',
      ),
      1,
    );
    assert([...s.keys()].some((k) => k.startsWith("process_resident_memory_bytes")), "process metrics missing");

    const promtool = new Deno.Command("promtool", {
      args: ["check", "metrics"],
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    })
      .spawn();
    const w = promtool.stdin.getWriter();
    await w.write(new TextEncoder().encode(body));
    await w.close();
    const out = await promtool.output();
    const complaints = (new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr))
      .split("\n").filter((l) => l.trim() && !contractNames.test(l));
    assertEquals(complaints, [], "promtool complained");
    assert(out.code === 0 || out.code === 3, `promtool exit ${out.code}`);
  } finally {
    await p.stop();
  }
});

Deno.test("exporter e2e: collector selection, disabled exporter metrics, hostname from NODE_NAME", async () => {
  const p = await startCeems(
    [
      "exporter",
      `--path.procfs=${procfs}`,
      "--collector.disable-defaults",
      "--collector.meminfo",
      "--web.disable-exporter-metrics",
    ],
    { env: { NODE_NAME: "node-7" } },
  );
  try {
    const s = parseExposition(await (await fetch(`${p.base}/metrics`)).text());
    assertEquals(s.get('ceems_meminfo_MemFree_bytes{hostname="node-7"}'), 12000000 * 1024);
    assert(![...s.keys()].some((k) => k.startsWith("ceems_cpu_")), "cpu collector should be off");
    assert(![...s.keys()].some((k) => k.startsWith("process_")), "process metrics should be off");
  } finally {
    await p.stop();
  }
  const q = await startCeems(["exporter", ...base, "--no-collector.meminfo", "--web.telemetry-path=/m"]);
  try {
    const s = parseExposition(await (await fetch(`${q.base}/m`)).text());
    assert(s.has('ceems_cpu_count{hostname=""}'));
    assert(![...s.keys()].some((k) => k.startsWith("ceems_meminfo_")));
    const landing = await fetch(`${q.base}/`);
    assertMatch(await landing.text(), /href="\/m"/);
    const health = await fetch(`${q.base}/health`);
    assertEquals(await health.text(), "CEEMS Exporter is healthy");
    const missing = await fetch(`${q.base}/metrics`);
    assertEquals(missing.status, 404);
    await missing.body?.cancel();
  } finally {
    await q.stop();
  }
});

Deno.test("exporter e2e: a broken procfs file fails one collector, not the scrape", async () => {
  const dir = Deno.makeTempDirSync();
  Deno.copyFileSync(join(procfs, "cpuinfo"), join(dir, "cpuinfo"));
  Deno.copyFileSync(join(procfs, "meminfo"), join(dir, "meminfo"));
  Deno.writeTextFileSync(join(dir, "stat"), "garbage\n");
  const p = await startCeems(["exporter", `--path.procfs=${dir}`, "--collector.empty-hostname-label"]);
  try {
    const s = parseExposition(await (await fetch(`${p.base}/metrics`)).text());
    assertEquals(s.get('ceems_scrape_collector_success{collector="cpu"}'), 0);
    assertEquals(s.get('ceems_scrape_collector_success{collector="meminfo"}'), 1);
    assertEquals(s.get('ceems_meminfo_MemTotal_bytes{hostname=""}'), 32768000 * 1024);
  } finally {
    const { stderr } = await p.stop();
    assertMatch(stderr, /level=error msg="collector failed" name=cpu err="no aggregate cpu line in stat"/);
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("exporter e2e: web config basic auth and TLS", async () => {
  const certs = makeTestCerts();
  const cfg = join(certs.dir, "web.yml");
  Deno.writeTextFileSync(
    cfg,
    `tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\nbasic_auth_users:\n  prometheus: "${
      bcrypt.hashSync("password", 4)
    }"\n`,
  );
  const client = Deno.createHttpClient({ caCerts: [certs.caCert] });
  const auth = { authorization: `Basic ${btoa("prometheus:password")}` };
  const p = await startCeems(["exporter", ...base, `--web.config.file=${cfg}`], {
    scheme: "https",
    fetchInit: { client, headers: auth },
  });
  try {
    const wrong = await fetch(`${p.base}/metrics`, {
      client,
      headers: { authorization: `Basic ${btoa("prometheus:wrong")}` },
    });
    assertEquals(wrong.status, 401);
    await wrong.body?.cancel();
    const ok = await fetch(`${p.base}/metrics`, { client, headers: auth });
    assertEquals(ok.status, 200);
    assertMatch(await ok.text(), /ceems_cpu_count/);
  } finally {
    client.close();
    await p.stop();
    Deno.removeSync(certs.dir, { recursive: true });
  }
});

Deno.test("exporter e2e: bad flags and unreadable files exit 2 with one line naming the flag", async () => {
  const cases: [string[], RegExp][] = [
    [["--collector.nope"], /^ceems exporter: error: unknown long flag '--collector\.nope'$/],
    [["--web.max-requests=many"], /--web\.max-requests/],
    [["--log.level=chatty"], /--log\.level/],
    [["--web.config.file=/nonexistent/web.yml"], /^ceems exporter: error: --web\.config\.file: .*nonexistent/],
    [["--web.telemetry-path=metrics"], /--web\.telemetry-path/],
    [["stray-argument"], /unexpected argument 'stray-argument'/],
  ];
  const badYaml = Deno.makeTempFileSync({ suffix: ".yml" });
  Deno.writeTextFileSync(badYaml, "basic_auth_users: [oops\n");
  cases.push([[`--web.config.file=${badYaml}`], /--web\.config\.file/]);
  for (const [args, re] of cases) {
    const r = await runCeems(["exporter", ...args]);
    assertEquals(r.code, 2, `${args}: exit ${r.code}\n${r.stderr}`);
    const lines = r.stderr.trim().split("\n");
    assertEquals(lines.length, 1, `${args}: ${r.stderr}`);
    assertMatch(lines[0], re);
  }
  Deno.removeSync(badYaml);
});

Deno.test("exporter e2e: --help lists flags with defaults; --version; unknown command", async () => {
  const help = await runCeems(["exporter", "--help"]);
  assertEquals(help.code, 0);
  for (
    const f of [
      "--web.listen-address=ADDRESS",
      "(default: :9010)",
      "--web.telemetry-path",
      "(default: /metrics)",
      "--web.max-requests=INT",
      "(default: 40)",
      "--[no-]collector.cpu",
      "--[no-]collector.disable-defaults",
      "--path.procfs",
      "--log.format",
      "--web.config.file",
    ]
  ) assert(help.stdout.includes(f), `help lacks ${f}`);
  const version = await runCeems(["exporter", "--version"]);
  assertEquals(version.code, 0);
  assertMatch(version.stdout, /^ceems exporter, version \d+\.\d+\.\d+/);
  const unknown = await runCeems(["frobnicate"]);
  assertEquals(unknown.code, 2);
  assertMatch(unknown.stderr, /unknown command 'frobnicate'/);
});

Deno.test("exporter e2e: SIGTERM and SIGINT shut down gracefully", async () => {
  for (const sig of ["SIGTERM", "SIGINT"] as Deno.Signal[]) {
    const p = await startCeems(["exporter", ...base]);
    const { code, stderr } = await p.stop(sig);
    assertEquals(code, 0, stderr);
    assertMatch(stderr, new RegExp(`msg="shutting down" signal=${sig}`));
    assertMatch(stderr, /msg=stopped/);
  }
});
