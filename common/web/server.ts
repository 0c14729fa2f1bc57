// HTTP(S) server shared by the exporter, the API server and the load balancer: Web-standard
// Request/Response handlers served by Deno.serve, or node:https where client certificates are checked.

import type { Logger } from "../log.ts";
import { serveDeno } from "./deno_server.ts";
import type { TlsServerConfig, WebConfig } from "./web_config.ts";

/** What the server knows of a request besides the request itself. */
export interface RequestInfo {
  remoteAddr: string;
  /** The basic-auth user the web config authenticated, when it has `basic_auth_users`. */
  authUser?: string;
}

/** A request handler in the Fetch API's shape. */
export type Handler = (req: Request, info: RequestInfo) => Response | Promise<Response>;

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

/** The part of bcryptjs that basic auth uses. */
export interface Bcrypt {
  hashSync(password: string, rounds: number): string;
  compareSync(password: string, hash: string): boolean;
}

/** Basic-auth checker with a cache of verified credentials, as exporter-toolkit does (bcrypt is slow). */
export class BasicAuth {
  #ok = new Map<string, string>();
  #dummy?: string;
  /** `bcrypt` is the bcryptjs module, needed only when there are users (it is loaded only then). */
  constructor(private users: Map<string, string>, private bcrypt?: Bcrypt) {
    if (users.size && !bcrypt) throw new Error("BasicAuth: users configured without a bcrypt implementation");
  }

  /**
   * The authenticated user name when the request carries valid credentials, "" when no users are
   * configured (nothing to check), false otherwise.
   */
  check(header: string | null): string | false {
    if (this.users.size === 0) return "";
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
    const bcrypt = this.bcrypt!;
    if (!hash) {
      // Spend the same time as a real comparison so user names cannot be probed.
      this.#dummy ??= bcrypt.hashSync("dummy-password", 10);
      bcrypt.compareSync(pass, this.#dummy);
      return false;
    }
    if (this.#ok.get(user) === decoded) return user;
    const good = bcrypt.compareSync(pass, hash);
    if (!good) return false;
    this.#ok.set(user, decoded);
    return user;
  }
}

/** Options of {@link serve}. */
export interface ServeOptions {
  addresses: string[];
  /**
   * Listening sockets passed by systemd (--web.systemd-socket), served instead of `addresses`; they go
   * through node:http(s), the back end that can adopt a descriptor (Deno.serve cannot).
   */
  fds?: number[];
  webConfig: WebConfig;
  logger: Logger;
  handler: Handler;
  /** Time allowed for a request's headers (default HEADER_READ_TIMEOUT_MS of header_deadline.ts). */
  headerTimeoutMs?: number;
  /** Idle time allowed between a connection's requests (default KEEP_ALIVE_IDLE_MS of header_deadline.ts). */
  idleTimeoutMs?: number;
}

/**
 * Whether the TLS settings need node:https: client certificates (Deno.serve cannot request or verify them)
 * or version bounds other than TLS 1.2–1.3 (the only versions Deno.serve's TLS speaks).
 */
export function needsNodeServer(tls: TlsServerConfig | undefined): boolean {
  if (!tls) return false;
  return tls.clientAuthType !== "NoClientCert" || tls.minVersion !== "TLSv1.2" || tls.maxVersion !== "TLSv1.3";
}

/**
 * Starts the server on every address; resolves once all are listening. Deno.serve serves plain HTTP and
 * TLS; client-certificate authentication, TLS version bounds and sockets passed by systemd go through
 * node:http(s) (loaded only then).
 */
export async function serve(opts: ServeOptions): Promise<WebServer> {
  const users = opts.webConfig.basicAuthUsers;
  const auth = new BasicAuth(users, users.size ? (await import("bcryptjs")).default : undefined);
  if (opts.fds || needsNodeServer(opts.webConfig.tls)) {
    const { serveNode } = await import("./node_server.ts");
    return await serveNode(opts, auth);
  }
  return await serveDeno(opts, auth);
}

/** Copies `extra` headers onto a response (rebuilding it when its headers are immutable, as fetch's are). */
export function withHeaders(resp: Response, extra: Record<string, string>): Response {
  const entries = Object.entries(extra);
  if (entries.length === 0) return resp;
  try {
    for (const [k, v] of entries) resp.headers.set(k, v);
    return resp;
  } catch {
    const headers = new Headers(resp.headers);
    for (const [k, v] of entries) headers.set(k, v);
    return new Response(resp.body, { status: resp.status, statusText: resp.statusText, headers });
  }
}

/** The response of a request without valid basic-auth credentials. */
export function unauthorized(): Response {
  return new Response("Unauthorized\n", { status: 401, headers: { "WWW-Authenticate": "Basic" } });
}

/** host:port as logs and {@link WebServer.addresses} show it ([v6]:port). */
export function showAddress(host: string, port: number): string {
  return host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;
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
