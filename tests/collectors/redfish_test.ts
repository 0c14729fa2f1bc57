// Tests of the redfish collector against our Redfish mock: config parsing (CEEMS's keys), per-chassis
// sums, session token and basic auth, BMC failures (500, invalid JSON, hang) and the deprecated flags.

import { join } from "node:path";
import { expandEnv, parseRedfishConfig } from "../../collectors/redfish.ts";
import { assert, assertEquals, assertMatch, assertRejects } from "../helpers/assert.ts";
import { captureLogger, makeCollector, samples, scrape } from "../helpers/collector_harness.ts";
import { makeTestCerts } from "../helpers/certs.ts";
import { writeScript } from "../helpers/fake_tools.ts";
import { parseExposition, repoRoot, startCeems } from "../helpers/process.ts";
import { type RedfishMockAuth, startRedfishMock } from "../helpers/redfish_mock.ts";
import { withTempDir } from "../helpers/tree.ts";

const fixtures = join(repoRoot, "tests/fixtures/redfish");

Deno.test("redfish: config keys of CEEMS, the deprecated root, env credentials and timeouts", async () => {
  const legacy = await parseRedfishConfig("redfish_web_config:\n  protocol: http\n  host: bmc1\n  port: 5000\n");
  assertEquals(legacy.hostname, "bmc1");
  assertEquals([legacy.protocol, legacy.port, legacy.useSessionToken, legacy.timeoutMs], ["http", 5000, true, 5000]);
  const cfg = await parseRedfishConfig(
    `redfish_collector:
  protocol: https
  hostname: "{hostname}-bmc"
  username: admin
  password: secret
  use_session_token: false
  timeout: 2s
  external_url: http://proxy:5000
`,
    { REDFISH_WEB_PASSWORD: "from-env" },
  );
  assertEquals(
    [cfg.hostname, cfg.port, cfg.username, cfg.password, cfg.useSessionToken, cfg.timeoutMs, cfg.externalUrl],
    ["{hostname}-bmc", 443, "admin", "from-env", false, 2000, "http://proxy:5000"],
  );
  assertEquals((await parseRedfishConfig("redfish_collector:\n  hostname: b\n  timeout: 1500\n")).timeoutMs, 1500);
  await assertRejects(() => parseRedfishConfig("redfish_collector: [\n"), /invalid YAML/);
  await assertRejects(() => parseRedfishConfig("other: {}\n"), /missing redfish_collector/);
  await assertRejects(() => parseRedfishConfig("redfish_collector:\n  protocol: ftp\n"), /protocol/);
  assertEquals(expandEnv("u: ${USER_X} p: $PASS_Y", { USER_X: "a", PASS_Y: "b" }), "u: a p: b");
});

function writeConfig(dir: string, port: number, extra = ""): string {
  const file = join(dir, "redfish.yml");
  Deno.writeTextFileSync(
    file,
    `redfish_collector:\n  protocol: http\n  hostname: 127.0.0.1\n  port: ${port}\n  timeout: 400\n${extra}`,
  );
  return file;
}

async function collectorAgainst(auth?: RedfishMockAuth, extra = "") {
  const mock = startRedfishMock(fixtures, auth);
  const dir = Deno.makeTempDirSync();
  const file = writeConfig(dir, mock.port, extra);
  const c = await makeCollector("redfish", [`--collector.redfish.config.file=${file}`]);
  return {
    mock,
    c,
    async close() {
      await c.stop?.();
      await mock.close();
      Deno.removeSync(dir, { recursive: true });
    },
  };
}

const chassisA = '{chassis="Node_A",hostname="host1"}';
const chassisGpu = '{chassis="GPU_Tray",hostname="host1"}';

Deno.test("redfish: power of every chassis, summed over PowerControl, chassis id sanitized, zeros left out", async () => {
  const { c, close } = await collectorAgainst();
  try {
    const { sink, success } = await scrape({ redfish: c });
    assertEquals(success.redfish, 1);
    assertEquals(samples(sink, "ceems_redfish_current_watts"), new Map([[chassisA, 225], [chassisGpu, 800]]));
    assertEquals(samples(sink, "ceems_redfish_min_watts"), new Map([[chassisA, 105]]));
    assertEquals(samples(sink, "ceems_redfish_max_watts"), new Map([[chassisA, 325], [chassisGpu, 950]]));
    assertEquals(samples(sink, "ceems_redfish_avg_watts"), new Map([[chassisA, 212], [chassisGpu, 780]]));
    assertEquals(sink.families.get("ceems_redfish_avg_watts")!.type, "gauge");
  } finally {
    await close();
  }
});

