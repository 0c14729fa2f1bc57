// `ceems tool` helpers and start-up errors: durations, times, HTTP client config files, and bad flags or
// unreachable servers stopping each subcommand with one line naming the problem.

import { join } from "node:path";
import { assertEquals, assertMatch } from "../helpers/assert.ts";
import { parseTime } from "../../tool/common.ts";
import { loadHttpClientConfig, parsePromDuration } from "../../tool/prometheus_api.ts";
import { promDuration } from "../../tool/rules/types.ts";
import { runCeems } from "../helpers/process.ts";

Deno.test("tool helpers: durations, times, HTTP client config (basic auth, authorization, headers)", () => {
  assertEquals([promDuration(60_000), promDuration(4000), promDuration(1500), promDuration(7_200_000)], [
    "1m",
    "4s",
    "1500ms",
    "2h",
  ]);
  assertEquals(parsePromDuration("1m30s"), 90_000);
  assertEquals(parseTime("1700000000"), 1700000000);
  assertEquals(parseTime("2023-11-14T22:13:20Z"), 1700000000);
  const dir = Deno.makeTempDirSync({ prefix: "ceems-httpcfg-" });
  try {
    Deno.writeTextFileSync(join(dir, "pw"), "s3cret\n");
    Deno.writeTextFileSync(join(dir, "a.yml"), `basic_auth: {username: ceems, password_file: ${join(dir, "pw")}}\n`);
    assertEquals(loadHttpClientConfig(join(dir, "a.yml")).headers, { Authorization: "Basic " + btoa("ceems:s3cret") });
    Deno.writeTextFileSync(
      join(dir, "b.yml"),
      "authorization: {credentials: tok}\nhttp_headers: {X-Ceems-Cluster-Id: {values: [slurm-0]}}\n",
    );
    assertEquals(loadHttpClientConfig(join(dir, "b.yml")).headers, {
      Authorization: "Bearer tok",
      "X-Ceems-Cluster-Id": "slurm-0",
    });
    assertEquals(loadHttpClientConfig("").headers, {});
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("tool: bad flags and unreachable servers stop with one line naming the problem", async () => {
  const cases: [string[], RegExp, number][] = [
    [
      ["tsdb", "create-recording-rules", "--emission-factor=10", "--country-code=FR"],
      /--emission-factor and --country-code are mutually exclusive/,
      2,
    ],
    [["tsdb", "create-recording-rules", "--start=yesterday"], /--start: invalid time "yesterday"/, 2],
    [["tsdb", "create-recording-rules", "--pue=0.5"], /--pue.*must be at least 1/, 2],
    [["tsdb", "create-recording-rules", "--url=http://127.0.0.1:1"], /querying Prometheus at http:\/\/127.0.0.1:1/, 2],
    [["tsdb", "create-relabel-configs", "--nope"], /unknown long flag '--nope'/, 2],
    [["tsdb", "create-ceems-tsdb-updater-queries", "--url=ftp://x"], /--url: not an http\(s\) URL/, 2],
    [["config", "create-web-config", "--tls"], /--tls.host must be provided/, 2],
    [["check", "web-config"], /required argument 'web-config-files' not provided/, 2],
    [["check", "web-config", "/nonexistent.yml"], /path '\/nonexistent.yml' does not exist/, 2],
    [["check", "api-healthy", "--http.config.file=/nonexistent.yml"], /--http.config.file: path/, 2],
    [["tsdb", "nope"], /unknown command 'tsdb nope'/, 2],
  ];
  for (const [args, re, code] of cases) {
    const r = await runCeems(["tool", ...args]);
    assertEquals(r.code, code, `${args.join(" ")}: ${r.stderr}`);
    assertMatch(r.stderr, re);
    assertEquals(r.stderr.trim().split("\n").length, 1, r.stderr);
  }
  const down = await runCeems(["tool", "check", "api-healthy", "--url=http://127.0.0.1:1"]);
  assertEquals(down.code, 1);
  assertMatch(down.stderr, /check failed: URL=http:\/\/127.0.0.1:1/);
});
