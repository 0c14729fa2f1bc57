// API server configuration: CEEMS's own test config accepted unchanged, ${VAR} expansion, defaults,
// and one clear error per problem.

import { join } from "node:path";
import { assert, assertEquals } from "../helpers/assert.ts";
import { repoRoot } from "../helpers/process.ts";
import { ConfigError, expandEnv, parseApiConfig } from "../../api_server/config.ts";

Deno.test("CEEMS's test configuration is accepted unchanged", () => {
  const text = Deno.readTextFileSync(join(repoRoot, "tests/api_server/fixtures/config.yml"));
  const cfg = parseApiConfig(text);
  assertEquals(cfg.clusters.map((c) => `${c.id}:${c.manager}`), [
    "slurm-0:slurm",
    "slurm-1:slurm",
    "os-0:openstack",
    "os-1:openstack",
  ]);
  assertEquals(cfg.updaters.map((u) => u.id), ["tsdb-0", "tsdb-1"]);
  assertEquals(cfg.clusters[0].updaters, ["tsdb-0", "tsdb-1"]);
  assertEquals(cfg.data.maxUpdateIntervalMs, 86_400_000);
  assertEquals(cfg.data.timeZone, "Europe/Paris");
  assertEquals(cfg.adminUsers, ["grafana", "__test_admin"]);
  assertEquals(cfg.updaters[0].extraConfig.queries.total_cpu_emissions_gms.rte_total.includes("{{.UUIDs}}"), true);
  assertEquals(cfg.updaters[0].extraConfig.queryBatchSize, 1, "query_batch_size: 1 of CEEMS's test config");
});

Deno.test("query_batch_size must be a non-negative integer", () => {
  const cfg = (v: string) =>
    `updaters:\n  - id: t\n    updater: tsdb\n    web: {url: "http://p:9090"}\n    extra_config: {query_batch_size: ${v}}\n`;
  assertEquals(parseApiConfig(cfg("0")).updaters[0].extraConfig.queryBatchSize, 0);
  let msg = "";
  try {
    parseApiConfig(cfg("-2"));
  } catch (e) {
    assert(e instanceof ConfigError);
    msg = e.message;
  }
  assert(/updaters\[0\]\.extra_config\.query_batch_size: must be a non-negative integer/.test(msg), msg);
});

Deno.test("defaults and env expansion", () => {
  const cfg = parseApiConfig("");
  assertEquals(cfg.data.path, "data");
  assertEquals(cfg.data.updateIntervalMs, 15 * 60_000);
  assertEquals(cfg.data.retentionPeriodMs, 30 * 86_400_000);
  assertEquals(cfg.clusters, []);
  assertEquals(expandEnv("a ${X} $Y $$Z", { X: "1", Y: "2" }), "a 1 2 $Z");
  const c2 = parseApiConfig("ceems_api_server:\n  data:\n    path: ${D}/x\n", { expandEnv: true, env: { D: "/srv" } });
  assertEquals(c2.data.path, "/srv/x");
  // Without the flag, text stays literal.
  assertEquals(parseApiConfig("ceems_api_server:\n  data:\n    path: ${D}\n").data.path, "${D}");
});

Deno.test("invalid configurations name the key", () => {
  const bad: [string, string][] = [
    ["ceems_api_server: [1]", "ceems_api_server: must be a mapping"],
    ["clusters:\n  - {id: 'a b', manager: slurm}", 'clusters[0].id: invalid cluster id "a b"'],
    ["ceems_api_server:\n  data:\n    time_zone: Mars/Olympus", 'time_zone: unknown time zone "Mars/Olympus"'],
    [
      "ceems_api_server:\n  data:\n    backup_path: /b\n    backup_interval: 1h",
      "backup_interval: must be at least 1d",
    ],
    ["updaters:\n  - {id: t, updater: tsdb, web: {url: 'not a url'}}", 'updaters[0].web.url: invalid URL "not a url"'],
    ["ceems_api_server:\n  data:\n    update_from: someday", 'update_from: invalid time "someday"'],
    ["a: [", "invalid YAML"],
  ];
  for (const [text, msg] of bad) {
    let err: unknown;
    try {
      parseApiConfig(text);
    } catch (e) {
      err = e;
    }
    assert(err instanceof ConfigError, `${text} must fail`);
    assert((err as Error).message.includes(msg), `${(err as Error).message} should include ${msg}`);
  }
});