Deno.test("redfish: logs in with a session token and logs out at stop; basic auth when tokens are off", async () => {
  const auth = { username: "admin", password: "pw", sessions: true };
  const t = await collectorAgainst(auth, "  username: admin\n  password: pw\n");
  try {
    const { success } = await scrape({ redfish: t.c });
    assertEquals(success.redfish, 1);
    assert(t.mock.requests.includes("POST /redfish/v1/SessionService/Sessions"), t.mock.requests.join("\n"));
  } finally {
    await t.close();
  }
  assertMatch(t.mock.requests.at(-1)!, /^DELETE \/redfish\/v1\/SessionService\/Sessions\/1$/);

  const b = await collectorAgainst(
    { ...auth, sessions: false },
    "  username: admin\n  password: pw\n  use_session_token: false\n",
  );
  try {
    assertEquals((await scrape({ redfish: b.c })).success.redfish, 1);
    assertEquals(b.mock.requests.some((r) => r.startsWith("POST")), false);
  } finally {
    await b.close();
  }

  const wrong = await collectorAgainst(auth, "  username: admin\n  password: nope\n");
  try {
    const log: string[] = [];
    assertEquals((await scrape({ redfish: wrong.c }, log)).success.redfish, 0);
    assertMatch(log.find((l) => l.includes("level=error"))!, /HTTP 401/);
  } finally {
    await wrong.close();
  }
});

Deno.test("redfish: BMC answering 500, invalid JSON or nothing fails the collector, serving last good values", async () => {
  const { mock, c, close } = await collectorAgainst();
  try {
    assertEquals((await scrape({ redfish: c })).success.redfish, 1);
    for (
      const [mode, why] of [["500", /HTTP 500/], ["invalid-json", /invalid JSON/], [
        "hang",
        /no answer: timed out after 400 ms/,
      ]] as const
    ) {
      mock.mode = mode;
      const log: string[] = [];
      const start = performance.now();
      const { sink, success } = await scrape({ redfish: c }, log);
      assert(performance.now() - start < 3000, `${mode} not bounded`);
      assertEquals(success.redfish, 0, mode);
      const errors = log.filter((l) => l.includes("level=error"));
      assertEquals(errors.length, 1, mode);
      assertMatch(errors[0], why);
      assertEquals(samples(sink, "ceems_redfish_current_watts"), new Map([[chassisA, 225], [chassisGpu, 800]]), mode);
      mock.mode = "ok";
      // The collector reconnects (service root and chassis again) and recovers.
      const before = mock.requests.length;
      assertEquals((await scrape({ redfish: c })).success.redfish, 1, `${mode}: no recovery`);
      assert(mock.requests.slice(before).includes("GET /redfish/v1/Chassis"), mode);
    }
  } finally {
    await close();
  }
});

Deno.test("redfish: https BMC verified against tls_config.ca_file; an unknown CA fails the scrape", async () => {
  const certs = makeTestCerts();
  const mock = startRedfishMock(fixtures, undefined, { cert: certs.serverCert, key: certs.serverKey });
  try {
    Deno.writeTextFileSync(join(certs.dir, "ca.pem"), certs.caCert);
    const base =
      `redfish_collector:\n  protocol: https\n  hostname: 127.0.0.1\n  port: ${mock.port}\n  timeout: 2000\n`;
    Deno.writeTextFileSync(
      join(certs.dir, "ok.yml"),
      base + `  tls_config:\n    ca_file: ${join(certs.dir, "ca.pem")}\n`,
    );
    Deno.writeTextFileSync(join(certs.dir, "noca.yml"), base);
    const ok = await makeCollector("redfish", [`--collector.redfish.config.file=${join(certs.dir, "ok.yml")}`]);
    const r = await scrape({ redfish: ok });
    assertEquals(r.success.redfish, 1);
    assertEquals(samples(r.sink, "ceems_redfish_current_watts").get(chassisGpu), 800);
    const noca = await makeCollector("redfish", [`--collector.redfish.config.file=${join(certs.dir, "noca.yml")}`]);
    const log: string[] = [];
    assertEquals((await scrape({ redfish: noca }, log)).success.redfish, 0);
    assertMatch(log.find((l) => l.includes("level=error"))!, /connecting to Redfish/);
    await ok.stop?.();
    await noca.stop?.();
  } finally {
    await mock.close();
    Deno.removeSync(certs.dir, { recursive: true });
  }
});

