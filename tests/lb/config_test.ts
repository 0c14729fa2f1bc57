// Tests of the load balancer configuration: CEEMS's layout, defaults, and one clear error naming
// the key for each kind of mistake; environment expansion.

import { assertEquals, assertThrows } from "../helpers/assert.ts";
import { expandEnv, parseLbConfig } from "../../lb/config.ts";

const SAMPLE = `
ceems_lb:
  strategy: least-connection
  backends:
    - id: slurm-0
      tsdb:
        - web:
            url: http://localhost:9090/
            basic_auth: {username: prom, password: pw}
          filter_labels: [instance]
      pyroscope:
        - web: {url: http://localhost:4040}
    - id: os-0
      tsdb:
        - web: {url: https://tsdb.example:9090}
ceems_api_server:
  data: {path: /var/lib/ceems}
  web: {url: http://localhost:9020}
clusters:
  - {id: slurm-0, manager: slurm}
  - {id: os-0, manager: openstack}
`;

/** An ownership source, which every configuration needs. */
const API = "ceems_api_server:\n  data: {path: /var/lib/ceems}\n";

Deno.test("parseLbConfig reads CEEMS's ceems_lb / ceems_api_server layout", () => {
  const c = parseLbConfig(SAMPLE);
  assertEquals(c.strategy, "least-connection");
  assertEquals(c.backends.map((b) => b.id), ["slurm-0", "os-0"]);
  assertEquals(c.backends[0].tsdb[0].url, "http://localhost:9090");
  assertEquals(c.backends[0].tsdb[0].client.basic_auth, { username: "prom", password: "pw" });
  assertEquals(c.backends[0].tsdb[0].filterLabels, ["instance"]);
  assertEquals(c.backends[0].pyroscope.length, 1);
  assertEquals(c.backends[1].pyroscope.length, 0);
  assertEquals(c.api.dataPath, "/var/lib/ceems");
  assertEquals(c.api.url, "http://localhost:9020");
  assertEquals(
    parseLbConfig(`ceems_lb:\n  backends: [{id: a, tsdb: [{web: {url: 'http://x:1'}}]}]\n${API}`).strategy,
    "round-robin",
  );
});

Deno.test("parseLbConfig names the key of each mistake", () => {
  const one = (lb: string) => `ceems_lb:\n${lb}\n${API}`;
  assertThrows(
    () => parseLbConfig(one("  strategy: random\n  backends: [{id: a, tsdb: [{web: {url: 'http://x'}}]}]")),
    /ceems_lb.strategy: unknown strategy "random"/,
  );
  assertThrows(() => parseLbConfig(one("  backends: []")), /ceems_lb.backends: at least one backend/);
  assertThrows(
    () => parseLbConfig(one("  backends: [{tsdb: [{web: {url: 'http://x'}}]}]")),
    /backends\[0\].id: missing ID/,
  );
  assertThrows(() => parseLbConfig(one("  backends: [{id: a}]")), /missing TSDB and Pyroscope URL/);
  assertThrows(
    () => parseLbConfig(one("  backends: [{id: a, tsdb: [{web: {}}]}]")),
    /backends\[0\].tsdb\[0\].web.url: missing/,
  );
  assertThrows(
    () => parseLbConfig(one("  backends: [{id: a, tsdb: [{web: {url: 'ftp://x'}}]}]")),
    /scheme must be http/,
  );
  assertThrows(
    () =>
      parseLbConfig(
        one("  backends: [{id: a, tsdb: [{web: {url: 'http://x'}}]}, {id: a, tsdb: [{web: {url: 'http://y'}}]}]"),
      ),
    /backends\[1\].id: duplicate/,
  );
  assertThrows(
    () => parseLbConfig(one("  backends: [{id: b, tsdb: [{web: {url: 'http://x'}}]}]") + "clusters: [{id: a}]\n"),
    /unknown ID b/,
  );
  assertThrows(
    () => parseLbConfig(one("  backends: [{id: a, tsdb: [{web: {url: 'http://x', oauth2: {}}}]}]")),
    /tsdb\[0\].web.oauth2: not supported/,
  );
  assertThrows(() => parseLbConfig("ceems_lb: [1]\n"), /ceems_lb: must be a mapping/);
});

Deno.test("parseLbConfig fails closed: no ownership source, an empty one or one of the wrong type is an error", () => {
  const lb = "ceems_lb:\n  backends: [{id: a, tsdb: [{web: {url: 'http://x:1'}}]}]\n";
  const bad: [string, RegExp][] = [
    ["", /ceems_api_server: missing/],
    ["ceems_api_server:\n", /ceems_api_server: missing/],
    ["ceems_api_server: {}\n", /ceems_api_server\.data\.path: empty/],
    ["ceems_api_server: /var/lib/ceems\n", /ceems_api_server: must be a mapping/],
    ["ceems_api_server: {data: /var/lib/ceems}\n", /ceems_api_server\.data: must be a mapping/],
    ['ceems_api_server: {data: {path: ""}}\n', /ceems_api_server\.data\.path: empty/],
    ['ceems_api_server: {data: {path: "  "}}\n', /ceems_api_server\.data\.path: empty/],
    ["ceems_api_server: {data: {path: 5}}\n", /ceems_api_server\.data\.path: must be a string/],
    ["ceems_api_server: {data: {path: [a]}}\n", /ceems_api_server\.data\.path: must be a string/],
    ['ceems_api_server: {web: {url: ""}}\n', /ceems_api_server\.web\.url: empty/],
    ["ceems_api_server: {web: {url: true}}\n", /ceems_api_server\.web\.url: must be a string/],
    ["ceems_api_server: {web: {url: 'file:///x'}}\n", /ceems_api_server\.web\.url: scheme/],
  ];
  for (const [api, re] of bad) assertThrows(() => parseLbConfig(lb + api), re);
  // A variable that is not set expands to nothing: the same refusal, not a load balancer without access control.
  const expanded = expandEnv('ceems_api_server:\n  data: {path: "${CEEMS_DATA_DIR}"}\n', {});
  assertThrows(() => parseLbConfig(lb + expanded), /ceems_api_server\.data\.path: empty/);
  assertEquals(parseLbConfig(lb + "ceems_api_server: {web: {url: 'http://api:9020/'}}\n").api.url, "http://api:9020");
});

Deno.test("expandEnv expands $VAR and ${VAR}, keeps $$ as $", () => {
  assertEquals(expandEnv("a: ${X}/$Y $$Z", { X: "1", Y: "2" }), "a: 1/2 $Z");
  assertThrows(() => expandEnv("[[{$}]]", {}), /not allowed/);
});
