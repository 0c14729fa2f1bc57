// Tests of the rdma sub-collector's parser of `rdma resource show qp|cq|mr` output: per-PID QP counts by
// device/port, CQ counts and CQE lengths, MR counts and lengths; kernel-owned resources (no pid) ignored.

import { parseRdmaResources } from "../../../collectors/cgroup/rdma.ts";
import { assertEquals } from "../../helpers/assert.ts";

Deno.test("parseRdmaResources aggregates per PID", () => {
  const qp = "link mlx5_0/- lqpn 0 type SMI state RTS sq-psn 0 comm [ib_core]\n" +
    "link mlx5_0/1 lqpn 813 rqpn 814 type RC state RTS pdn 8 pid 10 comm ib_write_bw\n" +
    "link mlx5_0/1 lqpn 816 rqpn 815 type RC state RTS pdn 8 pid 10 comm ib_write_bw\n";
  const cq = "dev mlx5_0 cqn 1 cqe 2047 users 5 poll-ctx WORKQUEUE comm [ib_core]\n" +
    "dev mlx5_0 cqn 8 cqe 4095 users 32 ctxn 4 pid 10 comm ib_write_bw\n";
  const mr = "dev mlx5_0 mrn 4 mrlen 2097152 pdn 9 pid 11 comm ib_write_bw\n";
  const r = parseRdmaResources(qp, cq, mr);
  assertEquals([...r.keys()].sort(), [10, 11]);
  assertEquals(r.get(10)!.qps, new Map([["mlx5_0\u00001", 2]]));
  assertEquals(r.get(10)!.cqe, new Map([["mlx5_0\u0000", 4095]]));
  assertEquals(r.get(11)!.mrLen, new Map([["mlx5_0\u0000", 2097152]]));
});
