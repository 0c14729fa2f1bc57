// Collector registration by name: each collector file registers itself at import time, and the
// exporter turns the registry into `--collector.<name>` flags and constructed collectors.

import type { CollectorDef } from "./collector.ts";

const defs = new Map<string, CollectorDef>();

/** Registers a collector; a name used twice is a programming error. */
export function registerCollector<O>(def: CollectorDef<O>): void {
  if (defs.has(def.name)) throw new Error(`collector ${def.name} registered twice`);
  defs.set(def.name, def as CollectorDef);
}

/** Every registered collector, sorted by name. */
export function registeredCollectors(): CollectorDef[] {
  return [...defs.values()].sort((a, b) => a.name.localeCompare(b.name));
}
