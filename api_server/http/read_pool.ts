// A small pool of reader threads (Workers, each with its own read-only SQLite connection; WAL lets them read
// while the writer writes). The first reader never takes admin requests, so an expensive admin query cannot
// hold up users; large answers come back as streams with backpressure.

import type { Logger } from "../../common/log.ts";
import { moduleGraphFiles } from "../../privilege/worker_source.ts";
import type { ReadRequest } from "./routes.ts";
import { type ApiReader, INTERNAL_ERROR_BODY, type Lane, type ReadReply } from "./reader.ts";
import type { FromReader, ReadWorkerInit, ToReader } from "./read_worker.ts";

const WORKER_URL = new URL("./read_worker.ts", import.meta.url);

/** Source files of the reader thread (the run-as user must read them: Workers load after the privilege drop). */
export function readWorkerFiles(): string[] {
  return moduleGraphFiles(WORKER_URL);
}

/** Options of {@link ReadPool}. */
export interface ReadPoolOptions {
  dbPath: string;
  logger: Logger;
  /** Reader threads (at least 2: one for users only, the others for admins and users). */
  size?: number;
  /** How long SQLite may wait on a lock (ms). */
  busyTimeoutMs?: number;
  /** How long a ping may take before the database counts as not answering (ms). */
  pingTimeoutMs?: number;
}

/** Nice value of the readers that take admin requests: with CPUs short, users' reader goes first. */
const ADMIN_READER_NICE = 5;

/** Chunks a streamed answer may hold queued here before the reader thread is asked for more. */
const QUEUED_CHUNKS = 2;

type Pending =
  | { kind: "reply"; lane: Lane; resolve(r: ReadReply): void }
  | { kind: "stream"; lane: Lane; ctl: ReadableStreamDefaultController<Uint8Array>; owed: number }
  | { kind: "ping"; resolve(ok: boolean): void };

/** How long closing waits for a reader thread to close its connection. */
const CLOSE_WAIT_MS = 1000;

/** One reader thread and what it is doing. */
class Reader {
  worker!: Worker;
  readonly pending = new Map<number, Pending>();
  /** Requests in progress, and how many of them are admins'. */
  active = 0;
  adminActive = 0;

  constructor(readonly pool: ReadPool, readonly index: number) {
    this.spawn();
  }

  spawn(): void {
    const w = new Worker(WORKER_URL.href, { type: "module", name: `api-reader-${this.index}` });
    w.postMessage(
      {
        dbPath: this.pool.opts.dbPath,
        busyTimeoutMs: this.pool.opts.busyTimeoutMs ?? 5000,
        nice: this.index === 0 ? 0 : ADMIN_READER_NICE,
      } satisfies ReadWorkerInit,
    );
    w.onmessage = (e: MessageEvent<FromReader>) => this.onMessage(e.data);
    w.onerror = (e) => {
      e.preventDefault();
      this.pool.opts.logger.error("API reader thread failed, restarting it", { reader: this.index, err: e.message });
      this.restart(e.message);
    };
    this.worker = w;
  }

  /** Replaces the thread; what it held fails (a 500, or a stream cut short). */
  restart(reason: string): void {
    this.worker.terminate();
    for (const [id, p] of this.pending) this.settle(id, p, reason);
    this.pending.clear();
    this.active = this.adminActive = 0;
    if (!this.pool.closed) this.spawn();
  }

  settle(id: number, p: Pending, reason: string): void {
    if (p.kind === "reply") p.resolve({ status: 500, body: INTERNAL_ERROR_BODY, error: reason });
    else if (p.kind === "stream") p.ctl.error(new Error(reason));
    else p.resolve(false);
    void id;
  }

  send(m: ToReader): void {
    this.worker.postMessage(m);
  }

