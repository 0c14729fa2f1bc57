// The rdma sub-collector (--collector.rdma.stats): system-wide port counters from sysfs infiniband devices,
// per-unit QP/CQ/MR counts from `rdma resource show`, and per-unit QP hardware counters of Mellanox links.

import type { FlagSet } from "../../common/flags.ts";
import type { Logger } from "../../common/log.ts";
import type { DeclaredContext, SecurityNeeds } from "../../privilege/declare.ts";
import { commandOutput } from "../../privilege/command.ts";
import type { SecurityContext, SecurityManager } from "../../privilege/security.ts";
import { checkRootTool, findTool } from "../../privilege/tools.ts";
import type { Labels, MetricSink } from "../framework/collector.ts";
import type { ComputeUnit } from "./subcollector.ts";
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

/**
 * The QP hardware counters of `rdma statistic qp show` reported per unit, with their HELP texts. Each is
 * the counter `ceems_rdma_<name>` (no `_total` suffix: CEEMS's names).
 */
export const qpHwCounters: readonly (readonly [string, string])[] = [
  ["rx_write_requests", "Number of received write requests for the associated QPs"],
  ["rx_read_requests", "Number of received read requests for the associated QPs"],
  ["rx_atomic_requests", "Number of received atomic request for the associated QPs"],
  ["req_cqe_error", "Number of times requester detected CQEs completed with errors"],
  ["req_cqe_flush_error", "Number of times requester detected CQEs completed with flushed errors"],
  ["req_remote_access_errors", "Number of times requester detected remote access errors"],
  ["req_remote_invalid_request", "Number of times requester detected remote invalid request errors"],
  ["resp_cqe_error", "Number of times responder detected CQEs completed with errors"],
  ["resp_cqe_flush_error", "Number of times responder detected CQEs completed with flushed errors"],
  ["resp_local_length_error", "Number of times responder detected local length errors"],
  ["resp_remote_access_errors", "Number of times responder detected remote access errors"],
];

/** Per-PID QP counters exist only on Mellanox (mlx4/mlx5) devices: CEEMS considers only these. */
export function supportsPerPidQpCounters(device: string): boolean {
  return device.startsWith("mlx");
}

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

function field(line: string, k: string): string | undefined {
  return new RegExp(`(?:^|\\s)${k}\\s+(\\S+)`).exec(line)?.[1];
}

