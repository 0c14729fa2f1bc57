// The collector contract: a named unit of metric collection with its own flags read once into typed
// options, a default on/off state, its privilege declarations, and an update() writing into a MetricSink.

import type { FlagSet } from "../../common/flags.ts";
import type { Logger } from "../../common/log.ts";
import type { SecurityNeeds } from "../../privilege/declare.ts";
import type { SecurityManager } from "../../privilege/security.ts";

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

/** What a collector gets at construction (its options come separately, typed). */
export interface CollectorContext {
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

/** Registration entry of a collector with options of type O. */
export interface CollectorDef<O = unknown> {
  name: string;
  /** Whether `--collector.<name>` is on without being given. */
  defaultEnabled: boolean;
  help?: string;
  /** Declares the collector's own flags. */
  registerFlags?(flags: FlagSet): void;
  /**
   * Reads the collector's flags, once, into its typed options (the only place they are read; commands are
   * resolved to absolute paths here, at start-up). Throwing stops start-up with the message.
   */
  options?(flags: FlagSet): O;
  /**
   * What the collector declares with these options: its security contexts, the paths it reads or loads code
   * from after the drop, its commands (privilege/declare.ts). privilege/ gathers these, nothing else.
   */
  security?(opts: O): SecurityNeeds;
  /** Builds the collector; throwing stops start-up with the message. */
  create(ctx: CollectorContext, opts: O): Collector | Promise<Collector>;
}

/** Thrown by a collector that has nothing to report this scrape (success 0, logged at debug). */
export class NoDataError extends Error {
  constructor(message = "no data") {
    super(message);
    this.name = "NoDataError";
  }
}
