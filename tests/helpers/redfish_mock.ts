// A Redfish BMC mock serving recorded JSON bodies with the routes CEEMS's tests used, on a free port,
// with switchable failure modes (HTTP 500, invalid JSON, no answer) for bad-input tests.

import { join } from "node:path";

/** How the mock answers Power requests (`all` modes apply to every route). */
export type RedfishMockMode = "ok" | "500" | "invalid-json" | "hang" | "all-500";

/** A running mock. */
export interface RedfishMock {
  port: number;
  url: string;
  /** Requests seen, as `METHOD path`. */
  requests: string[];
  mode: RedfishMockMode;
  /** Overrides the body of one route file name (e.g. `chassis_1_power.json`). */
  overrides: Map<string, string>;
  close(): Promise<void>;
}

/** The recorded file that answers `path`: root, chassis collection, chassis, chassis power; else the root. */
export function routeFile(path: string): string {
  const p = path.replace(/\/+$/, "");
  if (p === "/redfish/v1/Chassis") return "chassis_collection.json";
  const power = /^\/redfish\/v1\/Chassis\/([^/]+)\/Power$/.exec(p);
  if (power) return `${power[1].toLowerCase().replaceAll("-", "_")}_power.json`;
  const chassis = /^\/redfish\/v1\/Chassis\/([^/]+)$/.exec(p);
  if (chassis) return `${chassis[1].toLowerCase().replaceAll("-", "_")}.json`;
  return "service_root.json";
}

/** Optional authentication the mock enforces (CEEMS's own mock had none: every other path got the root). */
export interface RedfishMockAuth {
  username: string;
  password: string;
  /** Grant session tokens on POST to the Sessions collection; otherwise require basic auth. */
  sessions: boolean;
}

const sessionsPath = "/redfish/v1/SessionService/Sessions";

/** Starts the mock on 127.0.0.1 serving files of `dir`. */
export function startRedfishMock(
  dir: string,
  auth?: RedfishMockAuth,
  tls?: { cert: string; key: string },
): RedfishMock {
  const tokens = new Map<string, string>(); // session path -> token
  let nextSession = 1;
  const hanging: (() => void)[] = [];
  const ac = new AbortController();
  const mock: RedfishMock = {
    port: 0,
    url: "",
    requests: [],
    mode: "ok",
    overrides: new Map(),
    async close() {
      for (const release of hanging.splice(0)) release();
      ac.abort();
      await server.finished;
    },
  };
  const opts = { hostname: "127.0.0.1", port: 0, signal: ac.signal, onListen: () => {}, ...tls };
  const server = Deno.serve(opts, async (req) => {
    const path = new URL(req.url).pathname;
    mock.requests.push(`${req.method} ${path}`);
    if (auth) {
      const denied = checkAuth(req, path);
      if (denied) return denied;
      if (req.method === "DELETE") {
        tokens.delete(path);
        return new Response(null, { status: 204 });
      }
      if (req.method === "POST" && path === sessionsPath) {
        const body = await req.json().catch(() => ({}));
        if (!auth.sessions || body.UserName !== auth.username || body.Password !== auth.password) {
          return new Response("unauthorized", { status: 401 });
        }
        const loc = `${sessionsPath}/${nextSession++}`;
        const token = crypto.randomUUID();
        tokens.set(loc, token);
        return new Response(JSON.stringify({ Id: loc.split("/").pop() }), {
          status: 201,
          headers: { "X-Auth-Token": token, Location: loc, "content-type": "application/json" },
        });
      }
    }
    await req.body?.cancel();
    const file = routeFile(path);
    const isPower = file.endsWith("_power.json");
    if (mock.mode === "all-500" || (mock.mode === "500" && isPower)) {
      return new Response("internal error", { status: 500 });
    }
    if (mock.mode === "invalid-json" && isPower) {
      return new Response('{"PowerControl": [', { headers: { "content-type": "application/json" } });
    }
    if (mock.mode === "hang" && isPower) {
      await new Promise<void>((resolve) => hanging.push(resolve));
      return new Response("released", { status: 503 });
    }
    let body = mock.overrides.get(file);
    if (body === undefined) {
      try {
        body = Deno.readTextFileSync(join(dir, file));
      } catch {
        return new Response("not found", { status: 404 });
      }
    }
    return new Response(body, { headers: { "content-type": "application/json" } });
  });
  function checkAuth(req: Request, path: string): Response | undefined {
    if (!auth || path.replace(/\/+$/, "") === "/redfish/v1" || (req.method === "POST" && path === sessionsPath)) {
      return undefined;
    }
    const token = req.headers.get("x-auth-token");
    if (token && [...tokens.values()].includes(token)) return undefined;
    const basic = "Basic " + btoa(`${auth.username}:${auth.password}`);
    if (!auth.sessions && req.headers.get("authorization") === basic) return undefined;
    return new Response("unauthorized", { status: 401 });
  }
  mock.port = (server.addr as Deno.NetAddr).port;
  mock.url = `${tls ? "https" : "http"}://127.0.0.1:${mock.port}`;
  return mock;
}
