// Go-compatible JSON encoding: struct order kept, map keys sorted, metric floats as CEEMS prints them,
// HTML characters escaped, raw stored JSON spliced, envelope with trailing newline.

import { assertEquals } from "../../helpers/assert.ts";
import { encodeError, encodeRow, encodeSuccess, RawJson } from "../../../api_server/http/json.ts";

Deno.test("rows encode like CEEMS's Go structs", () => {
  const row = {
    uuid: "1",
    name: 'a<b>&c"d',
    allocation: { nodes: 1, cpus: 2.5, b: "x" },
    avg_cpu_usage: { global: 53.477015404, other: 3 },
    total_time_seconds: new RawJson('{"walltime":1}'),
    skipped: undefined,
  };
  assertEquals(
    encodeRow(row),
    '{"uuid":"1","name":"a\\u003cb\\u003e\\u0026c\\"d","allocation":{"b":"x","cpus":2.5,"nodes":1},' +
      '"avg_cpu_usage":{"global":53.47701540,"other":3},"total_time_seconds":{"walltime":1}}',
  );
  assertEquals(encodeRow({ e: "emoji 😀 and \u2028" }), '{"e":"emoji 😀 and \\u2028"}');
  assertEquals(encodeSuccess([]), '{"status":"success","data":[]}\n');
  assertEquals(encodeSuccess(null), '{"status":"success","data":null}\n');
  assertEquals(encodeError("bad_data", "x"), '{"status":"error","data":null,"errorType":"bad_data","error":"x"}\n');
});
