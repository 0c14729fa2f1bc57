// Writer thread of the API server: the only read-write SQLite connection, so that migrations, update
// windows (parsed, enriched by the updaters and written here), integrity checks and backups never run on
// the event loop.

/// <reference lib="deno.worker" />

import type { Unit } from "../models.ts";
import type { UpdaterConfig } from "../config.ts";
import type { RawUnits } from "../managers/manager.ts";
import { parseSacct } from "../managers/sacct_parse.ts";
import { TsdbUpdater } from "../updater/tsdb.ts";
import { type Level, type LogFormat, Logger } from "../../common/log.ts";
import type { Staged, StageWindow, UpdateBatch } from "./storage.ts";
import type { BackupRetention } from "./backups.ts";
import { SqliteStorage } from "./sqlite.ts";
import { niceThread } from "../../ffi/libc.ts";

/** Nice value of the writer thread: ingesting a window gives way to the threads that answer requests. */
const WRITER_NICE = 10;
import type { WindowMeta } from "./window_writer.ts";

/** A call to the writer thread. */
export type WriterCall =
  | { op: "open"; dataPath: string; updaters: UpdaterConfig[]; log: { level: Level; format: LogFormat } }
  | { op: "stage"; raw: RawUnits; window: StageWindow }
  | { op: "applyStaged"; stageId: number; meta: Omit<UpdateBatch, "units"> }
  | { op: "discardStaged"; stageId: number }
  | { op: "lastUpdateMs"; clusterId: string }
  | { op: "runningUnits"; clusterId: string; limit: number }
  | { op: "begin"; meta: WindowMeta }
  /** A slice of the window's units as JSON (cheaper to post than the objects). */
  | { op: "add"; json: string }
  | { op: "commit" }
  | { op: "abort" }
  | { op: "replaceConfigAdmins"; names: string[] }
  | { op: "quickCheck" }
  | { op: "backup"; dir: string; retention: BackupRetention }
  | { op: "close" };

/** A call as posted, with the id its reply carries. */
export type WriterRequest = WriterCall & { id: number };

/** The writer thread's reply; a failure keeps the error's name and message. */
export type WriterReply =
  | { id: number; ok: true; value?: unknown }
  | { id: number; ok: false; name: string; error: string };

let storage: SqliteStorage | undefined;
let updaters = new Map<string, TsdbUpdater>();
/** Windows parsed and enriched, waiting to be applied. */
const staged = new Map<number, Unit[]>();
let nextStage = 1;

/** Parses a window's raw units and runs the updaters on them; they wait under the returned id. */
async function stage(raw: RawUnits, w: StageWindow): Promise<Staged> {
  const { units, skipped } = parseSacct(raw.text, w.clusterId, w.startMs, w.endMs);
  for (const id of w.updaters) await updaters.get(id)?.update(units, w.startMs, w.endMs);
  const id = nextStage++;
  staged.set(id, units);
  return { id, units: units.length, skipped: skipped.length, firstSkipped: skipped[0] };
}

function applyStaged(id: number, meta: Omit<UpdateBatch, "units">): void {
  const units = staged.get(id);
  if (!units) throw new Error(`no staged window ${id}`);
  staged.delete(id);
  const s = open();
  s.beginWindow(meta);
  s.addUnits(units);
  s.commitWindow();
}

function open(): SqliteStorage {
  if (!storage) throw new Error("database not open");
  return storage;
}

async function perform(c: WriterCall): Promise<unknown> {
  switch (c.op) {
    case "open":
      try {
        niceThread(WRITER_NICE);
      } catch { /* no per-thread priority here: the window is written at the usual one */ }
      storage ??= new SqliteStorage(c.dataPath);
      {
        const logger = new Logger(c.log.level, c.log.format);
        updaters = new Map(c.updaters.map((u) => [u.id, new TsdbUpdater(u, logger.with({ updater: u.id }))]));
      }
      return storage.path;
    case "stage":
      return await stage(c.raw, c.window);
    case "applyStaged":
      return applyStaged(c.stageId, c.meta);
    case "discardStaged":
      return void staged.delete(c.stageId);
    case "lastUpdateMs":
      return open().lastUpdateMs(c.clusterId);
    case "runningUnits":
      return open().runningUnits(c.clusterId, c.limit);
    case "begin":
      return open().beginWindow(c.meta);
    case "add":
      return open().addUnits(JSON.parse(c.json) as Unit[]);
    case "commit":
      return open().commitWindow();
    case "abort":
      return open().abortWindow();
    case "replaceConfigAdmins":
      return open().replaceConfigAdmins(c.names);
    case "quickCheck":
      return open().quickCheck();
    case "backup":
      return await open().backup(c.dir, c.retention);
    case "close":
      storage?.close();
      storage = undefined;
      return undefined;
  }
}

self.onmessage = async (e: MessageEvent<WriterRequest>) => {
  const { id } = e.data;
  try {
    const value = await perform(e.data);
    self.postMessage({ id, ok: true, value } satisfies WriterReply);
  } catch (err) {
    const x = err as Error;
    self.postMessage({ id, ok: false, name: x.name ?? "Error", error: x.message ?? String(err) } satisfies WriterReply);
  }
};
