// HTTP(S) server shared by the exporter, the API server and the load balancer: Web-standard
// Request/Response handlers on node:http(s) (which, unlike Deno.serve, verifies client certificates).

import http from "node:http";
import https from "node:https";
import type { AddressInfo } from "node:net";
import { Readable } from "node:stream";
import bcrypt from "bcryptjs";
import type { Logger } from "../log.ts";
import type { WebConfig } from "./web_config.ts";

/** A request handler in the Fetch API's shape. */
export type Handler = (req: Request, info: { remoteAddr: string }) => Response | Promise<Response>;

/** A running server on one or more addresses. */
export interface WebServer {
  /** Bound addresses as host:port, in the order given. */
  addresses: string[];
  /** Stops accepting connections and waits for in-flight requests (at most `graceMs`). */
  close(graceMs?: number): Promise<void>;
}

/** Splits a Go-style listen address (":9010", "127.0.0.1:9010", "[::1]:9010") into host and port. */
export function parseListenAddress(addr: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d{1,5})$/.exec(addr);
  if (!m) throw new Error(`invalid listen address "${addr}"`);
  const port = Number(m[3]);
  if (port > 65535) throw new Error(`invalid port in listen address "${addr}"`);
  return { host: m[1] ?? m[2] ?? "", port };
}

/** Basic-auth checker with a cache of verified credentials, as exporter-toolkit does (bcrypt is slow). */
export class BasicAuth {
  #ok = new Map<string, string>();
  #dummy?: string;
  constructor(private users: Map<string, string>) {}

  /** True when the request carries valid credentials or no users are configured. */
  check(header: string | null): boolean {
    if (this.users.size === 0) return true;
    if (!header || !header.startsWith("Basic ")) return false;
    let decoded: string;
    try {
      decoded = atob(header.slice(6).trim());
    } catch {
      return false;
    }
    const i = decoded.indexOf(":");
    if (i < 0) return false;
    const user = decoded.slice(0, i);
    const pass = decoded.slice(i + 1);
    const hash = this.users.get(user);
    if (!hash) {
      // Spend the same time as a real comparison so user names cannot be probed.
      this.#dummy ??= bcrypt.hashSync("dummy-password", 10);
      bcrypt.compareSync(pass, this.#dummy);
      return false;
    }
    if (this.#ok.get(user) === decoded) return true;
    const good = bcrypt.compareSync(pass, hash);
    if (good) this.#ok.set(user, decoded);
    return good;
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

/** Options of {@link serve}. */
export interface ServeOptions {
  addresses: string[];
  webConfig: WebConfig;
  logger: Logger;
  handler: Handler;
}

/** Starts the server on every address; resolves once all are listening. */
export async function serve(opts: ServeOptions): Promise<WebServer> {
  const { webConfig, logger, handler } = opts;
  const auth = new BasicAuth(webConfig.basicAuthUsers);
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
      if (!auth.check(req.headers.authorization ?? null)) {
        await writeResponse(
          res,
          new Response("Unauthorized\n", { status: 401, headers: { "WWW-Authenticate": "Basic" } }),
          webConfig.headers,
        );
        return;
      }
      const request = toRequest(req, !!tls, ac.signal);
      const resp = await handler(request, { remoteAddr: req.socket.remoteAddress ?? "" });
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
  for (const addr of opts.addresses) {
    const { host, port } = parseListenAddress(addr);
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
      server.listen(port, host || undefined, () => {
        server.off("error", reject);
        resolve();
      });
    });
    const a = server.address() as AddressInfo;
    const shown = a.family === "IPv6" ? `[${a.address}]:${a.port}` : `${a.address}:${a.port}`;
    addresses.push(shown);
    logger.info("Listening on", { address: shown, http2: false, tls: !!tls });
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

/** A small HTML landing page linking to the given paths, like exporter-toolkit's. */
export function landingPage(name: string, description: string, version: string, links: [string, string][]) {
  const items = links.map(([href, text]) => `<li><a href="${href}">${text}</a></li>`).join("\n");
  const body = `<!DOCTYPE html>
<html lang="en">
<head><meta charset="UTF-8"><title>${name}</title>
<style>body{font-family:sans-serif;margin:0}header{background:#3cc9beff;padding:1em}main{padding:1em}</style>
</head>
<body>
<header><h1>${name}</h1></header>
<main>
<h2>${description}</h2>
<div>Version: ${version}</div>
<ul>
${items}
</ul>
</main>
</body>
</html>
`;
  return new Response(body, { headers: { "content-type": "text/html; charset=UTF-8" } });
}
