// Local mock of Keystone and Nova built from CEEMS's recorded OpenStack bodies: token issue (password and
// application credential), users, projects per user, servers (live, and deleted with changes-since).

import { join } from "node:path";
import { repoRoot } from "./process.ts";

const dir = join(repoRoot, "tests/api_server/fixtures/openstack");

/** A running mock; `requests` records method, path+query and the headers of each call. */
export interface OpenStackMock {
  identityUrl: string;
  computeUrl: string;
  requests: { method: string; path: string; headers: Headers }[];
  tokensIssued: number;
  stop(): Promise<void>;
}

/** Starts the mock on a free port. */
export function startOpenStackMock(creds = { user: "admin", password: "supersecret", appId: "app1", appSecret: "s3" }) {
  const tokens = new Set<string>();
  const mock = {
    requests: [] as OpenStackMock["requests"],
    tokensIssued: 0,
  } as OpenStackMock;
  const read = (p: string) => Deno.readTextFileSync(join(dir, p));
  const json = (body: string, status = 200) =>
    new Response(body, { status, headers: { "Content-Type": "application/json" } });
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (req) => {
    const url = new URL(req.url);
    mock.requests.push({ method: req.method, path: url.pathname + url.search, headers: req.headers });
    if (req.method === "POST" && url.pathname === "/v3/auth/tokens") {
      const body = await req.json().catch(() => ({}));
      const id = body?.auth?.identity ?? {};
      const m = id.methods?.[0];
      const good = (m === "password" && id.password?.user?.name === creds.user &&
        id.password?.user?.password === creds.password) ||
        (m === "application_credential" && id.application_credential?.id === creds.appId &&
          id.application_credential?.secret === creds.appSecret);
      if (!good) {
        return json('{"error":{"code":401,"message":"The request you have made requires authentication."}}', 401);
      }
      const tok = crypto.randomUUID();
      tokens.add(tok);
      mock.tokensIssued++;
      return new Response('{"token":{}}', { status: 201, headers: { "X-Subject-Token": tok } });
    }
    if (!tokens.has(req.headers.get("X-Auth-Token") ?? "")) return json('{"error":{"code":401}}', 401);
    if (url.pathname === "/v3/users") return json(read("identity/users.json"));
    const pm = /^\/v3\/users\/([0-9a-f]+)\/projects$/.exec(url.pathname);
    if (pm) {
      try {
        return json(read(`identity/${pm[1]}.json`));
      } catch {
        return json('{"projects":[]}');
      }
    }
    if (url.pathname === "/v2.1/servers/detail") {
      if (url.searchParams.get("all_tenants") !== "true") return json('{"servers":[]}');
      if (url.searchParams.get("deleted") === "true") {
        if (!url.searchParams.get("changes-since")) return json('{"badRequest":{"code":400}}', 400);
        return json(read("compute/deleted.json"));
      }
      return json(read("compute/servers.json"));
    }
    return json('{"error":{"code":404}}', 404);
  });
  const port = server.addr.port;
  mock.identityUrl = `http://127.0.0.1:${port}`;
  mock.computeUrl = `http://127.0.0.1:${port}/v2.1`;
  mock.stop = () => server.shutdown();
  return mock;
}
