// Every flag CEEMS 0.10.2's exporter, API server and load balancer define is accepted by the same subcommand
// here (tests/fixtures/ceems/flags.txt), and the runtime flags behave as documented end to end.

import { exporterFlags } from "../../collectors/exporter.ts";
import { apiFlags } from "../../api_server/cli.ts";
import { lbFlags } from "../../lb/cli.ts";
import { FlagError, type FlagSet } from "../../common/flags.ts";
import { assert, assertEquals, assertMatch } from "../helpers/assert.ts";
import { runCeems, startCeems } from "../helpers/process.ts";

const fixture = new URL("../fixtures/ceems/flags.txt", import.meta.url);

/** CEEMS binary → our flag set of the same component. */
const components: Record<string, () => FlagSet> = {
  ceems_exporter: exporterFlags,
  ceems_api_server: apiFlags,
  ceems_lb: lbFlags,
};

/** Whether the flag set knows `--name` (as a flag, an alias, or --no- of a bool); a bad or missing value is fine. */
function known(fs: FlagSet, name: string): boolean {
  try {
    fs.parse([`--${name}`], {});
    return true;
  } catch (e) {
    if (!(e instanceof FlagError)) throw e;
    return !/^unknown long flag/.test(e.message);
  }
}

Deno.test("every CEEMS flag is accepted by the subcommand that replaces its binary", () => {
  const lines = Deno.readTextFileSync(fixture).split("\n").filter((l) => l && !l.startsWith("#"));
  const missing: string[] = [];
  const counted: Record<string, number> = {};
  for (const line of lines) {
    const [binary, flag] = line.split(" ");
    const make = components[binary];
    assert(make, `unknown binary ${binary}`);
    counted[binary] = (counted[binary] ?? 0) + 1;
    if (!known(make(), flag)) missing.push(`${binary} --${flag}`);
  }
  assertEquals(missing, []);
  assert(counted.ceems_exporter > 60 && counted.ceems_api_server > 15 && counted.ceems_lb > 8, JSON.stringify(counted));
});

Deno.test("--runtime.gomaxprocs and $GOMAXPROCS are accepted (no effect); a bad value is one line naming the flag", async () => {
  for (const sub of ["exporter", "api", "lb"]) {
    const bad = await runCeems([sub, "--runtime.gomaxprocs=many"]);
    assertEquals(bad.code, 2);
    assertEquals(
      bad.stderr,
      `ceems ${sub}: error: invalid value 'many' for flag '--runtime.gomaxprocs': expected an integer\n`,
    );
  }
  const p = await startCeems(
    ["exporter", "--collector.disable-defaults", "--collector.cpu", "--runtime.gomaxprocs=4"],
    {
      env: { GOMAXPROCS: "2" },
    },
  );
  try {
    const r = await fetch(`${p.base}/metrics`);
    assertEquals(r.status, 200);
    assertMatch(await r.text(), /ceems_cpu_seconds_total/);
  } finally {
    const { code } = await p.stop();
    assertEquals(code, 0);
  }
});

Deno.test("--profiling.ebpf (CEEMS's built-in profiler) stops start-up with one line naming the flag", async () => {
  const r = await runCeems(["exporter", "--profiling.ebpf"]);
  assertEquals(r.code, 2);
  assertMatch(r.stderr, /^ceems exporter: error: invalid value for flag '--profiling\.ebpf': .*Alloy.*\n$/);
  assertEquals(r.stderr.split("\n").length, 2);
});
