// Parsing of `sacct --parsable2` output (CEEMS's field list) into compute units: steps skipped, malformed
// lines reported, times kept in the zone sacct printed, alloctres decoded, walltimes clipped to the window.

import { formatTime, type Unit } from "../models.ts";
import { windowWalltime } from "./manager.ts";
import { expandHostlist } from "../../common/slurm_hostlist.ts";

/** The --format list CEEMS passes to sacct, in order. */
export const SACCT_FIELDS = [
  "jobidraw",
  "partition",
  "qos",
  "account",
  "group",
  "gid",
  "user",
  "uid",
  "submit",
  "start",
  "end",
  "elapsed",
  "elapsedraw",
  "exitcode",
  "state",
  "alloctres",
  "nodelist",
  "jobname",
  "workdir",
];

/** States CEEMS asks sacct for. */
export const SACCT_STATES = "CANCELLED,COMPLETED,FAILED,NODE_FAIL,PREEMPTED,TIMEOUT,RUNNING";

/** The decimal number in s[a, b), NaN when a character is not a digit. */
function digits(s: string, a: number, b: number): number {
  let v = 0;
  for (let i = a; i < b; i++) {
    const c = s.charCodeAt(i) - 48;
    if (c < 0 || c > 9) return NaN;
    v = v * 10 + c;
  }
  return v;
}

/** Parses "2023-02-21T15:49:06+0100" (or without zone = UTC) into epoch ms and its offset in minutes. */
export function parseSlurmTime(s: string): { ms: number; offsetMin: number } | undefined {
  // Fast path for SLURM_TIME_FORMAT=%Y-%m-%dT%H:%M:%S%z ("2023-02-21T15:49:06+0100").
  if (s.length === 24 && s.charCodeAt(10) === 84 && (s[19] === "+" || s[19] === "-")) {
    const off = (s[19] === "-" ? -1 : 1) * (digits(s, 20, 22) * 60 + digits(s, 22, 24));
    const utc = Date.UTC(
      digits(s, 0, 4),
      digits(s, 5, 7) - 1,
      digits(s, 8, 10),
      digits(s, 11, 13),
      digits(s, 14, 16),
      digits(s, 17, 19),
    );
    if (!Number.isNaN(utc) && !Number.isNaN(off) && s[4] === "-" && s[7] === "-" && s[13] === ":" && s[16] === ":") {
      return { ms: utc - off * 60_000, offsetMin: off };
    }
    return undefined;
  }
  const m = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:([+-])(\d{2}):?(\d{2})|Z)?$/.exec(s);
  if (!m) return undefined;
  const off = m[7] ? (m[7] === "-" ? -1 : 1) * (Number(m[8]) * 60 + Number(m[9])) : 0;
  const utc = Date.UTC(+m[1], +m[2] - 1, +m[3], +m[4], +m[5], +m[6]) - off * 60_000;
  return { ms: utc, offsetMin: off };
}

const memUnits: Record<string, number> = { K: 1024, M: 1024 ** 2, G: 1024 ** 3, T: 1024 ** 4, P: 1024 ** 5 };

/** Decodes alloctres ("billing=80,cpu=8,gres/gpu=8,mem=320G,node=1") into CEEMS's allocation map. */
export function parseAllocTres(s: string): { billing: number; cpus: number; gpus: number; mem: number; nodes: number } {
  const a = { billing: 0, cpus: 0, gpus: 0, mem: 0, nodes: 0 };
  for (const kv of s.split(",")) {
    const i = kv.indexOf("=");
    if (i < 0) continue;
    const k = kv.slice(0, i);
    const v = kv.slice(i + 1);
    if (k === "billing") a.billing = parseInt(v, 10) || 0;
    else if (k === "cpu") a.cpus = parseInt(v, 10) || 0;
    else if (k === "node") a.nodes = parseInt(v, 10) || 0;
    else if (k === "mem") {
      const m = /^([\d.]+)([KMGTP]?)$/.exec(v);
      // CEEMS keeps the integer part of fractional sizes ("320.5G" counts as 320G).
      if (m) a.mem = parseInt(m[1], 10) * (m[2] ? memUnits[m[2]] : 1);
    } else if (k.startsWith("gres/gpu")) {
      // gres/gpu=N and typed gres/gpu:a100=N both count; keep the largest (the untyped total).
      a.gpus = Math.max(a.gpus, parseInt(v, 10) || 0);
    }
  }
  return a;
}

