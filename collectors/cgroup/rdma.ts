// The rdma sub-collector (--collector.rdma.stats): system-wide port counters from sysfs infiniband
// devices, and per-unit QP/CQ/MR counts from `rdma resource show qp|cq|mr` matched to unit PIDs.

import type { Logger } from "../../common/log.ts";
import type { SecurityManager } from "../../privilege/security.ts";
import type { MetricSink } from "../collector.ts";
import { findOnPath, runTool } from "../gpu/devices.ts";
import type { Unit } from "./discovery.ts";
import { readOptional } from "./fsread.ts";

const portCounters: [string, string, number][] = [
  ["port_rcv_data", "ceems_rdma_port_data_received_bytes_total", 4],
  ["port_xmit_data", "ceems_rdma_port_data_transmitted_bytes_total", 4],
  ["port_rcv_packets", "ceems_rdma_port_packets_received_total", 1],
  ["port_xmit_packets", "ceems_rdma_port_packets_transmitted_total", 1],
  ["port_rcv_constraint_errors", "ceems_rdma_port_constraint_errors_received_total", 1],
  ["port_xmit_constraint_errors", "ceems_rdma_port_constraint_errors_transmitted_total", 1],
  ["port_rcv_discards", "ceems_rdma_port_discards_received_total", 1],
  ["port_xmit_discards", "ceems_rdma_port_discards_transmitted_total", 1],
  ["port_rcv_errors", "ceems_rdma_port_errors_received_total", 1],
];

/** Per-unit RDMA resource usage, keyed by "device\0port". */
export interface RdmaUsage {
  qps: Map<string, number>;
  cqs: Map<string, number>;
  cqe: Map<string, number>;
  mrs: Map<string, number>;
  mrLen: Map<string, number>;
}

function add(m: Map<string, number>, k: string, v: number) {
  m.set(k, (m.get(k) ?? 0) + v);
}

/** Parses `rdma resource show qp|cq|mr` lines into usage per PID. */
export function parseRdmaResources(qp: string, cq: string, mr: string): Map<number, RdmaUsage> {
  const out = new Map<number, RdmaUsage>();
  const usage = (pid: number) => {
    let u = out.get(pid);
    if (!u) {
      u = { qps: new Map(), cqs: new Map(), cqe: new Map(), mrs: new Map(), mrLen: new Map() };
      out.set(pid, u);
    }
    return u;
  };
  const field = (line: string, k: string) => new RegExp(`(?:^|\\s)${k}\\s+(\\S+)`).exec(line)?.[1];
  for (const line of qp.split("\n")) {
    const link = /^link\s+([^/\s]+)\/(\S+)/.exec(line);
    const pid = field(line, "pid");
    if (!link || !pid) continue;
    add(usage(Number(pid)).qps, `${link[1]}\u0000${link[2]}`, 1);
  }
  for (const line of cq.split("\n")) {
    const dev = field(line, "dev");
    const pid = field(line, "pid");
    if (!dev || !pid) continue;
    const u = usage(Number(pid));
    add(u.cqs, `${dev}\u0000`, 1);
    add(u.cqe, `${dev}\u0000`, Number(field(line, "cqe") ?? 0));
  }
  for (const line of mr.split("\n")) {
    const dev = field(line, "dev");
    const pid = field(line, "pid");
    if (!dev || !pid) continue;
    const u = usage(Number(pid));
    add(u.mrs, `${dev}\u0000`, 1);
    add(u.mrLen, `${dev}\u0000`, Number(field(line, "mrlen") ?? 0));
  }
  return out;
}

/** The rdma sub-collector of one manager. */
export class RdmaSubCollector {
  readonly #cmd: string;
  constructor(
    private sysfs: string,
    private manager: string,
    private hostname: string,
    private security: SecurityManager,
    private logger: Logger,
    cmd: string,
  ) {
    this.#cmd = cmd || findOnPath("rdma");
    if (!this.#cmd) logger.warn("rdma command not found; per-unit RDMA resource metrics disabled");
  }

  /** Emits port counters and per-unit resources. */
  async update(units: Unit[], sink: MetricSink): Promise<void> {
    this.#ports(sink);
    if (!this.#cmd) return;
    const run = (what: string) => runTool(this.security, [this.#cmd, "resource", "show", what], 10_000);
    const [qp, cq, mr] = [await run("qp"), await run("cq"), await run("mr")];
    const byPid = parseRdmaResources(qp, cq, mr);
    for (const u of units) {
      const total: RdmaUsage = { qps: new Map(), cqs: new Map(), cqe: new Map(), mrs: new Map(), mrLen: new Map() };
      for (const pid of new Set(u.pids)) {
        const p = byPid.get(pid);
        if (!p) continue;
        for (const k of Object.keys(total) as (keyof RdmaUsage)[]) {
          for (const [dk, v] of p[k]) add(total[k], dk, v);
        }
      }
      const emit = (m: Map<string, number>, name: string, help: string) => {
        for (const [k, v] of m) {
          const [device, port] = k.split("\u0000");
          sink.gauge(name, help, { manager: this.manager, hostname: this.hostname, device, port, uuid: u.uuid }, v);
        }
      };
      emit(total.qps, "ceems_rdma_qps_active", "Number of active Queue Pairs (QPs)");
      emit(total.cqs, "ceems_rdma_cqs_active", "Number of active Completion Queues (CQs)");
      emit(total.cqe, "ceems_rdma_cqe_len_active", "Length of active CQs");
      emit(total.mrs, "ceems_rdma_mrs_active", "Number of active Memory Regions (MRs)");
      emit(total.mrLen, "ceems_rdma_mrs_len_active", "Length of active MRs");
    }
  }

  #ports(sink: MetricSink) {
    const base = `${this.sysfs}/class/infiniband`;
    let devs: string[];
    try {
      devs = [...Deno.readDirSync(base)].map((e) => e.name).sort();
    } catch {
      return;
    }
    for (const device of devs) {
      let ports: string[];
      try {
        ports = [...Deno.readDirSync(`${base}/${device}/ports`)].map((e) => e.name).sort();
      } catch {
        continue;
      }
      for (const port of ports) {
        const dir = `${base}/${device}/ports/${port}`;
        const labels = { manager: this.manager, hostname: this.hostname, device, port };
        const state = /^(\d+):/.exec(readOptional(`${dir}/state`) ?? "");
        if (state) sink.gauge("ceems_rdma_state_id", "State of the InfiniBand port", labels, Number(state[1]));
        for (const [file, name, mult] of portCounters) {
          const t = readOptional(`${dir}/counters/${file}`)?.trim();
          if (!t || !/^\d+$/.test(t)) continue;
          const v = Number(t) * mult;
          if (v > 0) sink.counter(name, "RDMA port counter", labels, v);
        }
      }
    }
  }
}
