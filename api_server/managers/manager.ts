// The resource-manager interface the update cycle drives (SLURM and OpenStack today, k8s later):
// units active in a time window, and the users and projects of the cluster.

import type { Project, Unit, User } from "../models.ts";

/** Users and projects of one cluster. */
export interface Membership {
  users: User[];
  projects: Project[];
}

/** A source of compute units for one cluster. */
export interface ResourceManager {
  readonly clusterId: string;
  readonly kind: string;
  /**
   * Units that were active in [startMs, endMs]; walltimes cover only their overlap with the window. Throws
   * {@link SourceError} when the source answered with something that is not units.
   */
  fetchUnits(startMs: number, endMs: number, signal?: AbortSignal): Promise<Unit[]>;
  /**
   * Whether the source lists any of these units (stored as running) by id, whatever their state now: after an
   * empty window, true means the window really was empty, false that the source is not answering correctly.
   */
  knowsUnits?(uuids: string[], signal?: AbortSignal): Promise<boolean>;
  /**
   * The window's units as the source printed them, unparsed: parsing (and the updaters) can then run where the
   * window is written, off the event loop (the writer Worker parses sacct's text with parseSacct).
   */
  fetchRaw?(startMs: number, endMs: number, signal?: AbortSignal): Promise<RawUnits>;
  /** Users and projects known to the cluster at `endMs`. */
  fetchMembership(endMs: number): Promise<Membership>;
}

/** A window's units as the source printed them. */
export interface RawUnits {
  format: "sacct";
  text: string;
}

/** A source that answered (exit 0, HTTP 200) with something that is not the units of the window. */
export class SourceError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "SourceError";
  }
}

/** Walltime in seconds of [start, end] (end 0 = running) overlapping the window, as CEEMS counts it. */
export function windowWalltime(startMs: number, endMs: number, winStart: number, winEnd: number): number {
  if (startMs <= 0) return 0;
  const end = endMs > 0 ? endMs : winEnd;
  if (end < winStart) return Math.max(0, Math.round((end - startMs) / 1000));
  const s = Math.max(startMs, winStart);
  const e = Math.min(end, winEnd);
  return Math.max(0, Math.round((e - s) / 1000));
}
