// The node:http(s) back end of common/web/server.ts, for what Deno.serve cannot do: request and verify
// client certificates, bound TLS versions, serve on sockets systemd passed. Loaded only when needed.

import http from "node:http";
import https from "node:https";
import type { AddressInfo } from "node:net";
import { Readable } from "node:stream";
import {
  type BasicAuth,
  parseListenAddress,
  type ServeOptions,
  showAddress,
  unauthorized,
  type WebServer,
} from "./server.ts";

function toRequest(req: http.IncomingMessage, tls: boolean, signal: AbortSignal): Request {
  const host = req.headers.host ?? "localhost";
  const url = `${tls ? "https" : "http"}://${host}${req.url ?? "/"}`;
  const headers = new Headers();
  for (let i = 0; i < req.rawHeaders.length; i += 2) {
    headers.append(req.rawHeaders[i], req.rawHeaders[i + 1]);
  }
  const hasBody = req.method !== "GET" && req.method !== "HEAD";
  return new Request(url, {
    method: req.method,
    headers,
    body: hasBody ? (Readable.toWeb(req) as unknown as ReadableStream<Uint8Array>) : undefined,
    signal,
    // @ts-ignore: required by the Fetch spec for streaming bodies
    duplex: "half",
  });
}

async function writeResponse(res: http.ServerResponse, resp: Response, extra: Record<string, string>) {
  const headers: Record<string, string | string[]> = {};
  resp.headers.forEach((v, k) => {
    if (k === "set-cookie") return;
    headers[k] = v;
  });
  const cookies = resp.headers.getSetCookie();
  if (cookies.length) headers["set-cookie"] = cookies;
  for (const [k, v] of Object.entries(extra)) headers[k] = v;
  res.writeHead(resp.status, resp.statusText || undefined, headers);
  if (!resp.body) {
    res.end();
    return;
  }
  const reader = resp.body.getReader();
  try {
    while (true) {
      const { done, value } = await reader.read();
      if (done) break;
      if (!res.write(value)) await new Promise((r) => res.once("drain", r));
    }
  } finally {
    res.end();
  }
}

/** {@link serve} on node:http(s): used where client certificates are requested or TLS versions bounded. */
export async function serveNode(opts: ServeOptions, auth: BasicAuth): Promise<WebServer> {
  const { webConfig, logger, handler } = opts;
  const tls = webConfig.tls;
  let active = 0;
  const sockets = new Set<import("node:net").Socket>();
  const listener = async (req: http.IncomingMessage, res: http.ServerResponse) => {
    active++;
    const ac = new AbortController();
    res.on("close", () => {
      active--;
      ac.abort();
    });
    try {
      if (tls?.clientAuthType === "RequireAnyClientCert") {
        // deno-lint-ignore no-explicit-any
        const peer = (req.socket as any).getPeerCertificate?.();
        if (!peer || Object.keys(peer).length === 0) {
          await writeResponse(res, new Response("client certificate required\n", { status: 403 }), webConfig.headers);
          return;
        }
      }
      const authUser = auth.check(req.headers.authorization ?? null);
      if (authUser === false) {
        await writeResponse(res, unauthorized(), webConfig.headers);
        return;
      }
      const request = toRequest(req, !!tls, ac.signal);
      const remoteAddr = req.socket.remoteAddress ?? "";
      const resp = await handler(request, authUser ? { remoteAddr, authUser } : { remoteAddr });
      await writeResponse(res, resp, webConfig.headers);
    } catch (e) {
      logger.error("request failed", { path: req.url, err: e });
      if (!res.headersSent) {
        res.writeHead(500, { "content-type": "text/plain" });
      }
      res.end();
    }
  };
  const servers: http.Server[] = [];
  const addresses: string[] = [];
  // Either the listen addresses, or the descriptors systemd passed (--web.systemd-socket), never both.
  const targets: ({ fd: number } | { host: string; port: number })[] = opts.fds
    ? opts.fds.map((fd) => ({ fd }))
    : opts.addresses.map(parseListenAddress);
  for (const target of targets) {
    const server = tls
      ? https.createServer({
        cert: tls.cert,
        key: tls.key,
        ca: tls.clientCa,
        requestCert: tls.clientAuthType !== "NoClientCert",
        rejectUnauthorized: tls.clientAuthType === "RequireAndVerifyClientCert",
        minVersion: tls.minVersion,
        maxVersion: tls.maxVersion,
      }, listener)
      : http.createServer(listener);
    server.on(tls ? "secureConnection" : "connection", (sock: import("node:net").Socket) => {
      sockets.add(sock);
      sock.on("close", () => sockets.delete(sock));
    });
    server.keepAliveTimeout = 5000;
    server.headersTimeout = 10000;
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      const done = () => {
        server.off("error", reject);
        resolve();
      };
      if ("fd" in target) server.listen({ fd: target.fd }, done);
      else server.listen(target.port, target.host || undefined, done);
    });
    const a = server.address() as AddressInfo | string | null;
    const shown = typeof a === "string"
      ? a
      : a
      ? showAddress(a.address, a.port)
      : `fd ${"fd" in target ? target.fd : "?"}`;
    addresses.push(shown);
    logger.info("Listening on", {
      address: shown,
      http2: false,
      tls: !!tls,
      ...("fd" in target ? { systemd_socket_fd: target.fd } : {}),
    });
    servers.push(server);
  }
  return {
    addresses,
    async close(graceMs = 5000) {
      const closed = Promise.all(servers.map((s) => new Promise<void>((r) => s.close(() => r()))));
      // Let in-flight requests finish (bounded), then drop idle keep-alive connections.
      const deadline = Date.now() + graceMs;
      while (active > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      for (const sock of sockets) sock.destroy();
      await Promise.race([closed, new Promise((r) => setTimeout(r, 1000))]);
    },
  };
}
