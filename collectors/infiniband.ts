// The `infiniband` collector: InfiniBand HCA info, port state, rate and port counters from
// /sys/class/infiniband as ceems_infiniband_* metrics (labels device and port, no hostname, as CEEMS).

import { join } from "../common/path.ts";
import { type Collector, type CollectorContext, type MetricSink, NoDataError } from "./framework/collector.ts";
import { registerCollector } from "./framework/registry.ts";

/** counters/<file> → metric name (without `ceems_infiniband_`), and whether the value counts 4-byte words. */
const portCounters: [string, string, boolean][] = [
  ["excessive_buffer_overrun_errors", "excessive_buffer_overrun_errors_total", false],
  ["link_downed", "link_downed_total", false],
  ["link_error_recovery", "link_error_recovery_total", false],
  ["local_link_integrity_errors", "local_link_integrity_errors_total", false],
  ["multicast_rcv_packets", "multicast_packets_received_total", false],
  ["multicast_xmit_packets", "multicast_packets_transmitted_total", false],
  ["port_rcv_constraint_errors", "port_constraint_errors_received_total", false],
  ["port_xmit_constraint_errors", "port_constraint_errors_transmitted_total", false],
  ["port_rcv_data", "port_data_received_bytes_total", true],
  ["port_xmit_data", "port_data_transmitted_bytes_total", true],
  ["port_rcv_discards", "port_discards_received_total", false],
  ["port_xmit_discards", "port_discards_transmitted_total", false],
  ["port_rcv_errors", "port_errors_received_total", false],
  ["port_rcv_packets", "port_packets_received_total", false],
  ["port_xmit_packets", "port_packets_transmitted_total", false],
  ["port_rcv_remote_physical_errors", "port_receive_remote_physical_errors_total", false],
  ["port_rcv_switch_relay_errors", "port_receive_switch_relay_errors_total", false],
  ["port_xmit_wait", "port_transmit_wait_total", false],
  ["symbol_error", "symbol_error_total", false],
  ["unicast_rcv_packets", "unicast_packets_received_total", false],
  ["unicast_xmit_packets", "unicast_packets_transmitted_total", false],
  ["VL15_dropped", "vl15_dropped_total", false],
];

/** counters_ext/<file> (64-bit legacy counters) → metric name. */
const legacyCounters: [string, string, boolean][] = [
  ["port_multicast_rcv_packets", "legacy_multicast_packets_received_total", false],
  ["port_multicast_xmit_packets", "legacy_multicast_packets_transmitted_total", false],
  ["port_rcv_data_64", "legacy_data_received_bytes_total", true],
  ["port_rcv_packets_64", "legacy_packets_received_total", false],
  ["port_unicast_rcv_packets", "legacy_unicast_packets_received_total", false],
  ["port_unicast_xmit_packets", "legacy_unicast_packets_transmitted_total", false],
  ["port_xmit_data_64", "legacy_data_transmitted_bytes_total", true],
  ["port_xmit_packets_64", "legacy_packets_transmitted_total", false],
];

function readTrim(path: string): string | undefined {
  try {
    return Deno.readTextFileSync(path).trim();
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return undefined;
    throw e;
  }
}

/** Parses `4: ACTIVE` into 4. */
export function parseStateId(text: string, file: string): number {
  const m = /^(\d+):/.exec(text.trim());
  if (!m) throw new Error(`${file}: malformed state ${JSON.stringify(text.slice(0, 40))}`);
  return Number(m[1]);
}

/** Parses `40 Gb/sec (4X QDR)` into bytes per second. */
export function parseRate(text: string, file: string): number {
  const m = /^(\d+(?:\.\d+)?) Gb\/sec/.exec(text.trim());
  if (!m) throw new Error(`${file}: malformed rate ${JSON.stringify(text.slice(0, 40))}`);
  return Math.round(parseFloat(m[1]) * 125_000_000);
}

/** Parses a counter; `N/A (no PMA)` means absent. */
export function parseCounter(text: string, file: string): number | undefined {
  if (text.startsWith("N/A")) return undefined;
  if (!/^\d+$/.test(text)) throw new Error(`${file}: malformed counter ${JSON.stringify(text.slice(0, 40))}`);
  return Number(text);
}

function listDir(path: string): string[] {
  return [...Deno.readDirSync(path)].map((e) => e.name).sort();
}

class InfinibandCollector implements Collector {
  constructor(private sysfs: string) {}

  update(sink: MetricSink): void {
    const root = join(this.sysfs, "class", "infiniband");
    let devices: string[];
    try {
      devices = listDir(root);
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) throw new NoDataError("no /sys/class/infiniband");
      throw e;
    }
    if (devices.length === 0) throw new NoDataError("no InfiniBand devices");
    const errors: string[] = [];
    for (const device of devices) {
      try {
        this.#device(sink, join(root, device), device);
      } catch (e) {
        errors.push((e as Error).message);
      }
    }
    if (errors.length) throw new Error(errors.join("; "));
  }

  #device(sink: MetricSink, dir: string, device: string) {
    sink.gauge(
      "ceems_infiniband_info",
      "Non-numeric data from /sys/class/infiniband/<device>, value is always 1.",
      {
        device,
        board_id: readTrim(join(dir, "board_id")) ?? "",
        firmware_version: readTrim(join(dir, "fw_ver")) ?? "",
        hca_type: readTrim(join(dir, "hca_type")) ?? "",
      },
      1,
    );
    let ports: string[];
    try {
      ports = listDir(join(dir, "ports"));
    } catch {
      return;
    }
    for (const port of ports) {
      const pdir = join(dir, "ports", port);
      const labels = { device, port };
      const state = readTrim(join(pdir, "state"));
      if (state !== undefined) {
        sink.gauge(
          "ceems_infiniband_state_id",
          "State of the InfiniBand port (0: no change, 1: down, 2: init, 3: armed, 4: active, 5: act defer)",
          labels,
          parseStateId(state, join(pdir, "state")),
        );
      }
      const phys = readTrim(join(pdir, "phys_state"));
      if (phys !== undefined) {
        sink.gauge(
          "ceems_infiniband_physical_state_id",
          "Physical state of the InfiniBand port (0: no change, 1: sleep, 2: polling, 3: disable, 4: shift, 5: link up, 6: link error recover, 7: phytest)",
          labels,
          parseStateId(phys, join(pdir, "phys_state")),
        );
      }
      const rate = readTrim(join(pdir, "rate"));
      if (rate !== undefined) {
        sink.gauge(
          "ceems_infiniband_rate_bytes_per_second",
          "Maximum signal transfer rate",
          labels,
          parseRate(rate, join(pdir, "rate")),
        );
      }
      this.#counters(sink, join(pdir, "counters"), portCounters, labels);
      this.#counters(sink, join(pdir, "counters_ext"), legacyCounters, labels);
    }
  }

  #counters(sink: MetricSink, dir: string, table: [string, string, boolean][], labels: Record<string, string>) {
    for (const [file, metric, words] of table) {
      const text = readTrim(join(dir, file));
      if (text === undefined) continue;
      const v = parseCounter(text, join(dir, file));
      if (v === undefined) continue;
      sink.counter(`ceems_infiniband_${metric}`, `Infiniband counter ${file}`, labels, words ? v * 4 : v);
    }
  }
}

registerCollector({
  name: "infiniband",
  defaultEnabled: false,
  help: "InfiniBand port counters",
  create: (ctx: CollectorContext) => new InfinibandCollector(ctx.paths.sysfs),
});
