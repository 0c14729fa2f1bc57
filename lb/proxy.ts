// Forwards an already-checked request to a live backend of a cluster: fresh headers (client
// credentials never pass), backend credentials from the config, retry on connection errors, streaming.

import type { Backend } from "./backend.ts";
import type { ServerPool } from "./pool.ts";
import type { PickContext } from "./strategies.ts";

/** Client request headers passed on to backends; everything else (Authorization, cookies, ids) is dropped. */
const FORWARDED_REQUEST_HEADERS = [
  "accept",
  "content-type",
  "connect-protocol-version",
  "connect-timeout-ms",
  "user-agent",
];

/** Answers up to this size with a Content-Length are read whole; anything else is streamed. */
const SMALL_BODY_BYTES = 64 * 1024;

/** Response headers never copied back (hop-by-hop). */
const HOP_BY_HOP = new Set(["connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade"]);

/** What to send to the backend. */
export interface OutgoingRequest {
  method: string;
  /** Path and query string, e.g. `/api/v1/query?query=...`. */
  pathAndQuery: string;
  body?: Uint8Array | string;
  clientHeaders: Headers;
  signal?: AbortSignal;
  pick?: PickContext;
  /** Rewrites the chosen backend's answer (filter_labels). */
  rewrite?: (backend: Backend, resp: Response) => Promise<Response>;
}

/** JSON error in Prometheus's envelope. */
export function promError(status: number, errorType: string, error: string): Response {
  return new Response(JSON.stringify({ status: "error", data: null, errorType, error }) + "\n", {
    status,
    headers: { "content-type": "application/json", "x-content-type-options": "nosniff" },
  });
}

/** Wraps a body so `done` runs once it has been read to the end, cancelled or failed. */
function trackBody(body: ReadableStream<Uint8Array>, done: () => void): ReadableStream<Uint8Array> {
  const reader = body.getReader();
  let finished = false;
  const finish = () => {
    if (!finished) {
      finished = true;
      done();
    }
  };
  return new ReadableStream<Uint8Array>({
    async pull(ctrl) {
      try {
        const { done: end, value } = await reader.read();
        if (end) {
          finish();
          ctrl.close();
        } else ctrl.enqueue(value);
      } catch (e) {
        finish();
        ctrl.error(e);
      }
    },
    cancel(reason) {
      finish();
      return reader.cancel(reason);
    },
  }, { highWaterMark: 0 });
}

async function sendTo(b: Backend, req: OutgoingRequest): Promise<Response> {
  const headers = new Headers();
  for (const name of FORWARDED_REQUEST_HEADERS) {
    const v = req.clientHeaders.get(name);
    if (v !== null) headers.set(name, v);
  }
  headers.set("accept-encoding", "identity");
  return await b.client.fetch(b.config.url + req.pathAndQuery, {
    method: req.method,
    headers,
    body: req.body as BodyInit | undefined,
    signal: req.signal,
    redirect: "manual",
  });
}

/**
 * Sends `req` to a live backend of cluster `id`; on a connection error marks that backend dead and
 * tries another. 503 when none is alive.
 */
export async function forward(pool: ServerPool, id: string, req: OutgoingRequest): Promise<Response> {
  const tried = new Set<Backend>();
  while (true) {
    const b = pool.pick(id, { ...req.pick, exclude: tried });
    if (!b) {
      return new Response("Service not available\n", { status: 503, headers: { "content-type": "text/plain" } });
    }
    tried.add(b);
    b.active++;
    let resp: Response;
    try {
      resp = await sendTo(b, req);
    } catch (e) {
      b.active--;
      if (req.signal?.aborted) throw e;
      b.alive = false;
      pool.logger.error("Backend request failed, marked down", { backend: b.toString(), err: e });
      continue;
    }
    const headers = new Headers();
    resp.headers.forEach((v, k) => {
      if (!HOP_BY_HOP.has(k)) headers.append(k, v);
    });
    const length = Number(resp.headers.get("content-length") ?? NaN);
    if (resp.body && length <= SMALL_BODY_BYTES) {
      // Small answers of known size are read in one go (cheaper than chunk-by-chunk); larger ones stream.
      let out: Response;
      try {
        const bytes = new Uint8Array(await resp.arrayBuffer());
        out = new Response(bytes, { status: resp.status, statusText: resp.statusText, headers });
      } finally {
        b.active--;
      }
      return req.rewrite ? await req.rewrite(b, out) : out;
    }
    const body = resp.body ? trackBody(resp.body, () => b.active--) : null;
    if (!resp.body) b.active--;
    const out = new Response(body, { status: resp.status, statusText: resp.statusText, headers });
    return req.rewrite ? await req.rewrite(b, out) : out;
  }
}
