// Compares two Prometheus exposition texts the way CEEMS's end-to-end tests do: drop the filtered
// families, then require the same series (name, labels, numeric value) and the same TYPE per family.

import { parseExposition, parseTypes } from "./process.ts";

/**
 * Lines CEEMS's e2e script removed before comparing outputs, plus ceems_compute_unit_gpu_sm_count: CEEMS added
 * that metric after 0.6.0, the version that recorded these fixtures (its own tests of it are in gpu tests here).
 */
export const ceemsE2eFilter =
  /^(go_|ceems_exporter_build_info|ceems_scrape_collector_duration_seconds|process_|ceems_textfile_mtime_seconds|ceems_time_(zone|seconds)|ceems_network_(receive|transmit)_(bytes|packets)_total|ceems_compute_unit_gpu_sm_count)/;

/** Differences of one metric family. */
export interface FamilyDiff {
  family: string;
  missing: string[];
  extra: string[];
  different: string[];
  type?: { expected?: string; actual?: string };
}

function familyOf(seriesKey: string): string {
  return seriesKey.slice(0, seriesKey.indexOf("{"));
}

function filtered(text: string, filter: RegExp): { series: Map<string, number>; types: Map<string, string> } {
  const series = new Map([...parseExposition(text)].filter(([k]) => !filter.test(k)));
  const types = new Map([...parseTypes(text)].filter(([k]) => !filter.test(k)));
  return { series, types };
}

function sameNumber(a: number, b: number): boolean {
  if (Number.isNaN(a) && Number.isNaN(b)) return true;
  return a === b || Math.abs(a - b) <= 1e-9 * Math.max(Math.abs(a), Math.abs(b));
}

/** Differences between the expected and actual expositions, grouped by family (empty when equal). */
export function compareExpositions(expected: string, actual: string, filter = ceemsE2eFilter): FamilyDiff[] {
  const exp = filtered(expected, filter);
  const act = filtered(actual, filter);
  const byFamily = new Map<string, FamilyDiff>();
  const diff = (family: string) => {
    let d = byFamily.get(family);
    if (!d) byFamily.set(family, d = { family, missing: [], extra: [], different: [] });
    return d;
  };
  for (const [k, v] of exp.series) {
    const a = act.series.get(k);
    if (a === undefined) diff(familyOf(k)).missing.push(`${k} ${v}`);
    else if (!sameNumber(a, v)) diff(familyOf(k)).different.push(`${k} expected ${v}, got ${a}`);
  }
  for (const [k, v] of act.series) {
    if (!exp.series.has(k)) diff(familyOf(k)).extra.push(`${k} ${v}`);
  }
  const families = new Set([...exp.series.keys(), ...act.series.keys()].map(familyOf));
  for (const f of families) {
    const te = exp.types.get(f);
    const ta = act.types.get(f);
    if (te !== ta && exp.series.size && [...exp.series.keys()].some((k) => familyOf(k) === f)) {
      if ([...act.series.keys()].some((k) => familyOf(k) === f)) diff(f).type = { expected: te, actual: ta };
    }
  }
  return [...byFamily.values()].sort((a, b) => a.family.localeCompare(b.family));
}

/** Renders differences for a failure message, one block per family. */
export function formatDiffs(diffs: FamilyDiff[], maxPerList = 5): string {
  const list = (title: string, items: string[]) =>
    items.length
      ? [`  ${title} (${items.length}):`, ...items.slice(0, maxPerList).map((s) => `    ${s}`)].concat(
        items.length > maxPerList ? [`    … ${items.length - maxPerList} more`] : [],
      )
      : [];
  return diffs
    .map((d) =>
      [
        `${d.family}:`,
        ...(d.type ? [`  TYPE expected ${d.type.expected}, got ${d.type.actual}`] : []),
        ...list("missing", d.missing),
        ...list("extra", d.extra),
        ...list("different", d.different),
      ].join("\n")
    )
    .join("\n");
}
