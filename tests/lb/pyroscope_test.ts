// Tests of the Pyroscope load balancer: protobuf and JSON Connect bodies of SelectMergeStacktraces,
// LabelNames and LabelValues are checked on service_name before reaching the backend unchanged.

import { assert, assertEquals, assertThrows } from "../helpers/assert.ts";
import { nullLogger } from "../../common/log.ts";
import { serve } from "../../common/web/server.ts";
import { emptyWebConfig } from "../../common/web/web_config.ts";
import { pyroscopeHandler } from "../../lb/frontend.ts";
import { CachedOwnership } from "../../lb/ownership.ts";
import { ServerPool } from "../../lb/pool.ts";
import { PYROSCOPE_METHODS, pyroscopeSelectors, splitProto } from "../../lb/pyroscope.ts";
import { ADMIN, CLUSTER, ownershipOnRunningApi } from "./fixtures.ts";

/** Minimal protobuf writer for the tests: varint and length-delimited fields. */
function varint(n: number): number[] {
  const out: number[] = [];
  while (n >= 0x80) {
    out.push((n % 128) | 0x80);
    n = Math.floor(n / 128);
  }
  out.push(n);
  return out;
}
function strField(field: number, s: string): number[] {
  const b = new TextEncoder().encode(s);
  return [...varint(field * 8 + 2), ...varint(b.length), ...b];
}
function intField(field: number, n: number): number[] {
  return [...varint(field * 8), ...varint(n)];
}
const msg = (...parts: number[][]) => new Uint8Array(parts.flat());

/**
 * A string field numbered 2^32+1 holding an unconstrained matcher: Go's generated decoder truncates the number
 * to 32 bits and reads field 1, a matcher of LabelNames. The LB must refuse it, not copy an "unknown" field along.
 */
const SMUGGLED_MATCHER = [
  ...[0x8a, 0x80, 0x80, 0x80, 0x80, 0x01],
  ...varint(20),
  ...new TextEncoder().encode('{service_name=~".+"}'),
];

const SMS = "/querier.v1.QuerierService/SelectMergeStacktraces";
const NAMES = "/querier.v1.QuerierService/LabelNames";
const VALUES = "/querier.v1.QuerierService/LabelValues";

Deno.test("splitProto reads the selector field and refuses any field the request does not define", () => {
  const spec = PYROSCOPE_METHODS[SMS];
  const body = msg(
    strField(1, "process_cpu:cpu:nanoseconds:cpu:nanoseconds"),
    strField(2, '{service_name="1001"}'),
    intField(3, 1_700_000_000_000),
    intField(4, 1_700_000_360_000),
  );
  assertEquals(splitProto(body, spec).values, ['{service_name="1001"}']);
  assertEquals(splitProto(body, spec).rest.length, 3);
  assertThrows(() => splitProto(new Uint8Array([0x12, 0x05, 0x41]), spec), /truncated/);
  assertThrows(() => splitProto(msg(intField(2, 5)), spec), /wrong wire type/);
  assertThrows(() => splitProto(new Uint8Array([0x0b]), spec), /wrong wire type/);
  assertThrows(() => splitProto(msg(strField(9, "x")), spec), /field 9 is not accepted/);
  const smuggled = SMUGGLED_MATCHER;
  const names = PYROSCOPE_METHODS[NAMES];
  assertThrows(() => splitProto(msg(strField(1, '{service_name="1001"}'), smuggled), names), /invalid field key/);
  // A non-minimal key of 6 bytes for field 1, a 35-bit key, the largest field number: refused too.
  assertThrows(
    () => splitProto(new Uint8Array([0x8a, 0x80, 0x80, 0x80, 0x80, 0x00, 0x00]), names),
    /invalid field key/,
  );
  assertThrows(() => splitProto(new Uint8Array([0xfa, 0xff, 0xff, 0xff, 0x1f, 0x00]), names), /invalid field key/);
  assertThrows(() => splitProto(new Uint8Array([0xfa, 0xff, 0xff, 0xff, 0x0f, 0x00]), names), /not accepted/);
});

