// --web.debug-server: CEEMS serves Go's /debug/pprof there; ceems serves the V8 runtime's equivalents under
// /debug/ (heap statistics, a heap snapshot), to GET requests from the same host only.

import type { RequestInfo } from "./server.ts";

/** The part of node:v8 the endpoints use (loaded only when the flag is on). */
export interface V8Api {
  getHeapStatistics(): object;
  getHeapSpaceStatistics(): object[];
  getHeapSnapshot(): AsyncIterable<Uint8Array | string>;
}

/** Paths served, with what each answers (the index page lists them). */
export const DEBUG_PATHS: Record<string, string> = {
  "/debug/heap": "V8 heap statistics, heap spaces and the process's memory use (JSON)",
  "/debug/heap/snapshot": "a V8 heap snapshot (.heapsnapshot, for Chrome DevTools' Memory tab)",
};

/** Whether a peer address is this host's (IPv4 127/8, ::1, or IPv4-mapped loopback). */
export function isLoopback(addr: string): boolean {
  const a = addr.replace(/^\[|\]$/g, "");
  return a === "::1" || /^(::ffff:)?127\./.test(a);
}

/** Whether a Host header names this host (localhost, 127.0.0.1 or [::1], any port), as CEEMS's Host("localhost"). */
export function isLocalHostHeader(host: string | null): boolean {
  if (!host) return false;
  const name = host.startsWith("[") ? host.slice(0, host.indexOf("]") + 1) : host.replace(/:\d+$/, "");
  return ["localhost", "127.0.0.1", "[::1]"].includes(name.toLowerCase());
}

/**
 * The debug endpoints' handler: a Response for a path under /debug/, undefined for any other path. Requests
 * from another host, or naming another host, get the same 404 as an unknown path (nothing to discover).
 */
export function debugHandler(v8: V8Api): (req: Request, info: RequestInfo) => Response | undefined {
  return (req, info) => {
    const path = new URL(req.url).pathname;
    if (path !== "/debug" && !path.startsWith("/debug/")) return undefined;
    if (!isLoopback(info.remoteAddr) || !isLocalHostHeader(req.headers.get("host"))) {
      return new Response("404 page not found\n", { status: 404 });
    }
    if (req.method !== "GET" && req.method !== "HEAD") {
      return new Response("405 method not allowed\n", { status: 405, headers: { Allow: "GET, HEAD" } });
    }
    if (path === "/debug/heap") {
      const body = {
        heap: v8.getHeapStatistics(),
        spaces: v8.getHeapSpaceStatistics(),
        memory: Deno.memoryUsage(),
      };
      return Response.json(body);
    }
    if (path === "/debug/heap/snapshot") {
      const chunks = v8.getHeapSnapshot()[Symbol.asyncIterator]();
      const enc = new TextEncoder();
      const body = new ReadableStream<Uint8Array>({
        async pull(c) {
          const n = await chunks.next();
          if (n.done) c.close();
          else c.enqueue(typeof n.value === "string" ? enc.encode(n.value) : n.value);
        },
      });
      return new Response(body, {
        headers: {
          "Content-Type": "application/octet-stream",
          "Content-Disposition": `attachment; filename="ceems-${Deno.pid}.heapsnapshot"`,
        },
      });
    }
    if (path === "/debug" || path === "/debug/") {
      const lines = Object.entries(DEBUG_PATHS).map(([p, what]) => `${p}\t${what}`);
      return new Response(lines.join("\n") + "\n", { headers: { "Content-Type": "text/plain; charset=utf-8" } });
    }
    return new Response("404 page not found\n", { status: 404 });
  };
}

/** The debug handler with node:v8 loaded (only called when --web.debug-server is on). */
export async function loadDebugHandler(): Promise<ReturnType<typeof debugHandler>> {
  const v8 = await import("node:v8");
  return debugHandler(v8.default as unknown as V8Api);
}