Deno.test("redfish: a BMC down at start-up does not stop the exporter; a bad config does, naming the flag", async () => {
  await withTempDir(async (dir) => {
    const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const deadPort = (l.addr as Deno.NetAddr).port;
    l.close();
    const c = await makeCollector("redfish", [`--collector.redfish.config.file=${writeConfig(dir, deadPort)}`]);
    const log: string[] = [];
    assertEquals((await scrape({ redfish: c }, log)).success.redfish, 0);
    assertMatch(log.find((x) => x.includes("level=error"))!, /connecting to Redfish/);
    Deno.writeTextFileSync(join(dir, "bad.yml"), "redfish_collector:\n  port: seventy\n");
    await assertRejects(
      () => makeCollector("redfish", [`--collector.redfish.config.file=${join(dir, "bad.yml")}`]),
      /--collector.redfish.config.file .*bad.yml: port: invalid/,
    );
    await assertRejects(() => makeCollector("redfish", []), /a configuration file is required/);
    // The deprecated environment variable still names the file, with a warning.
    Deno.env.set("CEEMS_EXPORTER_REDFISH_COLL_WEB_CONFIG_FILE", join(dir, "bad.yml"));
    const warned: string[] = [];
    try {
      await assertRejects(
        () => makeCollector("redfish", [], { logger: captureLogger(warned) }),
        /bad.yml: port: invalid/,
      );
    } finally {
      Deno.env.delete("CEEMS_EXPORTER_REDFISH_COLL_WEB_CONFIG_FILE");
    }
    assertMatch(warned.join("\n"), /CEEMS_EXPORTER_REDFISH_COLL_WEB_CONFIG_FILE is deprecated/);
  });
});

Deno.test("redfish and ipmi_dcmi: deprecated flag spellings keep working with a deprecation warning", async () => {
  const mock = startRedfishMock(fixtures);
  const dir = Deno.makeTempDirSync();
  try {
    const cfg = writeConfig(dir, mock.port);
    const tool = writeScript(
      dir,
      "ipmitool",
      `echo "Instantaneous power reading: 321 Watts"; echo "Power reading state is: activated"`,
    );
    const proc = await startCeems([
      "exporter",
      "--collector.disable-defaults",
      "--collector.redfish",
      `--collector.redfish.web-config=${cfg}`,
      "--collector.ipmi_dcmi",
      "--collector.ipmi_dcmi.test-mode",
      `--collector.ipmi.dcmi.cmd=${tool} dcmi power reading`,
      "--collector.empty-hostname-label",
      // The test-mode tool lives in a 0700 temp dir that the dropped user could not enter.
      "--no-security.drop-privileges",
    ]);
    let body: string;
    let stderr: string;
    try {
      body = await (await fetch(`${proc.base}/metrics`)).text();
    } finally {
      stderr = (await proc.stop()).stderr;
    }
    const m = parseExposition(body);
    assertEquals(m.get('ceems_redfish_current_watts{chassis="Node_A",hostname=""}'), 225);
    assertEquals(m.get('ceems_ipmi_dcmi_current_watts{hostname=""}'), 321);
    assertMatch(stderr, /flag --collector.redfish.web-config is deprecated, use --collector.redfish.config.file/);
    assertMatch(stderr, /flag --collector.ipmi.dcmi.cmd is deprecated, use --collector.ipmi_dcmi.cmd/);

    // The config file from the environment variable, no flag.
    const viaEnv = await startCeems(
      ["exporter", "--collector.disable-defaults", "--collector.redfish", "--collector.empty-hostname-label"],
      { env: { CEEMS_EXPORTER_REDFISH_COLL_CONFIG_FILE: cfg } },
    );
    try {
      const m2 = parseExposition(await (await fetch(`${viaEnv.base}/metrics`)).text());
      assertEquals(m2.get('ceems_redfish_current_watts{chassis="GPU_Tray",hostname=""}'), 800);
    } finally {
      await viaEnv.stop();
    }
  } finally {
    await mock.close();
    Deno.removeSync(dir, { recursive: true });
  }
});
