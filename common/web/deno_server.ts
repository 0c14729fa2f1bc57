// The Deno.serve back end of common/web/server.ts: plain HTTP and TLS without client certificates, with
// basic auth, the configured response headers and a header read deadline; the lighter of the two back ends.

import { type FrontConnection, HEADER_READ_TIMEOUT_MS, HeaderDeadlineFront } from "./header_deadline.ts";
import {
  type BasicAuth,
  parseListenAddress,
  type ServeOptions,
  showAddress,
  unauthorized,
  type WebServer,
  withHeaders,
} from "./server.ts";

/** Listens on `host` ("" = every address: IPv6 dual-stack where the host has IPv6, else IPv4). */
async function listen(
  front: HeaderDeadlineFront,
  host: string,
  port: number,
  opts: ServeOptions,
): Promise<Deno.NetAddr> {
  const tls = opts.webConfig.tls;
  const start = (hostname: string) => front.listen(hostname, port, tls ? { cert: tls.cert, key: tls.key } : undefined);
  if (host) return await start(host);
  try {
    return await start("::");
  } catch (e) {
    // A host without IPv6 cannot bind "::"; Go and node then listen on every IPv4 address.
    if (e instanceof Deno.errors.AddrInUse || (e as { code?: string }).code === "EADDRINUSE") throw e;
    return await start("0.0.0.0");
  }
}

/**
 * The request as the client sent it: https when it came through a TLS listener, and a body watched for its
 * deadline. A request without a body is handed on as it is (its URL shadowed for https): copying it would
 * read `req.signal`, which makes Deno warn about its legacy abort behaviour. A copied request's signal
 * aborts when the client's connection closes.
 */
function asClientSent(req: Request, conn: FrontConnection, completed: Promise<void>): Request {
  const url = conn.tls ? "https:" + req.url.slice(req.url.indexOf(":") + 1) : req.url;
  if (req.body) {
    return new Request(url, {
      method: req.method,
      headers: req.headers,
      body: conn.watchBody(req.body, completed),
      signal: conn.signal,
      // @ts-ignore: required by the Fetch spec for streaming bodies
      duplex: "half",
    });
  }
  if (conn.tls) Object.defineProperty(req, "url", { value: url });
  return req;
}

/**
 * {@link serve} on Deno.serve. Clients connect to {@link HeaderDeadlineFront} listeners, which relay to one
 * internal Deno.serve on a loopback port and enforce the header read deadline Deno.serve lacks.
 */
export async function serveDeno(opts: ServeOptions, auth: BasicAuth): Promise<WebServer> {
  const { webConfig, logger, handler } = opts;
  const extra = webConfig.headers;
  const handle = async (raw: Request, info: Deno.ServeHandlerInfo<Deno.NetAddr>): Promise<Response> => {
    const conn = front.connectionOf(info.remoteAddr);
    // Only relayed connections are served: the client's address and scheme are known for nothing else.
    if (!conn) {
      return new Response("connect to the server's listen address\n", {
        status: 421,
        headers: { connection: "close" },
      });
    }
    conn.requestStarted();
    // The connection is idle again once the response is delivered (or failed), not when the handler returns.
    info.completed.then(() => conn.requestEnded(), () => conn.requestEnded());
    const req = asClientSent(raw, conn, info.completed);
    try {
      const authUser = auth.check(req.headers.get("authorization"));
      if (authUser === false) return withHeaders(unauthorized(), extra);
      const remoteAddr = conn.peer.hostname;
      const reqInfo = authUser ? { remoteAddr, authUser } : { remoteAddr };
      return withHeaders(await handler(req, reqInfo), extra);
    } catch (e) {
      logger.error("request failed", { path: new URL(req.url).pathname, err: e });
      return new Response(null, { status: 500 });
    }
  };
  let innerAddr: Deno.NetAddr | undefined;
  const inner = Deno.serve({
    hostname: "127.0.0.1",
    port: 0,
    onListen: (a) => (innerAddr = a),
    onError: (e: unknown) => {
      logger.error("request failed", { err: e });
      return new Response(null, { status: 500 });
    },
  }, handle);
  // Assigned in the same task as Deno.serve returns, before any connection can be accepted.
  const front = new HeaderDeadlineFront({
    inner: innerAddr ?? inner.addr,
    headerTimeoutMs: opts.headerTimeoutMs ?? HEADER_READ_TIMEOUT_MS,
    idleTimeoutMs: opts.idleTimeoutMs,
    logger,
  });
  const addresses: string[] = [];
  try {
    for (const a of opts.addresses) {
      const { host, port } = parseListenAddress(a);
      const addr = await listen(front, host, port, opts);
      const shown = showAddress(addr.hostname, addr.port);
      addresses.push(shown);
      logger.info("Listening on", { address: shown, http2: !!webConfig.tls, tls: !!webConfig.tls });
    }
  } catch (e) {
    front.stopAccepting();
    await inner.shutdown();
    throw e;
  }
  return {
    addresses,
    async close(graceMs = 5000) {
      // Stop accepting, let in-flight requests finish (bounded), then drop what is left.
      front.stopAccepting();
      let timer: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([inner.shutdown(), new Promise((r) => (timer = setTimeout(r, graceMs)))]);
      clearTimeout(timer);
      front.closeAll();
    },
  };
}
