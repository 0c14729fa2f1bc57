// OpenStack manager against a local Keystone+Nova mock built from CEEMS's recorded bodies: both auth
// methods, servers including deleted ones, states, allocations, names resolved from Keystone.

import { assert, assertEquals } from "../../helpers/assert.ts";
import { startOpenStackMock } from "../../helpers/openstack_mock.ts";
import { nullLogger } from "../../../common/log.ts";
import type { ClusterConfig } from "../../../api_server/config.ts";
import { OpenStackManager } from "../../../api_server/managers/openstack.ts";

function cluster(identity: string, compute: string, auth: unknown): ClusterConfig {
  return {
    id: "os-0",
    manager: "openstack",
    updaters: [],
    cli: { path: "", environmentVariables: {} },
    web: { http_headers: { "X-OpenStack-Nova-API-Version": { values: ["2.79"] } } },
    extraConfig: { api_service_endpoints: { compute, identity }, auth },
  };
}

Deno.test("openstack manager: password auth, servers incl. deleted, users and projects", async () => {
  const mock = startOpenStackMock();
  try {
    const m = new OpenStackManager(
      cluster(mock.identityUrl, mock.computeUrl, {
        identity: { methods: ["password"], password: { user: { name: "admin", password: "supersecret" } } },
      }),
      "Europe/Paris",
      nullLogger,
    );
    const start = Date.parse("2024-10-15T12:00:00Z");
    const end = Date.parse("2024-10-15T15:00:00Z");
    const units = await m.fetchUnits(start, end);
    assertEquals(units.length, 18, "13 live + 5 deleted servers");
    assertEquals(new Set(units.map((u) => u.uuid)).size, 18);
    const ended = units.filter((u) => u.ended_at_ts > 0);
    assertEquals(ended.length, 6, "DELETED and SOFT_DELETED count as ended (CEEMS: 6 inactive of 18)");
    const vgpu = units.find((u) => u.uuid === "1cef0381-0a5a-42e6-9e9b-3d88f84be971")!;
    assertEquals(vgpu.started_at, "2024-10-15T16:28:50+0200");
    assertEquals(vgpu.ended_at, "N/A");
    assertEquals(vgpu.state, "ACTIVE");
    assertEquals((vgpu.allocation as Record<string, unknown>).vgpus, 1);
    assertEquals((vgpu.allocation as Record<string, unknown>).name, "m10.vgpu");
    assertEquals(vgpu.tags.power_state, "RUNNING");
    assertEquals(vgpu.tags.reservation_id, "r-ct4kh3w1");
    // Running since 14:28:50Z, window ends 15:00: 1870 s, 8 vcpus, 1 vGPU.
    assertEquals(vgpu.total_time_seconds.walltime, 1870);
    assertEquals(vgpu.total_time_seconds.alloc_cputime, 8 * 1870);
    assertEquals(vgpu.total_time_seconds.alloc_gputime, 1870);
    assert(units.every((u) => !/^[0-9a-f]{32}$/.test(u.username)), "user ids resolved to names");
    assert(units.some((u) => u.project === "test-project-3"));
    // Shelved servers consume nothing.
    const shelved = units.find((u) => u.state === "SHELVED_OFFLOADED")!;
    assertEquals(shelved.total_time_seconds.walltime, 0);

    const { users, projects } = await m.fetchMembership(end);
    const tu1 = users.find((u) => u.name === "test-user-1")!;
    assert(tu1.projects.includes("test-project-3"));
    const p3 = projects.find((p) => p.name === "test-project-3")!;
    assertEquals(p3.uid, "bdb137e6ee6d427a899ac22de5d76b8c");
    assertEquals(p3.users, ["test-user-1", "test-user-2", "test-user-3"]);

    // Nova calls carry the token and the configured API version; deleted servers are asked with a window.
    const nova = mock.requests.filter((r) => r.path.startsWith("/v2.1/"));
    assert(nova.every((r) => r.headers.get("X-OpenStack-Nova-API-Version") === "2.79"));
    assert(nova.some((r) => r.path.includes("deleted=true") && r.path.includes("changes-since=2024-10-15T12:00:00")));
    assertEquals(mock.tokensIssued, 1, "token reused within its lifetime");

    // Users and projects are cached 12 h: Keystone's user list is asked again only after that.
    const userLists = () => mock.requests.filter((r) => r.path === "/v3/users").length;
    const asked = userLists();
    let clock = Date.now();
    m.now = () => clock;
    const first = await m.fetchMembership(end); // the cache was filled with the real clock above
    assertEquals(userLists(), asked);
    assertEquals(first.users, users);
    clock += 12 * 3_600_000;
    await m.fetchMembership(end);
    assertEquals(userLists(), asked + 1, "refreshed after 12 h");
    clock += 3_600_000;
    await m.fetchMembership(end);
    assertEquals(userLists(), asked + 1);
  } finally {
    await mock.stop();
  }
});

Deno.test("openstack manager: application credential auth; wrong secret is a clear error", async () => {
  const mock = startOpenStackMock();
  try {
    const good = new OpenStackManager(
      cluster(mock.identityUrl, mock.computeUrl, {
        identity: { methods: ["application_credential"], application_credential: { id: "app1", secret: "s3" } },
      }),
      "UTC",
      nullLogger,
    );
    assertEquals((await good.fetchUnits(0, Date.parse("2024-10-16T00:00:00Z"))).length, 18);
    const bad = new OpenStackManager(
      cluster(mock.identityUrl, mock.computeUrl, {
        identity: { methods: ["application_credential"], application_credential: { id: "app1", secret: "no" } },
      }),
      "UTC",
      nullLogger,
    );
    let msg = "";
    try {
      await bad.fetchUnits(0, 1);
    } catch (e) {
      msg = (e as Error).message;
    }
    assert(msg.includes("keystone token request failed: HTTP 401"), msg);
  } finally {
    await mock.stop();
  }
});