  #done(id: number, p: Pending): void {
    this.pending.delete(id);
    if (p.kind === "ping") return;
    this.active--;
    if (p.lane === "admin") this.adminActive--;
  }

  onMessage(m: FromReader): void {
    const p = this.pending.get(m.id);
    if (!p) return;
    switch (m.type) {
      case "pong":
      case "closed":
        if (p.kind === "ping") p.resolve(m.type === "closed" || m.ok);
        this.#done(m.id, p);
        return;
      case "whole":
        if (p.kind === "reply") p.resolve({ status: m.status, body: m.body, error: m.error });
        this.#done(m.id, p);
        return;
      case "head": {
        if (p.kind !== "reply") return;
        const s = this.#stream(m.id, p.lane, m.chunk);
        p.resolve({ status: m.status, body: s });
        return;
      }
      case "chunk":
        if (p.kind === "stream") this.#enqueue(m.id, p, m.chunk);
        return;
      case "end":
        if (p.kind === "stream") p.ctl.close();
        this.#done(m.id, p);
        return;
      case "fail":
        this.pool.opts.logger.error("API answer failed while being sent", { err: m.error });
        if (p.kind === "stream") p.ctl.error(new Error(m.error));
        this.#done(m.id, p);
    }
  }

  /** The response body of a streamed answer; each chunk is acknowledged once the client has room for more. */
  #stream(id: number, lane: Lane, first: Uint8Array): ReadableStream<Uint8Array> {
    let entry!: Pending & { kind: "stream" };
    return new ReadableStream<Uint8Array>({
      start: (ctl) => {
        entry = { kind: "stream", lane, ctl, owed: 0 };
        this.pending.set(id, entry);
        this.#enqueue(id, entry, first);
      },
      pull: () => {
        if (entry.owed > 0) {
          entry.owed--;
          this.send({ type: "ack", id });
        }
      },
      cancel: () => {
        if (this.pending.get(id) !== entry) return;
        this.send({ type: "cancel", id });
        this.#done(id, entry);
      },
    }, new CountQueuingStrategy({ highWaterMark: QUEUED_CHUNKS }));
  }

  #enqueue(id: number, p: Pending & { kind: "stream" }, chunk: Uint8Array): void {
    p.ctl.enqueue(chunk);
    if ((p.ctl.desiredSize ?? 0) > 0) this.send({ type: "ack", id });
    else p.owed++;
  }
}

/** The reader threads and the routing of requests to them. */
export class ReadPool implements ApiReader {
  readonly #readers: Reader[];
  #next = 1;
  closed = false;

  /** Starts the reader threads (after the privilege drop: they inherit the process's credentials). */
  constructor(readonly opts: ReadPoolOptions) {
    const size = Math.max(2, opts.size ?? 2);
    this.#readers = Array.from({ length: size }, (_, i) => new Reader(this, i));
  }

  /**
   * Admin requests go to the least busy of readers 1..n-1; users' requests to the least busy reader holding no
   * admin request (reader 0 never holds one), so a user's request never queues behind an admin's query.
   */
  #pick(lane: Lane): Reader {
    const candidates = lane === "admin" ? this.#readers.slice(1) : this.#readers.filter((r) => r.adminActive === 0);
    return candidates.reduce((a, b) => (b.active < a.active ? b : a));
  }

  read(req: ReadRequest, lane: Lane): Promise<ReadReply> {
    if (this.closed) return Promise.resolve({ status: 503, body: INTERNAL_ERROR_BODY, error: "shutting down" });
    const r = this.#pick(lane);
    const id = this.#next++;
    r.active++;
    if (lane === "admin") r.adminActive++;
    return new Promise((resolve) => {
      r.pending.set(id, { kind: "reply", lane, resolve });
      r.send({ type: "req", id, req });
    });
  }

  ping(): Promise<boolean> {
    if (this.closed) return Promise.resolve(false);
    return this.#ask(this.#readers[0], "ping", this.opts.pingTimeoutMs ?? 2000);
  }

  /** Sends `type` to reader `r`; resolves true when it answers within `timeout` ms. */
  #ask(r: Reader, type: "ping" | "close", timeout: number): Promise<boolean> {
    const id = this.#next++;
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        if (r.pending.delete(id)) resolve(false);
      }, timeout);
      r.pending.set(id, {
        kind: "ping",
        resolve: (ok) => {
          clearTimeout(timer);
          resolve(ok);
        },
      });
      r.send({ type, id });
    });
  }

  /**
   * Stops the reader threads; answers in progress are cut short. Each first closes its connection, so that no
   * read lock keeps the writer from emptying the WAL when it closes.
   */
  async close(): Promise<void> {
    this.closed = true;
    await Promise.all(this.#readers.map((r) => this.#ask(r, "close", CLOSE_WAIT_MS)));
    for (const r of this.#readers) r.restart("API server stopping");
  }
}
