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

/** Starts the mock on 127.0.0.1 serving files of `dir`. */
export function startRedfishMock(dir: string): RedfishMock {
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
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, signal: ac.signal, onListen: () => {} }, async (req) => {
    const path = new URL(req.url).pathname;
    mock.requests.push(`${req.method} ${path}`);
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
  mock.port = (server.addr as Deno.NetAddr).port;
  mock.url = `http://127.0.0.1:${mock.port}`;
  return mock;
}
