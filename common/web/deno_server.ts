// The Deno.serve back end of common/web/server.ts: plain HTTP and TLS without client certificates, with
// basic auth and the configured response headers; the lighter and faster of the two back ends.

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
function listen(
  host: string,
  port: number,
  opts: ServeOptions,
  handle: Deno.ServeHandler<Deno.NetAddr>,
): { server: Deno.HttpServer<Deno.NetAddr>; addr: Deno.NetAddr } {
  const tls = opts.webConfig.tls;
  const start = (hostname: string) => {
    let addr: Deno.NetAddr | undefined;
    const common = {
      hostname,
      port,
      onListen: (a: Deno.NetAddr) => (addr = a),
      onError: (e: unknown) => {
        opts.logger.error("request failed", { err: e });
        return new Response(null, { status: 500 });
      },
    };
    const server = tls ? Deno.serve({ ...common, cert: tls.cert, key: tls.key }, handle) : Deno.serve(common, handle);
    return { server, addr: addr ?? server.addr };
  };
  if (host) return start(host);
  try {
    return start("::");
  } catch (e) {
    // A host without IPv6 cannot bind "::"; Go and node then listen on every IPv4 address.
    if (e instanceof Deno.errors.AddrInUse) throw e;
    return start("0.0.0.0");
  }
}

/** {@link serve} on Deno.serve. */
export function serveDeno(opts: ServeOptions, auth: BasicAuth): Promise<WebServer> {
  const { webConfig, logger, handler } = opts;
  const extra = webConfig.headers;
  const handle = async (req: Request, info: Deno.ServeHandlerInfo<Deno.NetAddr>): Promise<Response> => {
    try {
      const authUser = auth.check(req.headers.get("authorization"));
      if (authUser === false) return withHeaders(unauthorized(), extra);
      const reqInfo = authUser
        ? { remoteAddr: info.remoteAddr.hostname, authUser }
        : { remoteAddr: info.remoteAddr.hostname };
      return withHeaders(await handler(req, reqInfo), extra);
    } catch (e) {
      logger.error("request failed", { path: new URL(req.url).pathname, err: e });
      return new Response(null, { status: 500 });
    }
  };
  const servers: Deno.HttpServer<Deno.NetAddr>[] = [];
  const addresses: string[] = [];
  try {
    for (const a of opts.addresses) {
      const { host, port } = parseListenAddress(a);
      const { server, addr } = listen(host, port, opts, handle);
      servers.push(server);
      const shown = showAddress(addr.hostname, addr.port);
      addresses.push(shown);
      logger.info("Listening on", { address: shown, http2: !!webConfig.tls, tls: !!webConfig.tls });
    }
  } catch (e) {
    for (const s of servers) s.shutdown();
    return Promise.reject(e);
  }
  return Promise.resolve({
    addresses,
    async close(graceMs = 5000) {
      // shutdown() stops accepting and waits for in-flight requests; bound the wait.
      let timer: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([
        Promise.all(servers.map((s) => s.shutdown())),
        new Promise((r) => (timer = setTimeout(r, graceMs))),
      ]);
      clearTimeout(timer);
    },
  });
}
