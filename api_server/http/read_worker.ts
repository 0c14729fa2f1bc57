// Reader thread of the API server: answers read requests on its own read-only SQLite connection and sends
// each body in slices (at most 64 KiB or 4 ms of work each, a few unacknowledged), interleaving requests.

/// <reference lib="deno.worker" />

import { DatabaseSync } from "node:sqlite";
import { ReadQueries } from "../storage/read_queries.ts";
import { niceThread } from "../../ffi/libc.ts";
import { INTERNAL_ERROR_BODY } from "./reader.ts";
import { answer, type ReadRequest } from "./routes.ts";

/** First message: the database and how long SQLite may wait on a lock. */
export interface ReadWorkerInit {
  dbPath: string;
  busyTimeoutMs: number;
  /** Nice value of this thread (admin readers give way to users' reader when they compete for a CPU). */
  nice: number;
}

/** Messages to a reader thread. */
export type ToReader =
  | { type: "req"; id: number; req: ReadRequest }
  | { type: "ack"; id: number }
  | { type: "cancel"; id: number }
  | { type: "ping"; id: number }
  | { type: "close"; id: number };

/** Messages from a reader thread: an answer whole, or head, chunks and end (or fail mid-way). */
export type FromReader =
  | { type: "whole"; id: number; status: number; body: string; error?: string }
  | { type: "head"; id: number; status: number; chunk: Uint8Array }
  | { type: "chunk"; id: number; chunk: Uint8Array }
  | { type: "end"; id: number }
  | { type: "fail"; id: number; error: string }
  | { type: "pong"; id: number; ok: boolean; error?: string }
  | { type: "closed"; id: number };

/** A slice of a body is sent once it reaches this size... */
const SLICE_BYTES = 64 * 1024;
/** ...or took this long to produce, so that requests sharing this thread wait at most about this long. */
const SLICE_MS = 4;
/** Slices sent and not yet taken by the client before this body's production pauses. */
const WINDOW = 4;

let init: ReadWorkerInit | undefined;
let queries: ReadQueries | undefined;
const tasks = new Map<number, { outstanding: number; cancelled: boolean; wake?: () => void }>();
const enc = new TextEncoder();

function db(): ReadQueries {
  if (!queries) {
    const conn = new DatabaseSync(init!.dbPath, { readOnly: true });
    conn.exec(`PRAGMA busy_timeout = ${Math.max(0, Math.floor(init!.busyTimeoutMs))}`);
    queries = new ReadQueries(conn);
  }
  return queries;
}

const post = (m: FromReader, transfer: Transferable[] = []) => self.postMessage(m, transfer);

// Yields to this thread's event loop without timer clamping, so other requests and acks get their turn.
const channel = new MessageChannel();
const waiting: (() => void)[] = [];
channel.port1.onmessage = () => waiting.shift()?.();
const yieldNow = () =>
  new Promise<void>((r) => {
    waiting.push(r);
    channel.port2.postMessage(0);
  });

/** Takes body pieces until a slice is full or its time is up. */
function slice(body: Iterator<string>): { text: string; done: boolean } {
  const t0 = performance.now();
  let text = "";
  for (let i = 1;; i++) {
    const n = body.next();
    if (n.done) return { text, done: true };
    text += n.value;
    if (text.length >= SLICE_BYTES || ((i & 15) === 0 && performance.now() - t0 >= SLICE_MS)) {
      return { text, done: false };
    }
  }
}

async function serve(id: number, req: ReadRequest): Promise<void> {
  const task: { outstanding: number; cancelled: boolean; wake?: () => void } = { outstanding: 0, cancelled: false };
  tasks.set(id, task);
  let started = false;
  let body: Iterator<string> | undefined;
  try {
    const a = answer(db(), req);
    body = a.body;
    for (;;) {
      const s = slice(body);
      if (!started && s.done) {
        post({ type: "whole", id, status: a.status, body: s.text });
        return;
      }
      const chunk = enc.encode(s.text);
      post(started ? { type: "chunk", id, chunk } : { type: "head", id, status: a.status, chunk }, [chunk.buffer]);
      started = true;
      if (s.done) {
        post({ type: "end", id });
        return;
      }
      task.outstanding++;
      while (task.outstanding >= WINDOW && !task.cancelled) await new Promise<void>((r) => (task.wake = r));
      if (!task.cancelled) await yieldNow();
      if (task.cancelled) {
        body.return?.();
        return;
      }
    }
  } catch (e) {
    const error = (e as Error).message;
    if (started) post({ type: "fail", id, error });
    else post({ type: "whole", id, status: 500, body: INTERNAL_ERROR_BODY, error });
    try {
      body?.return?.();
    } catch { /* already failed */ }
  } finally {
    tasks.delete(id);
  }
}

self.onmessage = (e: MessageEvent<ReadWorkerInit | ToReader>) => {
  if (!init) {
    init = e.data as ReadWorkerInit;
    try {
      if (init.nice) niceThread(init.nice);
    } catch { /* no per-thread priority here */ }
    return;
  }
  const m = e.data as ToReader;
  switch (m.type) {
    case "req":
      void serve(m.id, m.req);
      return;
    case "ack":
    case "cancel": {
      const t = tasks.get(m.id);
      if (!t) return;
      if (m.type === "ack") t.outstanding--;
      else t.cancelled = true;
      t.wake?.();
      t.wake = undefined;
      return;
    }
    case "ping":
      try {
        post({ type: "pong", id: m.id, ok: db().ping() });
      } catch (err) {
        post({ type: "pong", id: m.id, ok: false, error: (err as Error).message });
      }
      return;
    case "close":
      void close().then(() => post({ type: "closed", id: m.id }));
  }
};

/** Ends every answer in progress and closes the connection, releasing its read lock (the writer then empties the WAL). */
async function close(): Promise<void> {
  for (const t of tasks.values()) {
    t.cancelled = true;
    t.wake?.();
  }
  while (tasks.size) await yieldNow();
  queries?.clear();
  try {
    queries?.db.close();
  } catch { /* already closed */ }
  queries = undefined;
}
