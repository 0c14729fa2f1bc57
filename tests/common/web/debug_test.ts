// --web.debug-server: V8 heap statistics and a heap snapshot under /debug/, for GET requests from this host
// naming it; any other request gets the 404 of an unknown path, and without the flag nothing is there.

import { isLocalHostHeader, isLoopback } from "../../../common/web/debug.ts";
import { assert, assertEquals } from "../../helpers/assert.ts";
import { startCeems } from "../../helpers/process.ts";

Deno.test("debug endpoints are for loopback peers naming localhost only", () => {
  for (const a of ["127.0.0.1", "127.3.4.5", "::1", "[::1]", "::ffff:127.0.0.1"]) assert(isLoopback(a), a);
  for (const a of ["10.0.0.1", "::ffff:10.0.0.1", "fe80::1", ""]) assert(!isLoopback(a), a);
  for (const h of ["localhost", "localhost:9010", "LOCALHOST", "127.0.0.1:1", "[::1]:9010"]) {
    assert(isLocalHostHeader(h), h);
  }
  for (const h of ["example.com", "localhost.example.com", "10.0.0.1:9010", null]) {
    assert(!isLocalHostHeader(h), String(h));
  }
});

async function checkDebug(base: string): Promise<void> {
  const heap = await fetch(`${base}/debug/heap`);
  assertEquals(heap.status, 200);
  const stats = await heap.json();
  assert(
    stats.heap.used_heap_size > 0 && stats.heap.used_heap_size <= stats.heap.total_heap_size,
    JSON.stringify(stats.heap),
  );
  assert(stats.spaces.some((s: { space_name: string }) => s.space_name === "old_space"));
  assert(stats.memory.rss > stats.heap.used_heap_size);
  const snap = await fetch(`${base}/debug/heap/snapshot`);
  assertEquals(snap.status, 200);
  const parsed = JSON.parse(await snap.text());
  assert(parsed.snapshot.node_count > 1000 && Array.isArray(parsed.nodes), "a V8 heap snapshot");
  // fetch cannot set Host: curl names another host from this one.
  const foreign = await new Deno.Command("curl", {
    args: ["-s", "-w", "%{http_code}", "-H", "Host: ceems.example.com", `${base}/debug/heap`],
    stdout: "piped",
  }).output();
  assertEquals(new TextDecoder().decode(foreign.stdout), "404 page not found\n404");
  const post = await fetch(`${base}/debug/heap`, { method: "POST" });
  assertEquals(post.status, 405);
  await post.body?.cancel();
}

Deno.test("exporter --web.debug-server serves heap statistics and a snapshot; without it /debug/ is 404", async () => {
  const on = await startCeems(["exporter", "--collector.disable-defaults", "--collector.cpu", "--web.debug-server"]);
  try {
    await checkDebug(on.base);
  } finally {
    await on.stop();
  }
  const off = await startCeems(["exporter", "--collector.disable-defaults", "--collector.cpu"]);
  try {
    const r = await fetch(`${off.base}/debug/heap`);
    assertEquals(r.status, 404);
    await r.body?.cancel();
  } finally {
    await off.stop();
  }
});

Deno.test("api --web.debug-server serves the same endpoints, outside the API's user check", async () => {
  const dir = await Deno.makeTempDir();
  await Deno.writeTextFile(`${dir}/c.yml`, `ceems_api_server:\n  data: {path: ${dir}/data}\n`);
  const api = await startCeems(["api", `--config.file=${dir}/c.yml`, "--web.debug-server"]);
  try {
    await checkDebug(api.base);
  } finally {
    await api.stop();
    await Deno.remove(dir, { recursive: true });
  }
});