/** Result of parsing one sacct output. */
export interface SacctParse {
  units: Unit[];
  /** Lines that could not be parsed, with the reason. */
  skipped: { line: string; reason: string }[];
}

/**
 * Joins physical lines into records: a record is complete once it has the expected number of `|` separators
 * (SLURM does not escape `|` or newlines inside fields such as jobname or workdir).
 */
function records(out: string): string[] {
  const n = SACCT_FIELDS.length - 1;
  const seps = (s: string) => {
    let c = 0;
    for (let i = s.indexOf("|"); i >= 0; i = s.indexOf("|", i + 1)) c++;
    return c;
  };
  const recs: string[] = [];
  let cur = "";
  let curSeps = 0;
  for (const line of out.split("\n")) {
    if (cur === "" && line.trim() === "") continue;
    const ls = seps(line);
    if (cur !== "" && ls >= n) {
      // A complete record on its own line: what came before was a broken record.
      recs.push(cur);
      cur = "";
      curSeps = 0;
    }
    cur = cur === "" ? line : `${cur}\n${line}`;
    curSeps += ls;
    if (curSeps >= n) {
      recs.push(cur);
      cur = "";
      curSeps = 0;
    }
  }
  if (cur) recs.push(cur);
  return recs;
}

// Allocations and node lists repeat across jobs: parse each distinct string once.
const tresCache = new Map<string, ReturnType<typeof parseAllocTres>>();
const nodeCache = new Map<string, string>();

/** Parses sacct output for cluster `clusterId` and window [winStart, winEnd] (ms). */
export function parseSacct(out: string, clusterId: string, winStart: number, winEnd: number): SacctParse {
  const p: SacctParse = { units: [], skipped: [] };
  for (const rec of records(out)) addRecord(p, rec, clusterId, winStart, winEnd);
  return p;
}

/**
 * {@link parseSacct} in slices of about `sliceMs`, yielding to the event loop between them: a 20,000-job
 * window does not hold up the requests being served meanwhile.
 */
export async function parseSacctSliced(
  out: string,
  clusterId: string,
  winStart: number,
  winEnd: number,
  sliceMs = 4,
): Promise<SacctParse> {
  const p: SacctParse = { units: [], skipped: [] };
  let t0 = performance.now();
  let i = 0;
  for (const rec of records(out)) {
    addRecord(p, rec, clusterId, winStart, winEnd);
    if ((++i & 63) === 0 && performance.now() - t0 >= sliceMs) {
      await new Promise((r) => setTimeout(r, 0));
      t0 = performance.now();
    }
  }
  return p;
}

/**
 * What a parse says of its source: a SourceError message when records came and none parses (a wrapper's
 * banner, a changed format: the window must not be applied), else the warning to log once, if any.
 */
export function judgeParse(
  units: number,
  skipped: number,
  firstSkipped?: { line: string; reason: string },
): { error?: string; warning?: string } {
  if (!skipped) return {};
  const first = firstSkipped ? `${firstSkipped.reason}: "${firstSkipped.line.slice(0, 200)}"` : "";
  if (!units) return { error: `sacct printed ${skipped} record(s), none parses (first: ${first})` };
  return { warning: `skipping ${skipped} malformed sacct record(s) (first: ${first})` };
}

