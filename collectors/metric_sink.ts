// A MetricSink that gathers one scrape's samples into families and renders them in the Prometheus
// text exposition format through prom-client.

import client from "prom-client";
import type { Labels, MetricSink } from "./collector.ts";

/** One metric family gathered during a scrape. */
export interface Family {
  name: string;
  help: string;
  type: "gauge" | "counter";
  labelNames: string[];
  samples: { labels: Labels; value: number }[];
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
      fam = { name, help, type, labelNames: Object.keys(labels), samples: [] };
      this.families.set(name, fam);
    } else if (fam.type !== type) {
      throw new Error(`metric ${name} emitted as ${type} after ${fam.type}`);
    } else {
      for (const k of Object.keys(labels)) {
        if (!fam.labelNames.includes(k)) fam.labelNames.push(k);
      }
    }
    fam.samples.push({ labels, value });
  }

  /** Moves every sample of `other` into this sink. */
  merge(other: FamilySink): void {
    for (const fam of other.families.values()) {
      for (const s of fam.samples) this.#add(fam.type, fam.name, fam.help, s.labels, s.value);
    }
  }
}

/** Renders families as exposition text via a throwaway prom-client registry. */
export async function renderFamilies(families: Iterable<Family>): Promise<string> {
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
