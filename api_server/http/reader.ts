// Where the HTTP API's reads run: the interface the request handler calls, and the in-thread reader
// (tests, embedding) that answers on the caller's thread from a ReadQueries.

import type { ReadQueries } from "../storage/read_queries.ts";
import { encodeError } from "./json.ts";
import { answer, type ReadRequest } from "./routes.ts";

/** The body of a 500: the cause goes to the log, not to the client. */
export const INTERNAL_ERROR_BODY = encodeError("internal", "internal server error");

/** Which readers may take a request: any (users) or those that never hold up users' requests (admins). */
export type Lane = "user" | "admin";

/** A read's answer: its status and its body, whole or streamed. */
export interface ReadReply {
  status: number;
  body: string | ReadableStream<Uint8Array>;
  /** The cause of a 500, for the log. */
  error?: string;
}

/** Runs the API's reads. */
export interface ApiReader {
  read(r: ReadRequest, lane: Lane): Promise<ReadReply>;
  /** True when the database answers. */
  ping(): Promise<boolean>;
  close(): void | Promise<void>;
}

/** Answers on the calling thread (a large answer blocks it: for tests and small embeddings). */
export class InlineReader implements ApiReader {
  constructor(readonly db: ReadQueries) {}

  read(r: ReadRequest): Promise<ReadReply> {
    try {
      const a = answer(this.db, r);
      let body = "";
      for (let n = a.body.next(); !n.done; n = a.body.next()) body += n.value;
      return Promise.resolve({ status: a.status, body });
    } catch (e) {
      return Promise.resolve({ status: 500, body: INTERNAL_ERROR_BODY, error: (e as Error).message });
    }
  }

  ping(): Promise<boolean> {
    try {
      return Promise.resolve(this.db.ping());
    } catch {
      return Promise.resolve(false);
    }
  }

  close(): void {}
}