Deno.test("pyroscopeSelectors reads proto and JSON bodies of the three methods", () => {
  assertEquals(
    pyroscopeSelectors(VALUES, "application/proto", msg(strField(1, "span"), strField(2, '{service_name="1"}')))
      .selectors,
    ['{service_name="1"}'],
  );
  assertEquals(
    pyroscopeSelectors(NAMES, "application/json", new TextEncoder().encode('{"matchers":["{a=\\"b\\"}"]}')).selectors,
    ['{a="b"}'],
  );
  assertEquals(
    pyroscopeSelectors(
      SMS,
      "application/json; charset=utf-8",
      new TextEncoder().encode('{"label_selector":"{x}"}'),
    )
      .selectors,
    ["{x}"],
  );
  // Both spellings of the field at once: which one Pyroscope reads is not ours to guess.
  assertThrows(
    () =>
      pyroscopeSelectors(
        SMS,
        "application/json",
        new TextEncoder().encode('{"labelSelector":"{x}","label_selector":"{y}"}'),
      ),
    /only one of/,
  );
  // A singular selector field repeated in protobuf (the last one wins in Pyroscope): refused.
  assertThrows(
    () => pyroscopeSelectors(SMS, "application/proto", msg(strField(2, "{a}"), strField(2, "{b}"))),
    /more than once/,
  );
  assertThrows(() => pyroscopeSelectors(SMS, "application/grpc", new Uint8Array()), /unsupported content type/);
  assertThrows(
    () => pyroscopeSelectors(NAMES, "application/json", new TextEncoder().encode('{"matchers":"x"}')),
    /list/,
  );
});

Deno.test("pyroscopeSelectors rebuilds the body around the printed selectors, other fields kept", () => {
  const other = [strField(1, "process_cpu:cpu"), intField(3, 5), intField(4, 7)];
  const p = pyroscopeSelectors(
    SMS,
    "application/proto",
    msg(other[0], strField(2, '{service_name = "1001" # x\n}'), ...other.slice(1)),
  );
  assertEquals(p.selectors, ['{service_name = "1001" # x\n}']);
  assertEquals([...p.rebuild(['{service_name="1001"}']) as Uint8Array], [
    ...msg(...other, strField(2, '{service_name="1001"}')),
  ]);
  const j = pyroscopeSelectors(
    NAMES,
    "application/json",
    new TextEncoder().encode('{"matchers":["{a=\'b\'}"],"start":"5"}'),
  );
  assertEquals(JSON.parse(j.rebuild(['{a="b"}']) as string), { matchers: ['{a="b"}'], start: "5" });
});

