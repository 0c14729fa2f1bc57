// CORS headers (CEEMS's set, anchored origin regex) and the per-client request rate limit.

import { assert, assertEquals } from "../../helpers/assert.ts";
import { clientIp, corsHeaders, RateLimiter } from "../../../api_server/http/cors.ts";

Deno.test("CORS: no Origin, any origin, anchored regex", () => {
  assertEquals(corsHeaders(null, ".*", ["X-Grafana-User"]), undefined);
  assertEquals(corsHeaders("https://a.example", ".*", ["X-Grafana-User"])!.get("Access-Control-Allow-Origin"), "*");
  const h = corsHeaders("https://grafana.example", "https://grafana\\.example", ["X-Grafana-User", "X-User"])!;
  assertEquals(h.get("Access-Control-Allow-Origin"), "https://grafana.example");
  assertEquals(
    h.get("Access-Control-Allow-Headers"),
    "Accept, Authorization, Content-Type, Origin, X-Grafana-User, X-User",
  );
  assertEquals(corsHeaders("https://grafana.example.evil", "https://grafana\\.example", []), undefined);
});

Deno.test("rate limit per client per minute; client address from proxy headers", () => {
  const r = new RateLimiter(2);
  const t = 120_000;
  assert(r.allow("a", t) && r.allow("a", t) && !r.allow("a", t));
  assert(r.allow("b", t), "other clients are independent");
  assert(r.allow("a", t + 60_000), "a new minute resets");
  assert(new RateLimiter(0).allow("a"));
  const req = new Request("http://x/", { headers: { "X-Forwarded-For": "10.0.0.1, 10.0.0.2" } });
  assertEquals(clientIp(req, "127.0.0.1"), "10.0.0.1");
  assertEquals(clientIp(new Request("http://x/", { headers: { "X-Real-IP": "10.1.1.1" } }), "p"), "10.1.1.1");
  assertEquals(clientIp(new Request("http://x/"), "127.0.0.1"), "127.0.0.1");
});