/** Parses one record into `p`: a unit, a skipped line with its reason, or nothing (a job step). */
function addRecord(p: SacctParse, rec: string, clusterId: string, winStart: number, winEnd: number): void {
  const skip = (reason: string) => void p.skipped.push({ line: rec, reason });
  const n = SACCT_FIELDS.length;
  let f = rec.split("|");
  if (f.length < n) return skip(`expected ${n} fields, got ${f.length}`);
  if (f.length > n) {
    // Extra separators: they belong to jobname (field 17) and/or workdir; keep the fixed fields around them.
    const head = f.slice(0, 17);
    const tail = f.slice(17);
    // workdir is an absolute path: the last field starting with "/" begins the workdir.
    let w = tail.length - 1;
    for (let i = tail.length - 1; i >= 1; i--) {
      if (tail[i].startsWith("/")) {
        w = i;
        break;
      }
    }
    f = [...head, tail.slice(0, w).join("|"), tail.slice(w).join("|")];
  }
  const [
    jobid,
    partition,
    qos,
    account,
    group,
    gid,
    user,
    uid,
    submit,
    start,
    end,
    elapsed,
    ,
    exitcode,
    state,
    tres,
  ] = f;
  const nodelist = f[16];
  const jobname = f[17];
  const workdir = f[18];
  if (jobid.includes(".")) return; // job steps
  if (!/^\d+$/.test(jobid)) return skip(`invalid job id "${jobid}"`);
  const sub = parseSlurmTime(submit);
  if (!sub) return skip(`invalid submit time "${submit}"`);
  const st = start === "Unknown" || start === "None" ? undefined : parseSlurmTime(start);
  if (!st && start !== "Unknown" && start !== "None") return skip(`invalid start time "${start}"`);
  const en = end === "Unknown" || end === "None" ? undefined : parseSlurmTime(end);
  if (!en && end !== "Unknown" && end !== "None") return skip(`invalid end time "${end}"`);
  // CEEMS renders every time in the zone of the end time (the zone sacct printed); a time sacct printed
  // in that zone already has CEEMS's layout and is kept as is.
  const zone = (en ?? st ?? sub).offsetMin;
  const render = (t: { ms: number; offsetMin: number }, raw: string) =>
    t.offsetMin === zone && raw.length === 24 ? raw : formatTime(t.ms, zone);
  let alloc = tresCache.get(tres);
  if (!alloc) {
    alloc = parseAllocTres(tres);
    if (tresCache.size > 10_000) tresCache.clear();
    tresCache.set(tres, alloc);
  }
  let nodesExp = nodeCache.get(nodelist);
  if (nodesExp === undefined) {
    nodesExp = nodelist === "None assigned" ? "" : expandHostlist(nodelist).join("|");
    if (nodeCache.size > 10_000) nodeCache.clear();
    nodeCache.set(nodelist, nodesExp);
  }
  const startMs = st?.ms ?? 0;
  const endMs = en?.ms ?? 0;
  const wall = windowWalltime(startMs, endMs, winStart, winEnd);
  const memMiB = alloc.mem > 0 ? alloc.mem / (1024 * 1024) : 1;
  const gidN = parseInt(gid, 10);
  const uidN = parseInt(uid, 10);
  p.units.push({
    cluster_id: clusterId,
    resource_manager: "slurm",
    uuid: jobid,
    name: jobname,
    project: account,
    groupname: group,
    username: user,
    created_at: render(sub, submit),
    started_at: st ? render(st, start) : "Unknown",
    ended_at: en ? render(en, end) : "Unknown",
    created_at_ts: sub.ms,
    started_at_ts: startMs,
    ended_at_ts: endMs,
    elapsed,
    state,
    allocation: { ...alloc },
    // Maps built in sorted key order (the order they are stored and served in): no sorting when encoded.
    tags: {
      exit_code: exitcode,
      gid: Number.isNaN(gidN) ? gid : gidN,
      nodelist: nodelist === "None assigned" ? "" : nodelist,
      nodelistexp: nodesExp,
      partition,
      qos,
      uid: Number.isNaN(uidN) ? uid : uidN,
      workdir,
    },
    total_time_seconds: {
      alloc_cpumemtime: Math.round(alloc.mem > 0 ? memMiB * wall : wall),
      alloc_cputime: alloc.cpus * wall,
      alloc_gpumemtime: alloc.gpus > 0 ? wall : 0,
      alloc_gputime: alloc.gpus * wall,
      walltime: wall,
    },
  });
}

/** Parses `sacctmgr --parsable2 --noheader list associations format=Account,User` into memberships. */
export function parseAssociations(
  out: string,
): { users: Map<string, Set<string>>; projects: Map<string, Set<string>> } {
  const users = new Map<string, Set<string>>();
  const projects = new Map<string, Set<string>>();
  for (const line of out.split("\n")) {
    const [account, user] = line.trim().split("|");
    if (!account || !user || account === "root") continue;
    if (!users.has(user)) users.set(user, new Set());
    users.get(user)!.add(account);
    if (!projects.has(account)) projects.set(account, new Set());
    projects.get(account)!.add(user);
  }
  return { users, projects };
}