/** `link <device>/<port> …` at the start of a line. */
const linkLine = /^link\s+([^/\s]+)\/(\S+)/;

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
  for (const line of qp.split("\n")) {
    const link = linkLine.exec(line);
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

/**
 * Parses `rdma statistic qp mode` into the per-PID counter state of each Mellanox link (`mlx5_0/1` →
 * whether an auto mode is on): a line `link <dev>/<port> … auto <criteria|off>`. Other devices and lines
 * without an auto mode are left out, so output of another subcommand yields an empty map.
 */
export function parseQpModes(text: string): Map<string, boolean> {
  const out = new Map<string, boolean>();
  for (const line of text.split("\n")) {
    const link = linkLine.exec(line);
    if (!link || !supportsPerPidQpCounters(link[1])) continue;
    const mode = /\sauto\s+([a-z,]+)/.exec(line)?.[1];
    if (mode === undefined) continue;
    out.set(`${link[1]}/${link[2]}`, mode !== "off");
  }
  return out;
}

/** QP hardware counters per PID, then per "device\0port", then per counter name. */
export type QpCountersByPid = Map<number, Map<string, Map<string, number>>>;

/**
 * Parses `rdma statistic qp show` (one `link <dev>/<port> cntn N qp-type T pid P comm C <counter> <value>…`
 * line per counter, each followed by an indented `LQPN: <…>` line). Counters of one PID on one link add up;
 * lines of non-Mellanox devices and without a pid are skipped. Throws on any other line or a non-numeric value.
 */
export function parseQpStatistics(text: string): QpCountersByPid {
  const out: QpCountersByPid = new Map();
  text.split("\n").forEach((line, i) => {
    if (line.trim() === "" || /^\s/.test(line)) return; // blank, or the indented LQPN list
    const link = linkLine.exec(line);
    if (!link) throw new Error(`unexpected line ${i + 1}: ${JSON.stringify(line.slice(0, 80))}`);
    const pidText = field(line, "pid");
    if (!supportsPerPidQpCounters(link[1]) || pidText === undefined) return;
    if (!/^\d+$/.test(pidText)) throw new Error(`line ${i + 1}: pid ${JSON.stringify(pidText)} is not a number`);
    const pid = Number(pidText);
    const key = `${link[1]}\u0000${link[2]}`;
    let byLink = out.get(pid);
    if (!byLink) out.set(pid, byLink = new Map());
    let counters = byLink.get(key);
    if (!counters) byLink.set(key, counters = new Map());
    for (const [name] of qpHwCounters) {
      const v = field(line, name);
      if (v === undefined) continue;
      if (!/^\d+$/.test(v)) throw new Error(`line ${i + 1}: ${name} ${JSON.stringify(v)} is not a number`);
      add(counters, name, Number(v));
    }
  });
  return out;
}

/** Per-PID QP counter state of one Mellanox link. */
interface LinkState {
  /** An auto mode is on (found so at start-up, or turned on by us). */
  on: boolean;
  /** We turned it on, so we turn it off at stop. */
  ours: boolean;
  /** A failure to turn it on was logged (retries stay quiet until one succeeds). */
  warned: boolean;
}

/** How long one rdma command may run. */
const toolTimeoutMs = 10_000;

/**
 * Context of the commands run as root (CEEMS's rdma_exec_cmd): cap_setuid+cap_setgid for the switch, and
 * cap_net_admin, which the kernel asks of `rdma statistic qp set`; a root child holds at most these.
 */
export const RDMA_ROOT_CONTEXT: DeclaredContext = {
  name: "rdma_exec_cmd",
  caps: ["cap_setuid", "cap_setgid", "cap_net_admin"],
  flag: "collector.rdma.stats",
  reason: "runs `rdma statistic qp set` as root (cap_net_admin for the kernel): per-PID QP counters of " +
    "Mellanox links on, and back off at exit",
  uses: ["exec-root"],
};

/** The --collector.rdma.* flags: on or off, and the rdma command resolved once ("" when there is none). */
export interface RdmaOptions {
  stats: boolean;
  cmd: string;
}

/**
 * Reads the --collector.rdma.* flags; with stats on, resolves the command (--collector.rdma.cmd, else `rdma`
 * in the system directories) and refuses one that anyone but root could replace, since it runs as root.
 */
export function rdmaOptions(f: FlagSet): RdmaOptions {
  const stats = f.has("collector.rdma.stats") && f.bool("collector.rdma.stats");
  if (!stats) return { stats, cmd: "" };
  const cmd = findTool(f.string("collector.rdma.cmd") || "rdma") ?? "";
  if (cmd) {
    try {
      checkRootTool(cmd);
    } catch (e) {
      throw new Error(`--collector.rdma.cmd: ${(e as Error).message}`);
    }
  }
  return { stats, cmd };
}

/** What rdma declares: its root context and command, when it is on and has a command. */
export function rdmaSecurity(o: RdmaOptions): SecurityNeeds {
  if (!o.stats || !o.cmd) return {};
  return { contexts: [RDMA_ROOT_CONTEXT], commands: [{ flag: "collector.rdma.cmd", path: o.cmd, asRoot: true }] };
}
/** Context of the commands run as the exporter's user. */
const RDMA_USER_CONTEXT: SecurityContext = { name: "rdma", caps: [] };

/**
 * The rdma sub-collector of one manager. `init()` reads the per-PID QP counter mode of the Mellanox links
 * and turns it on (`auto type,pid on`, run as root) where it is off; links still off are retried each
 * scrape, and `stop()` turns off only the links it turned on.
 */
export class RdmaSubCollector {
  readonly #cmd: string;
  readonly #links = new Map<string, LinkState>();

  /** `cmd` is the rdma command resolved at start-up (rdmaOptions), "" when there is none. */
  constructor(
    private sysfs: string,
    private security: SecurityManager,
    private logger: Logger,
    cmd: string,
  ) {
    this.#cmd = cmd;
    if (!this.#cmd) logger.warn("rdma command not found; per-unit RDMA resource metrics disabled");
  }

  /** Links with per-PID QP counters known, and whether they are on (tests and diagnostics). */
  get qpModes(): Map<string, boolean> {
    return new Map([...this.#links].map(([l, s]) => [l, s.on]));
  }

  /** Reads the QP counter modes and turns per-PID counters on where they are off; never throws. */
  async init(): Promise<void> {
    if (!this.#cmd) return;
    const [text] = await this.#exec([[this.#cmd, "statistic", "qp", "mode"]], false);
    if (text instanceof Error) {
      this.logger.warn("per-PID QP counters disabled: cannot read the QP counter mode", { err: text.message });
      return;
    }
    const modes = parseQpModes(text);
    if (modes.size === 0) {
      this.logger.info("per-PID QP counters disabled: no Mellanox link reports a QP counter mode");
      return;
    }
    for (const [link, on] of modes) this.#links.set(link, { on, ours: false, warned: false });
    await this.#enable();
  }

  /**
   * Runs commands, as root in CEEMS's rdma_exec_cmd context (one after the other, each on its own Worker)
   * or as the exporter's user (concurrently); one stdout or Error per command, never throws.
   */
  async #exec(cmds: string[][], asRoot: boolean): Promise<(string | Error)[]> {
    const context = asRoot ? RDMA_ROOT_CONTEXT : RDMA_USER_CONTEXT;
    const run = (cmd: string[]) =>
      commandOutput(this.security, context, { cmd, timeoutMs: toolTimeoutMs }, { asRoot }).catch((e) => e as Error);
    if (!asRoot) return await Promise.all(cmds.map(run));
    const out: (string | Error)[] = [];
    for (const cmd of cmds) out.push(await run(cmd));
    return out;
  }

  /** Sets `auto type,pid on` (enable) or `auto off` on each link as root; the error of each that failed. */
  async #setMode(links: string[], enable: boolean): Promise<Map<string, Error>> {
    const mode = enable ? ["type,pid", "on"] : ["off"];
    const cmds = links.map((l) => [this.#cmd, "statistic", "qp", "set", "link", l, "auto", ...mode]);
    const out = await this.#exec(cmds, true);
    return new Map(links.flatMap((l, i) => out[i] instanceof Error ? [[l, out[i] as Error]] : []));
  }

  /** Turns per-PID counters on for the links still off; logs the first failure of each link. */
  async #enable(): Promise<void> {
    const off = [...this.#links].filter(([, s]) => !s.on).map(([l]) => l);
    const failed = await this.#setMode(off, true);
    for (const link of off) {
      const st = this.#links.get(link)!;
      const err = failed.get(link);
      if (!err) {
        Object.assign(st, { on: true, ours: true, warned: false });
        this.logger.info("per-PID QP counters enabled", { link });
      } else if (!st.warned) {
        st.warned = true;
        // A link in use by a process cannot switch: CEEMS retries every scrape, so do we.
        this.logger.warn("cannot enable per-PID QP counters; retrying each scrape", { link, err: err.message });
      }
    }
  }

  /**
   * Emits port counters, per-unit resources and per-unit QP hardware counters. Never throws: a failing
   * tool or unparsable output is logged in one line and reported as false, the other metrics stay.
   */
  async update(units: ComputeUnit[], sink: MetricSink, labels: Labels): Promise<boolean> {
    this.#ports(sink, labels);
    if (!this.#cmd) return true;
    await this.#enable();
    const withQpStats = [...this.#links.values()].some((s) => s.on);
    const cmds = ["qp", "cq", "mr"].map((w) => [this.#cmd, "resource", "show", w]);
    if (withQpStats) cmds.push([this.#cmd, "statistic", "qp", "show"]);
    const out = await this.#exec(cmds, false);
    const failures = out.filter((o) => o instanceof Error).map((e) => e.message);
    const text = (i: number) => typeof out[i] === "string" ? out[i] as string : "";
    const byPid = parseRdmaResources(text(0), text(1), text(2));
    let qpStats: QpCountersByPid = new Map();
    if (withQpStats && typeof out[3] === "string") {
      try {
        qpStats = parseQpStatistics(out[3]);
      } catch (e) {
        failures.push(`rdma statistic qp show: ${(e as Error).message}`);
      }
    }
    for (const u of units) this.#emitUnit(u, byPid, qpStats, sink, labels);
    if (failures.length === 0) return true;
    this.logger.error("sub-collector scrape failed", { err: failures.join("; ") });
    return false;
  }

  #emitUnit(u: ComputeUnit, byPid: Map<number, RdmaUsage>, qpStats: QpCountersByPid, sink: MetricSink, l: Labels) {
    const total: RdmaUsage = { qps: new Map(), cqs: new Map(), cqe: new Map(), mrs: new Map(), mrLen: new Map() };
    const hw = new Map<string, Map<string, number>>();
    for (const pid of new Set(u.pids)) {
      const p = byPid.get(pid);
      if (p) {
        for (const k of Object.keys(total) as (keyof RdmaUsage)[]) {
          for (const [dk, v] of p[k]) add(total[k], dk, v);
        }
      }
      for (const [link, counters] of qpStats.get(pid) ?? []) {
        let sum = hw.get(link);
        if (!sum) hw.set(link, sum = new Map());
        for (const [name, v] of counters) add(sum, name, v);
      }
    }
    const labelsOf = (k: string) => {
      const [device, port] = k.split("\u0000");
      return { manager: l.manager, hostname: l.hostname, device, port, uuid: u.uuid };
    };
    const emit = (m: Map<string, number>, name: string, help: string) => {
      for (const [k, v] of m) sink.gauge(name, help, labelsOf(k), v);
    };
    emit(total.qps, "ceems_rdma_qps_active", "Number of active Queue Pairs (QPs)");
    emit(total.cqs, "ceems_rdma_cqs_active", "Number of active Completion Queues (CQs)");
    emit(total.cqe, "ceems_rdma_cqe_len_active", "Length of active CQs");
    emit(total.mrs, "ceems_rdma_mrs_active", "Number of active Memory Regions (MRs)");
    emit(total.mrLen, "ceems_rdma_mrs_len_active", "Length of active MRs");
    for (const [link, sums] of hw) {
      for (const [name, help] of qpHwCounters) {
        const v = sums.get(name) ?? 0;
        // As CEEMS: only counters that moved are reported.
        if (v > 0) sink.counter(`ceems_rdma_${name}`, help, labelsOf(link), v);
      }
    }
  }

  /** Turns off the per-PID counters this collector turned on (those already on at start-up stay on). */
  async stop(): Promise<void> {
    const ours = [...this.#links].filter(([, s]) => s.ours && s.on).map(([l]) => l);
    const failed = await this.#setMode(ours, false);
    for (const link of ours) {
      const err = failed.get(link);
      if (err) {
        this.logger.warn("cannot disable per-PID QP counters", { link, err: err.message });
        continue;
      }
      Object.assign(this.#links.get(link)!, { on: false, ours: false });
      this.logger.debug("per-PID QP counters disabled", { link });
    }
  }

  #ports(sink: MetricSink, l: Labels) {
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
        const labels = { manager: l.manager, hostname: l.hostname, device, port };
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
