// The collector contract: a named unit of metric collection with its own flags, a default on/off
// state, the Linux capabilities it needs, and an update() that writes samples into a MetricSink.

import type { FlagSet } from "../common/flags.ts";
import type { Logger } from "../common/log.ts";
import type { Capability, SecurityManager } from "../privilege/security.ts";

/** Label names to values of one sample. */
export type Labels = Record<string, string>;

/** Where collectors write the samples of one scrape. */
export interface MetricSink {
  /** Adds a gauge sample. */
  gauge(name: string, help: string, labels: Labels, value: number): void;
  /** Adds a counter sample (the name carries its own `_total` suffix, as in CEEMS). */
  counter(name: string, help: string, labels: Labels, value: number): void;
}

/** Filesystem roots, overridable for fixture trees. */
export interface Paths {
  procfs: string;
  sysfs: string;
  cgroupfs: string;
}

/** What a collector gets at construction. */
export interface CollectorContext {
  flags: FlagSet;
  logger: Logger;
  paths: Paths;
  /** Value of the `hostname` label ("" with --collector.empty-hostname-label). */
  hostname: string;
  /** Runs privileged operations (reading other users' files, running tools as root). */
  security: SecurityManager;
}

/** A constructed collector. */
export interface Collector {
  /** Collects one scrape's samples; throws to report failure (success 0 for this scrape). */
  update(sink: MetricSink): void | Promise<void>;
  /**
   * Start-up work the exporter runs once after privileges are set up and before it serves (eBPF programs
   * load and attach here); a failure is logged and the collector keeps running.
   */
  start?(): Promise<void>;
  /** Releases resources at shutdown. */
  stop?(): void | Promise<void>;
}

/** Registration entry of a collector. */
export interface CollectorDef {
  name: string;
  /** Whether `--collector.<name>` is on without being given. */
  defaultEnabled: boolean;
  help?: string;
  /** Declares the collector's own flags. */
  registerFlags?(flags: FlagSet): void;
  /**
   * Capabilities the collector needs with these flags (look them up in privilege/capabilities.ts's
   * table with `featureCapabilities("exporter", name, flags)`); absent means none.
   */
  capabilities?(flags: FlagSet): Capability[];
  /**
   * Sub-collectors (perf, ebpf, rdma) these flags turn on inside this collector: capability-table
   * features whose rows join the exporter's required set while this collector is enabled.
   */
  subFeatures?(flags: FlagSet): string[];
  /** Files or directories the collector reads that the run-as user must reach (ACL entries when root). */
  readPaths?(flags: FlagSet): string[];
  /**
   * Files or directories the collector loads code from after the privilege drop (BPF objects, a shared
   * library): a root start refuses to run when the run-as user could replace one.
   */
  loadPaths?(flags: FlagSet): string[];
  /** Builds the collector; throwing stops start-up with the message. */
  create(ctx: CollectorContext): Collector | Promise<Collector>;
}

/** Thrown by a collector that has nothing to report this scrape (success 0, logged at debug). */
export class NoDataError extends Error {
  constructor(message = "no data") {
    super(message);
    this.name = "NoDataError";
  }
}
