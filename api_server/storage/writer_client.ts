// The event loop's side of the writer thread: the update cycle's Storage. A window comes as its source printed
// it (parsed and enriched there), or as units posted in slices; one window is written at a time.

import { moduleGraphFiles } from "../../privilege/worker_source.ts";
import type { BackupRetention } from "./backups.ts";
import type { Staged, StageWindow, Storage, UpdateBatch } from "./storage.ts";
import type { RawUnits } from "../managers/manager.ts";
import type { UpdaterConfig } from "../config.ts";
import type { Level, LogFormat } from "../../common/log.ts";
import type { WriterCall, WriterReply, WriterRequest } from "./writer_worker.ts";
import { EmptyDatabaseError } from "./sqlite.ts";

const WORKER_URL = new URL("./writer_worker.ts", import.meta.url);

/** Units per message to the writer thread, as JSON (2.5x cheaper than a structured clone; ~0.3 ms a slice). */
const SLICE = 200;
/** Slices posted and not yet written: encoding the next overlaps with writing the last. */
const IN_FLIGHT = 2;

/** Source files of the writer thread (the run-as user must read them: Workers load after the privilege drop). */
export function writerWorkerFiles(): string[] {
  return moduleGraphFiles(WORKER_URL);
}

/** What the writer thread needs besides the data path: the updaters it runs on staged windows, its log. */
export interface WriterOptions {
  updaters: UpdaterConfig[];
  log: { level: Level; format: LogFormat };
}

/** The store, written on its own thread. */
export class WorkerStorage implements Storage {
  readonly #worker: Worker;
  readonly #pending = new Map<number, { resolve(v: unknown): void; reject(e: Error): void }>();
  #next = 1;
  /** Serialises windows (clusters catch up concurrently). */
  #writeLock: Promise<void> = Promise.resolve();
  #dead: Error | undefined;
  #path = "";

  private constructor(worker: Worker) {
    this.#worker = worker;
  }

  /** The database file. */
  get path(): string {
    return this.#path;
  }

  /** Starts the writer thread and opens (creating and migrating) `<dataPath>/ceems.db` there. */
  static async open(
    dataPath: string,
    opts: WriterOptions = { updaters: [], log: { level: "info", format: "logfmt" } },
  ): Promise<WorkerStorage> {
    const w = new Worker(WORKER_URL.href, { type: "module", name: "api-writer" });
    const s = new WorkerStorage(w);
    w.onmessage = (e: MessageEvent<WriterReply>) => s.#reply(e.data);
    w.onerror = (e) => {
      e.preventDefault();
      s.#fail(new Error(`writer thread failed: ${e.message}`));
    };
    try {
      s.#path = await s.#call({ op: "open", dataPath, ...opts }) as string;
      return s;
    } catch (e) {
      w.terminate();
      throw e;
    }
  }

  #reply(r: WriterReply): void {
    const p = this.#pending.get(r.id);
    if (!p) return;
    this.#pending.delete(r.id);
    if (r.ok) p.resolve(r.value);
    else {
      const e = r.name === "EmptyDatabaseError" ? new EmptyDatabaseError(r.error) : new Error(r.error);
      e.name = r.name;
      p.reject(e);
    }
  }

  #fail(e: Error): void {
    this.#dead = e;
    for (const p of this.#pending.values()) p.reject(e);
    this.#pending.clear();
  }

  #call(c: WriterCall): Promise<unknown> {
    if (this.#dead) return Promise.reject(this.#dead);
    const id = this.#next++;
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      this.#worker.postMessage({ ...c, id } as WriterRequest);
    });
  }

  async lastUpdateMs(clusterId: string): Promise<number | undefined> {
    return await this.#call({ op: "lastUpdateMs", clusterId }) as number | undefined;
  }

  async runningUnits(clusterId: string, limit: number): Promise<string[]> {
    return await this.#call({ op: "runningUnits", clusterId, limit }) as string[];
  }

  applyUpdate(b: UpdateBatch): Promise<void> {
    return this.#serial(() => this.#apply(b));
  }

  /** Runs `f` once the windows before it are written. */
  #serial(f: () => Promise<void>): Promise<void> {
    const run = this.#writeLock.then(f);
    this.#writeLock = run.catch(() => {});
    return run;
  }

  async stage(raw: RawUnits, window: StageWindow): Promise<Staged> {
    return await this.#call({ op: "stage", raw, window }) as Staged;
  }

  applyStaged(stageId: number, meta: Omit<UpdateBatch, "units">): Promise<void> {
    return this.#serial(async () => void await this.#call({ op: "applyStaged", stageId, meta }));
  }

  async discardStaged(stageId: number): Promise<void> {
    await this.#call({ op: "discardStaged", stageId });
  }

  async #apply(b: UpdateBatch): Promise<void> {
    const { units, ...meta } = b;
    await this.#call({ op: "begin", meta });
    try {
      // A few slices in flight: the event loop encodes one, then is free while the thread writes.
      let failure: { error: unknown } | undefined;
      const flying: Promise<void>[] = [];
      for (let i = 0; i < units.length && !failure; i += SLICE) {
        const sent = this.#call({ op: "add", json: JSON.stringify(units.slice(i, i + SLICE)) });
        // Replies come in order: the first failure is the cause, the slices after it fail for want of a window.
        flying.push(sent.then(() => {}, (error) => void (failure ??= { error })));
        if (flying.length >= IN_FLIGHT) await flying.shift();
      }
      await Promise.all(flying);
      if (failure) throw failure.error;
      await this.#call({ op: "commit" });
    } catch (e) {
      // The thread rolled back already when a slice or the commit failed; this covers a failure on this side.
      await this.#call({ op: "abort" }).catch(() => {});
      throw e;
    }
  }

  /** Makes the configuration's admins the admin_users rows of source "ceems" (see SqliteStorage). */
  async replaceConfigAdmins(names: string[]): Promise<void> {
    await this.#call({ op: "replaceConfigAdmins", names });
  }

  /** SQLite's quick_check: an empty list when sound, else its first problems. */
  async quickCheck(): Promise<string[]> {
    return await this.#call({ op: "quickCheck" }) as string[];
  }

  async backup(dir: string, retention: BackupRetention = { keep: 0, maxAgeMs: 0 }): Promise<string> {
    return await this.#call({ op: "backup", dir, retention }) as string;
  }

  /** Closes the database (folding the WAL into it) and stops the thread; gives up after `timeoutMs`. */
  async close(timeoutMs = 3000): Promise<void> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([
      this.#call({ op: "close" }).catch(() => {}),
      new Promise((r) => (timer = setTimeout(r, timeoutMs))),
    ]);
    clearTimeout(timer);
    this.#fail(new Error("storage closed"));
    this.#worker.terminate();
  }
}
