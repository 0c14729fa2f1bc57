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
import { HEADER_READ_TIMEOUT_MS, KEEP_ALIVE_IDLE_MS } from "./header_deadline.ts";

type NodeSocket = import("node:net").Socket & { _parent?: import("node:net").Socket };

/**
 * Per-socket deadlines for request headers: a socket whose headers are late is destroyed. This back end
 * cannot see a request's first byte, so a kept-alive connection's next request is due within the idle
 * limit plus the header timeout of the previous response.
 */
class SocketDeadlines {
  #timers = new Map<NodeSocket, ReturnType<typeof setTimeout>>();
  #active = new Map<NodeSocket, number>();

  /** A request on `sock` has its headers: nothing is timed until its last response is done. */
  started(sock: NodeSocket): void {
    this.#active.set(sock, (this.#active.get(sock) ?? 0) + 1);
    this.disarm(sock);
    this.disarm(sock._parent);
  }

  /** A response on `sock` is done: with none left, the next request's headers are due within `ms`. */
  finished(sock: NodeSocket, ms: number): void {
    const left = (this.#active.get(sock) ?? 1) - 1;
    if (left > 0) return void this.#active.set(sock, left);
    this.#active.delete(sock);
    this.arm(sock, ms);
  }

  arm(sock: NodeSocket, ms: number): void {
    this.disarm(sock);
    if (sock.destroyed) return;
    this.#timers.set(
      sock,
      setTimeout(() => {
        this.#timers.delete(sock);
        sock.destroy();
      }, ms),
    );
  }

  disarm(sock: NodeSocket | undefined): void {
    if (!sock) return;
    if (sock.destroyed) this.#active.delete(sock);
    const t = this.#timers.get(sock);
    if (t === undefined) return;
    clearTimeout(t);
    this.#timers.delete(sock);
  }
}

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
  const headerMs = opts.headerTimeoutMs ?? HEADER_READ_TIMEOUT_MS;
  const idleMs = opts.idleTimeoutMs ?? KEEP_ALIVE_IDLE_MS;
  const deadlines = new SocketDeadlines();
  let active = 0;
  const sockets = new Set<import("node:net").Socket>();
  const listener = async (req: http.IncomingMessage, res: http.ServerResponse) => {
    active++;
    // The headers are in: the socket's deadline stops (on a TLS socket, its TCP socket's too).
    const sock = req.socket as NodeSocket;
    deadlines.started(sock);
    res.once("close", () => deadlines.finished(sock, idleMs + headerMs));
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
    server.on(tls ? "secureConnection" : "connection", (sock: NodeSocket) => {
      sockets.add(sock);
      sock.on("close", () => {
        sockets.delete(sock);
        deadlines.disarm(sock);
      });
    });
    // The first request's headers are due within the header timeout of the TCP connection (its TLS handshake
    // included, then the timeout again from the handshake's end); Deno's node:http ignores headersTimeout.
    server.on("connection", (sock: NodeSocket) => {
      deadlines.arm(sock, headerMs);
      sock.on("close", () => deadlines.disarm(sock));
    });
    if (tls) {
      server.on("secureConnection", (sock: NodeSocket) => {
        deadlines.disarm(sock._parent);
        deadlines.arm(sock, headerMs);
      });
    }
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