Deno.test("Pyroscope frontend: own service_name is forwarded as printed, anything else is refused", async () => {
  const seen: { path: string; body: Uint8Array; headers: Headers }[] = [];
  const backend = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (req) => {
    seen.push({ path: new URL(req.url).pathname, body: new Uint8Array(await req.arrayBuffer()), headers: req.headers });
    return new Response(new Uint8Array([1, 2, 3]), { headers: { "content-type": "application/proto" } });
  });
  const dir = await Deno.makeTempDir();
  const ownership = new CachedOwnership(await ownershipOnRunningApi(dir));
  const pool = new ServerPool("round-robin", nullLogger);
  pool.add(CLUSTER, { url: `http://127.0.0.1:${backend.addr.port}`, client: {}, filterLabels: [] });
  const server = await serve({
    addresses: ["127.0.0.1:0"],
    webConfig: emptyWebConfig,
    logger: nullLogger,
    handler: pyroscopeHandler({ pool, ownership, logger: nullLogger }),
  });
  const base = `http://${server.addresses[0]}`;
  const post = (path: string, body: Uint8Array | string, ct = "application/proto", user = "alice") =>
    fetch(base + path, {
      method: "POST",
      headers: { "content-type": ct, "X-Grafana-User": user, "X-Ceems-Cluster-Id": CLUSTER, Authorization: "Bearer x" },
      body: body as BodyInit,
    });
  try {
    const own = msg(strField(1, "process_cpu:cpu"), intField(3, 5), strField(2, '{service_name="1001"}'));
    let r = await post(SMS, own);
    assertEquals(r.status, 200);
    assertEquals([...new Uint8Array(await r.arrayBuffer())], [1, 2, 3]);
    assertEquals(seen.at(-1)!.path, SMS);
    assertEquals([...seen.at(-1)!.body], [...own]);
    // A comment ended by CR hides nothing: the backend gets the selector printed from the checked tree.
    r = await post(SMS, msg(strField(1, "process_cpu:cpu"), strField(2, '{service_name="1001"} # x\r or {}')));
    assertEquals(r.status, 200);
    await r.body?.cancel();
    assertEquals([...seen.at(-1)!.body], [
      ...msg(strField(1, "process_cpu:cpu"), strField(2, '{service_name="1001"}')),
    ]);
    assertEquals(seen.at(-1)!.headers.get("authorization"), null);

    const refusedBodies: [string, Uint8Array | string, string?][] = [
      [SMS, msg(strField(2, '{service_name="2001"}'))],
      [SMS, msg(strField(2, '{service_name=~"1001|2001"}'))],
      [SMS, msg(strField(2, "{}"))],
      [SMS, msg(strField(1, "process_cpu:cpu"))],
      [NAMES, msg(intField(2, 1))],
      [NAMES, msg(strField(1, '{service_name="1001"}'), strField(1, '{namespace="x"}'))],
      [VALUES, msg(strField(1, "service_name"), strField(2, '{service_name!="1001"}'))],
      [SMS, JSON.stringify({ labelSelector: '{service_name="2001"}' }), "application/json"],
    ];
    for (const [path, body, ct] of refusedBodies) {
      r = await post(path, body, ct);
      const text = await r.text();
      assertEquals(r.status, 403, `${path} ${typeof body === "string" ? body : [...body]}: ${text}`);
    }
    for (
      const [path, body, ct, status] of [
        [SMS, new Uint8Array([0x12, 0x09, 0x41]), "application/proto", 400],
        [SMS, "{bad json", "application/json", 400],
        [SMS, "x", "text/plain", 400],
        [NAMES, msg(strField(1, 'sum({service_name="1001"})')), "application/proto", 400],
        // an unchecked matcher under a field number Go's decoder truncates to 1: refused, not copied along
        [
          NAMES,
          msg(strField(1, '{service_name="1001"}'), SMUGGLED_MATCHER),
          "application/proto",
          400,
        ],
        [VALUES, msg(strField(2, '{service_name="1001"}'), strField(7, "x")), "application/proto", 400],
        [NAMES, JSON.stringify({ matchers: ['{service_name="1001"}'], extra: 1 }), "application/json", 400],
        [
          NAMES,
          `{"matchers":["{service_name=\\"1001\\"}"],"start":${"[".repeat(5000)}${"]".repeat(5000)}}`,
          "application/json",
          400,
        ],
        [SMS, msg(strField(2, '{service_name="1001"}'), strField(2, '{service_name=~".+"}')), "application/proto", 400],
        [
          SMS,
          JSON.stringify({ labelSelector: '{service_name="1001"}', label_selector: "{}" }),
          "application/json",
          400,
        ],
        ["/querier.v1.QuerierService/Series", msg(strField(1, '{service_name="1001"}')), "application/proto", 403],
        ["/pyroscope/render", "", "application/proto", 403],
      ] as const
    ) {
      r = await post(path, body, ct);
      assertEquals(r.status, status, `${path}: ${await r.text()}`);
    }
    const before = seen.length;
    r = await post(NAMES, JSON.stringify({ matchers: ['{service_name="1002"}'] }), "application/json");
    assertEquals(r.status, 200);
    await r.body?.cancel();
    r = await post(VALUES, msg(strField(1, "span"), strField(2, '{service_name=~"1001|1002"}')));
    assertEquals(r.status, 200);
    await r.body?.cancel();
    r = await post("/querier.v1.QuerierService/Series", "", "application/proto", ADMIN);
    assertEquals(r.status, 200, "admins pass through");
    await r.body?.cancel();
    assertEquals(seen.length, before + 3);
    assert(seen.every((s) => s.headers.get("x-grafana-user") === null));
  } finally {
    await server.close();
    pool.stop();
    ownership.close();
    await backend.shutdown();
    await Deno.remove(dir, { recursive: true });
  }
});
