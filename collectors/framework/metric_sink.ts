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
    const { labelSets, values, labelNames } = fam;
    const counter = fam.type === "counter";
    const { folded, merged } = foldDuplicates(labelSets, values, labelNames, counter);
    for (let i = 0; i < values.length; i++) {
      if (folded?.[i]) continue;
      const labels = labelSets[i];
      let key = "";
      for (const n of labelNames) {
        const v = labels[n] ?? "";
        key += key ? `,${n}="${escLabel(v)}"` : `${n}="${escLabel(v)}"`;
      }
      const v = merged?.get(i) ?? (counter ? Math.max(0, values[i]) : values[i]);
      out += `${fam.name}${key ? `{${key}}` : ""} ${formatValue(v)}\n`;
      if (out.length >= chunkChars) {
        yield out;
        out = "";
      }
    }
  }
  if (out) yield out;
}

/** FNV-1a over the values of `names` in `labels` (30 bits, so the hash stays a small integer in V8). */
export function labelHash(labels: Labels, names: string[]): number {
  let h = 0x811c9dc5;
  for (const n of names) {
    const v = labels[n] ?? "";
    for (let i = 0; i < v.length; i++) h = Math.imul(h ^ v.charCodeAt(i), 16777619);
    h = Math.imul(h ^ 0xff, 16777619); // separator: ("ab","") and ("a","b") differ
  }
  return h & 0x3fffffff;
}

function sameLabels(a: Labels, b: Labels, names: string[]): boolean {
  for (const n of names) if ((a[n] ?? "") !== (b[n] ?? "")) return false;
  return true;
}

/**
 * prom-client's semantics for samples with equal label values: the first one's line carries the last gauge
 * value, or the sum of the counter values (each floored at 0). Found through label hashes, so no label text
 * is kept per sample (a map of 50,000 rendered keys was most of a scrape's old-generation garbage).
 * `folded[i]` marks samples merged into an earlier one; `merged` holds the value of those that absorbed any.
 */
function foldDuplicates(
  labelSets: Labels[],
  values: number[],
  names: string[],
  counter: boolean,
): { folded?: Uint8Array; merged?: Map<number, number> } {
  const firstByHash = new Map<number, number>();
  let collisions: Map<number, number[]> | undefined;
  let folded: Uint8Array | undefined;
  let merged: Map<number, number> | undefined;
  for (let i = 0; i < values.length; i++) {
    const h = labelHash(labelSets[i], names);
    const j = firstByHash.get(h);
    if (j === undefined) {
      firstByHash.set(h, i);
      continue;
    }
    let target = sameLabels(labelSets[j], labelSets[i], names) ? j : undefined;
    if (target === undefined) {
      const chain = collisions?.get(h);
      target = chain?.find((k) => sameLabels(labelSets[k], labelSets[i], names));
      if (target === undefined) {
        if (chain) chain.push(i);
        else (collisions ??= new Map()).set(h, [i]);
        continue;
      }
    }
    (folded ??= new Uint8Array(values.length))[i] = 1;
    merged ??= new Map();
    const prev = merged.get(target) ?? (counter ? Math.max(0, values[target]) : values[target]);
    merged.set(target, counter ? prev + Math.max(0, values[i]) : values[i]);
  }
  return { folded, merged };
}

/** Replaces characters not allowed in metric names by `_`. */
export function sanitizeMetricName(s: string): string {
  return s.replace(/[^a-zA-Z0-9_:]/g, "_");
}
