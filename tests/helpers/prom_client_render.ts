// The reference exposition renderer: families rendered through a throwaway prom-client registry, which
// the exporter's own writer (collectors/framework/metric_sink.ts) must match byte for byte.

import client from "prom-client";
import type { Labels } from "../../collectors/framework/collector.ts";
import type { Family } from "../../collectors/framework/metric_sink.ts";

/** Renders families through a throwaway prom-client registry (the reference renderFamilies is tested against). */
export async function renderFamiliesWithPromClient(families: Iterable<Family>): Promise<string> {
  const registry = new client.Registry();
  for (const fam of families) {
    const opts = { name: fam.name, help: fam.help, labelNames: fam.labelNames, registers: [registry] };
    if (fam.type === "gauge") {
      const g = new client.Gauge(opts);
      for (const s of fam.samples) g.set(fillLabels(fam.labelNames, s.labels), s.value);
    } else {
      const c = new client.Counter(opts);
      for (const s of fam.samples) {
        // Counter.inc refuses negative values; a counter read from the system is never negative.
        c.inc(fillLabels(fam.labelNames, s.labels), Math.max(0, s.value));
      }
    }
  }
  return await registry.metrics();
}

function fillLabels(names: string[], labels: Labels): Labels {
  if (names.length === Object.keys(labels).length) return labels;
  const out: Labels = {};
  for (const n of names) out[n] = labels[n] ?? "";
  return out;
}
