// Builds one registered collector from exporter-style flags and runs scrapes through the real scrape
// runner, capturing log lines, so collector tests exercise the same paths as the exporter.

import type { Collector, Paths } from "../../collectors/framework/collector.ts";
import { exporterFlags } from "../../collectors/exporter.ts";
import type { FamilySink } from "../../collectors/framework/metric_sink.ts";
import { registeredCollectors } from "../../collectors/framework/registry.ts";
import { scrapeCollectors } from "../../collectors/framework/scrape.ts";
import { Logger } from "../../common/log.ts";
import type {
  ExecOptions,
  ExecOutcome,
  ExecRequest,
  OpResult,
  PrivilegedOp,
  SecurityContext,
  SecurityManager,
} from "../../privilege/security.ts";
import { InlineSecurityManager } from "../../privilege/security.ts";

/** A SecurityManager that runs operations and commands inline and records every call. */
export class RecordingSecurityManager implements SecurityManager {
  readonly calls: { context: SecurityContext; ops: PrivilegedOp[] }[] = [];
  /** Commands run, with how: as root or as the process. */
  readonly execs: { context: SecurityContext; req: ExecRequest; opts: ExecOptions }[] = [];
  readonly #inner = new InlineSecurityManager();
  run(context: SecurityContext, ops: PrivilegedOp[]): Promise<OpResult[]> {
    this.calls.push({ context, ops });
    return this.#inner.run(context, ops);
  }
  exec(context: SecurityContext, req: ExecRequest, opts: ExecOptions): Promise<ExecOutcome> {
    this.execs.push({ context, req, opts });
    return this.#inner.exec(context, req, opts);
  }
}

/** Log lines written by a harness logger. */
export function captureLogger(lines: string[]): Logger {
  return new Logger("debug", "logfmt", {}, (l) => lines.push(l));
}

/** Creates collector `name` with `argv` parsed as exporter flags. */
export async function makeCollector(
  name: string,
  argv: string[],
  opts: { paths?: Partial<Paths>; hostname?: string; security?: SecurityManager; logger?: Logger } = {},
): Promise<Collector> {
  const flags = exporterFlags();
  flags.parse(argv, {});
  const def = registeredCollectors().find((d) => d.name === name);
  if (!def) throw new Error(`collector ${name} not registered`);
  return await def.create({
    logger: opts.logger ?? new Logger("error", "logfmt", {}, () => {}),
    paths: { procfs: "/proc", sysfs: "/sys", cgroupfs: "/sys/fs/cgroup", ...opts.paths },
    hostname: opts.hostname ?? "host1",
    security: opts.security ?? new InlineSecurityManager(),
  }, def.options?.(flags));
}

/** Runs one scrape of the given collectors; returns the sink and the success value per collector. */
export async function scrape(
  collectors: Record<string, Collector>,
  logLines: string[] = [],
  timeoutMs?: number,
): Promise<{ sink: FamilySink; success: Record<string, number> }> {
  const sink = await scrapeCollectors(new Map(Object.entries(collectors)), captureLogger(logLines), timeoutMs);
  const success = Object.fromEntries(
    sink.families.get("ceems_scrape_collector_success")!.samples.map((s) => [s.labels.collector, s.value]),
  );
  return { sink, success };
}

/** The samples of one family as `{labels...} value` strings with sorted labels. */
export function samples(sink: FamilySink, family: string): Map<string, number> {
  const fam = sink.families.get(family);
  const out = new Map<string, number>();
  for (const s of fam?.samples ?? []) {
    const labels = Object.keys(s.labels).sort().map((k) => `${k}="${s.labels[k]}"`).join(",");
    out.set(`{${labels}}`, s.value);
  }
  return out;
}
