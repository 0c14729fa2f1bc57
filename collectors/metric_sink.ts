// A MetricSink that gathers one scrape's samples into families and renders them in the Prometheus
// text exposition format: a direct writer (tests/helpers/prom_client_render.ts is the reference it is checked against).

import type { Labels, MetricSink } from "./collector.ts";

/**
 * One metric family gathered during a scrape. Samples are held as two parallel arrays (label sets and
 * unboxed doubles): about a quarter of the memory of one object per sample at 50,000 series.
 */
export class Family {
  /** Label set of each sample (often one object shared by a unit's samples). */
  readonly labelSets: Labels[] = [];
  /** Value of each sample, index-aligned with labelSets. */
  readonly values: number[] = [];

  constructor(
    readonly name: string,
    readonly help: string,
    readonly type: "gauge" | "counter",
    readonly labelNames: string[],
  ) {}

  /** The samples as objects, built on each access (for tests and tools; renderers use the arrays). */
  get samples(): { labels: Labels; value: number }[] {
    return this.labelSets.map((labels, i) => ({ labels, value: this.values[i] }));
  }
}

/** Collects samples by family; conflicting redefinitions are rejected. */
export class FamilySink implements MetricSink {
  readonly families = new Map<string, Family>();

  gauge(name: string, help: string, labels: Labels, value: number): void {
    this.#add("gauge", name, help, labels, value);
  }

  counter(name: string, help: string, labels: Labels, value: number): void {
    this.#add("counter", name, help, labels, value);
  }

  #add(type: Family["type"], name: string, help: string, labels: Labels, value: number) {
    let fam = this.families.get(name);
    if (!fam) {
      fam = new Family(name, help, type, Object.keys(labels));
      this.families.set(name, fam);
    } else if (fam.type !== type) {
      throw new Error(`metric ${name} emitted as ${type} after ${fam.type}`);
    } else {
      for (const k of Object.keys(labels)) {
        if (!fam.labelNames.includes(k)) fam.labelNames.push(k);
      }
    }
    fam.labelSets.push(labels);
    fam.values.push(value);
  }

  /** Moves every sample of `other` into this sink (a family new here is adopted whole); `other` is spent. */
  merge(other: FamilySink): void {
    for (const fam of other.families.values()) {
      if (!this.families.has(fam.name)) {
        this.families.set(fam.name, fam);
        continue;
      }
      for (let i = 0; i < fam.values.length; i++) {
        this.#add(fam.type, fam.name, fam.help, fam.labelSets[i], fam.values[i]);
      }
    }
    other.families.clear();
  }
}

const escLabel = (v: string) =>
  /[\\"\n]/.test(v) ? v.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n") : v;
const escHelp = (v: string) => /[\\\n]/.test(v) ? v.replace(/\\/g, "\\\\").replace(/\n/g, "\\n") : v;

function formatValue(v: number): string {
  if (Number.isNaN(v)) return "NaN";
  if (v === Infinity) return "+Inf";
  if (v === -Infinity) return "-Inf";
  return String(v);
}

/**
 * Renders families as exposition text, as prom-client would (same HELP/TYPE lines, label order and
 * escaping; for one label set the last gauge sample wins and counter samples add up, never below 0), without
 * building a prom-client registry per scrape: at 10,000 series that costs several times the time and garbage.
 */
export function renderFamilies(families: Iterable<Family>): Promise<string> {
  return Promise.resolve([...renderFamilyChunks(families)].join(""));
}

/**
 * The text of {@link renderFamilies} in pieces of about `chunkChars` characters, produced lazily: a scrape
 * body streamed from it never holds the whole exposition (tens of MB of short-lived strings at 50,000 series).
 */
export function* renderFamilyChunks(families: Iterable<Family>, chunkChars = 65536): Generator<string> {
  let out = "";
  let first = true;
  for (const fam of families) {
    if (!first) out += "\n";
    first = false;
    out += `# HELP ${fam.name} ${escHelp(fam.help)}\n# TYPE ${fam.name} ${fam.type}\n`;
    const byLabels = new Map<string, number>();
    const { labelSets, values, labelNames } = fam;
    for (let i = 0; i < values.length; i++) {
      const labels = labelSets[i];
      let key = "";
      for (const n of labelNames) {
        const v = labels[n] ?? "";
        key += key ? `,${n}="${escLabel(v)}"` : `${n}="${escLabel(v)}"`;
      }
      if (fam.type === "counter") byLabels.set(key, (byLabels.get(key) ?? 0) + Math.max(0, values[i]));
      else byLabels.set(key, values[i]);
    }
    for (const [key, v] of byLabels) {
      out += `${fam.name}${key ? `{${key}}` : ""} ${formatValue(v)}\n`;
      if (out.length >= chunkChars) {
        yield out;
        out = "";
      }
    }
  }
  if (out) yield out;
}
