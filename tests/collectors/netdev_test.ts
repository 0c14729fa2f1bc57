// Tests of the netdev collector: /proc/net/dev parsing, the include/exclude regexes and their mutual
// exclusion, and a truncated file.

import { parseNetDev } from "../../collectors/netdev.ts";
import { assertEquals, assertMatch, assertRejects, assertThrows } from "../helpers/assert.ts";
import { makeCollector, samples, scrape } from "../helpers/collector_harness.ts";
import { withTempDir, writeTree } from "../helpers/tree.ts";

const netDev = `Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo:  5000      50    0    0    0     0          0         0     5000      50    0    0    0     0       0          0
  ens3: 123456   789    1    2    3     4          5         6   654321    987    7    8    9    10      11         12
  ib0:      1       1    0    0    0     0          0         0        1      1    0    0    0     0       0          0
`;

Deno.test("netdev: parses the 16 counters of each interface", () => {
  const m = parseNetDev(netDev);
  assertEquals([...m.keys()], ["lo", "ens3", "ib0"]);
  assertEquals(m.get("ens3"), [123456, 789, 1, 2, 3, 4, 5, 6, 654321, 987, 7, 8, 9, 10, 11, 12]);
  assertThrows(() => parseNetDev("garbage\n"), /missing header/);
  assertThrows(() => parseNetDev(netDev.slice(0, netDev.indexOf("ens3:") + 20)), /malformed counters for ens3/);
});

Deno.test("netdev: include and exclude regexes select devices; counters carry hostname and device", async () => {
  await withTempDir(async (proc) => {
    writeTree(proc, { "net/dev": netDev });
    const inc = await makeCollector("netdev", ["--collector.netdev.device-include=^(ens|ib)"], {
      paths: { procfs: proc },
    });
    let r = await scrape({ netdev: inc });
    assertEquals(
      samples(r.sink, "ceems_netdev_transmit_colls_total"),
      new Map([['{device="ens3",hostname="host1"}', 10], ['{device="ib0",hostname="host1"}', 0]]),
    );
    assertEquals(samples(r.sink, "ceems_netdev_receive_multicast_total").get('{device="ens3",hostname="host1"}'), 6);
    assertEquals(r.sink.families.get("ceems_netdev_receive_bytes_total")!.type, "counter");
    const exc = await makeCollector("netdev", ["--collector.netdev.device-exclude=^lo$"], { paths: { procfs: proc } });
    r = await scrape({ netdev: exc });
    assertEquals(
      [...samples(r.sink, "ceems_netdev_receive_bytes_total").keys()],
      ['{device="ens3",hostname="host1"}', '{device="ib0",hostname="host1"}'],
    );
  });
});

Deno.test("netdev: include and exclude together, or a bad regex, stop start-up naming the flag", async () => {
  await assertRejects(
    () => makeCollector("netdev", ["--collector.netdev.device-include=a", "--collector.netdev.device-exclude=b"]),
    /mutually exclusive/,
  );
  await assertRejects(
    () => makeCollector("netdev", ["--collector.netdev.device-include=(eth"]),
    /--collector.netdev.device-include: invalid regular expression/,
  );
});

Deno.test("netdev: a truncated /proc/net/dev fails netdev for the scrape with one log line", async () => {
  await withTempDir(async (proc) => {
    writeTree(proc, { "net/dev": netDev.slice(0, netDev.indexOf("ens3:") + 30) });
    const c = await makeCollector("netdev", [], { paths: { procfs: proc } });
    const log: string[] = [];
    const { success } = await scrape({ netdev: c }, log);
    assertEquals(success.netdev, 0);
    const errors = log.filter((l) => l.includes("level=error"));
    assertEquals(errors.length, 1);
    assertMatch(errors[0], /malformed counters for ens3/);
  });
});
