// Units as the TSDB updater receives them, with only the fields its queries read (uuid, start, end), for the
// updater tests against Prometheus and VictoriaMetrics.

import type { Unit } from "../../api_server/models.ts";

/** A completed unit `uuid` of cluster "c" that ran from `startMs` to `endMs`. */
export function bareUnit(uuid: string, startMs: number, endMs: number): Unit {
  return {
    cluster_id: "c",
    resource_manager: "slurm",
    uuid,
    name: "",
    project: "p",
    groupname: "",
    username: "u",
    created_at: "",
    started_at: "",
    ended_at: "",
    created_at_ts: startMs,
    started_at_ts: startMs,
    ended_at_ts: endMs,
    elapsed: "",
    state: "COMPLETED",
    allocation: {},
    tags: {},
    total_time_seconds: {},
  };
}
