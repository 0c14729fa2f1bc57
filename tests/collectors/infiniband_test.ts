// Tests of the infiniband collector: info labels, port state/rate parsing, counters (data counters in
// 4-byte words, N/A counters left out, legacy counters_ext) and malformed files.

import { parseRate, parseStateId } from "../../collectors/infiniband.ts";
import { assertEquals, assertMatch } from "../helpers/assert.ts";
import { makeCollector, samples, scrape } from "../helpers/collector_harness.ts";
import { withTempDir, writeTree } from "../helpers/tree.ts";

function ibTree(sys: string) {
  const d = "class/infiniband";
  writeTree(sys, {
    [`${d}/mlx5_1/board_id`]: "MT_0000000012\n",
    [`${d}/mlx5_1/fw_ver`]: "20.31.1014\n",
    [`${d}/mlx5_1/hca_type`]: "MT4123\n",
    [`${d}/mlx5_1/ports/1/state`]: "4: ACTIVE\n",
    [`${d}/mlx5_1/ports/1/phys_state`]: "5: LinkUp\n",
    [`${d}/mlx5_1/ports/1/rate`]: "200 Gb/sec (4X HDR)\n",
    [`${d}/mlx5_1/ports/1/counters/port_rcv_data`]: "1000\n",
    [`${d}/mlx5_1/ports/1/counters/port_xmit_packets`]: "77\n",
    [`${d}/mlx5_1/ports/1/counters/VL15_dropped`]: "0\n",
    [`${d}/mlx5_1/ports/1/counters/symbol_error`]: "N/A (no PMA)\n",
    [`${d}/mlx5_1/ports/1/counters_ext/port_xmit_data_64`]: "50\n",
    [`${d}/qib0/board_id`]: "InfiniPath_QLE7340\n",
    [`${d}/qib0/fw_ver`]: "\n",
  });
}

Deno.test("infiniband: state and rate parsing", () => {
  assertEquals(parseStateId("4: ACTIVE", "f"), 4);
  assertEquals(parseRate("40 Gb/sec (4X QDR)", "f"), 5e9);
  assertEquals(parseRate("2.5 Gb/sec (1X SDR)", "f"), 312_500_000);
});

Deno.test("infiniband: info, port gauges and counters with device and port labels", async () => {
  await withTempDir(async (sys) => {
    ibTree(sys);
    const c = await makeCollector("infiniband", [], { paths: { sysfs: sys } });
    const { sink, success } = await scrape({ infiniband: c });
    assertEquals(success.infiniband, 1);
    assertEquals(
      samples(sink, "ceems_infiniband_info"),
      new Map([
        ['{board_id="MT_0000000012",device="mlx5_1",firmware_version="20.31.1014",hca_type="MT4123"}', 1],
        ['{board_id="InfiniPath_QLE7340",device="qib0",firmware_version="",hca_type=""}', 1],
      ]),
    );
    const port = '{device="mlx5_1",port="1"}';
    assertEquals(samples(sink, "ceems_infiniband_state_id"), new Map([[port, 4]]));
    assertEquals(samples(sink, "ceems_infiniband_physical_state_id"), new Map([[port, 5]]));
    assertEquals(samples(sink, "ceems_infiniband_rate_bytes_per_second"), new Map([[port, 25e9]]));
    assertEquals(samples(sink, "ceems_infiniband_port_data_received_bytes_total"), new Map([[port, 4000]]));
    assertEquals(samples(sink, "ceems_infiniband_port_packets_transmitted_total"), new Map([[port, 77]]));
    assertEquals(samples(sink, "ceems_infiniband_vl15_dropped_total"), new Map([[port, 0]]));
    assertEquals(samples(sink, "ceems_infiniband_legacy_data_transmitted_bytes_total"), new Map([[port, 200]]));
    assertEquals(sink.families.has("ceems_infiniband_symbol_error_total"), false);
    assertEquals(sink.families.get("ceems_infiniband_port_packets_transmitted_total")!.type, "counter");
  });
});

Deno.test("infiniband: a malformed state file fails the collector with one log line", async () => {
  await withTempDir(async (sys) => {
    ibTree(sys);
    Deno.writeTextFileSync(`${sys}/class/infiniband/mlx5_1/ports/1/state`, "ACTI");
    const c = await makeCollector("infiniband", [], { paths: { sysfs: sys } });
    const log: string[] = [];
    const { success } = await scrape({ infiniband: c }, log);
    assertEquals(success.infiniband, 0);
    const errors = log.filter((l) => l.includes("level=error"));
    assertEquals(errors.length, 1);
    assertMatch(errors[0], /ports\/1\/state: malformed state/);
  });
});
