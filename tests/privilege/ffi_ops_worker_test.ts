// The perfOpen and bpfLoad privileged ops run on a real Worker thread (as the Worker-based security
// manager runs them): results cross the boundary as plain data and the fds stay usable from main.

import {
  bpfMapDump,
  bpfMapValueBytes,
  bpfPercpuMapDump,
  bpfPossibleCpus,
  bpfUnload,
  fromHex,
  libbpfSyms,
  sumPercpu,
} from "../../ffi/libbpf.ts";
import { perfClose, perfRead } from "../../ffi/perf.ts";
import { buildBpfObjects } from "../../collectors/units/ebpf/build.ts";
import type { OpResult, PrivilegedOp } from "../../privilege/ops.ts";
import type { BpfLoadResult } from "../../ffi/libbpf.ts";
import { assert, assertEquals, assertThrows } from "../helpers/assert.ts";
import { Workload } from "../helpers/workload.ts";

const opsUrl = new URL("../../privilege/ops.ts", import.meta.url).href;

/** Runs ops on a fresh Worker thread with runOpSync, then terminates it. */
async function runInWorker(ops: PrivilegedOp[]): Promise<OpResult[]> {
  const src = `import { runOpSync } from ${JSON.stringify(opsUrl)};
self.onmessage = (e) => { self.postMessage(e.data.map(runOpSync)); };`;
  const url = URL.createObjectURL(new Blob([src], { type: "application/javascript" }));
  const w = new Worker(url, { type: "module" });
  try {
    return await new Promise<OpResult[]>((resolve, reject) => {
      w.onmessage = (e) => resolve(e.data);
      w.onerror = (e) => {
        e.preventDefault();
        reject(new Error(e.message));
      };
      w.postMessage(ops);
    });
  } finally {
    w.terminate();
    URL.revokeObjectURL(url);
  }
}

Deno.test("perfOpen in a Worker returns an fd main reads after the Worker is gone; errors carry errno names", async () => {
  // A child that burns ~200 ms of CPU once told to go, so the task clock has something to count.
  const w = new Workload(
    `$| = 1; print "ready\\n"; <STDIN>; my $x = 0; my $t = times; $x++ while (times)[0] - $t < 0.2; print "done\\n"; <STDIN>;`,
    [],
  );
  try {
    await w.waitLine("ready");
    const [sw, hw] = await runInWorker([
      { kind: "perfOpen", type: 1, config: 1, target: { pid: w.pid, inherit: true } }, // task clock
      { kind: "perfOpen", type: 0, config: 0, target: { pid: w.pid, inherit: true } }, // cpu cycles
    ]);
    assert(sw.ok, sw.ok ? "" : sw.error);
    const fd = sw.value as number;
    try {
      const a = perfRead(fd);
      await w.send("go");
      await w.waitLine("done");
      const b = perfRead(fd);
      const ms = Number(b.value - a.value) / 1e6;
      assert(ms >= 190 && ms < 2000, `task clock counted ${ms} ms of a 200 ms busy loop`);
    } finally {
      perfClose(fd);
    }
    // No PMU on these machines: the hardware event fails with ENOENT (a host with one returns an fd).
    if (!hw.ok) assertEquals(hw.code, "ENOENT");
    else perfClose(hw.value as number);
  } finally {
    await w.stop();
  }
});

Deno.test("bpfLoad in a Worker: programs stay attached and maps readable from main after the Worker is gone", async () => {
  libbpfSyms(); // main's own handle keeps libbpf mapped after the Worker's closes
  const objs = await buildBpfObjects();
  const [r] = await runInWorker([{
    kind: "bpfLoad",
    objectPath: objs.io,
    groups: [{ mode: "tp_btf", programs: ["io_exit_btf"], config: [0, 0] }],
    maps: ["io_rw", "io_vfs"],
    configMap: "ceems_cfg",
  }]);
  assert(r.ok, r.ok ? "" : r.error);
  const loaded = r.value as BpfLoadResult;
  assertEquals(typeof loaded.object, "bigint");
  try {
    const dir = Deno.makeTempDirSync();
    const bytes = new Uint8Array(300000);
    Deno.writeFileSync(`${dir}/f`, bytes);
    Deno.removeSync(dir, { recursive: true });
    const entries = bpfPercpuMapDump(loaded.maps.io_rw, 16, 48);
    const written = entries.reduce((s, [, v]) => s + new BigUint64Array(v.buffer)[3], 0n);
    assert(written >= 300000n, `write bytes seen: ${written}`);
    // The privileged map read (for kernels that want CAP_BPF for map access) returns the same entries.
    // A value buffer too small for every CPU's copy is refused (the kernel would write past it).
    assertThrows(() => bpfMapDump(loaded.maps.io_rw, 16, 48), /the map needs 16\//);
    const valueSize = bpfMapValueBytes(loaded.maps.io_rw);
    assertEquals(valueSize, 48 * bpfPossibleCpus());
    const [read] = await runInWorker([{ kind: "bpfMapRead", fd: loaded.maps.io_rw, keySize: 16, valueSize }]);
    assert(read.ok, read.ok ? "" : read.error);
    const viaOp = new Map(
      (read.value as [string, string][]).map(([k, v]) => [k, sumPercpu(fromHex(v), 48, bpfPossibleCpus())]),
    );
    const hex = (b: Uint8Array) => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
    for (const [k] of entries) assert(viaOp.has(hex(k)), `key ${hex(k)} missing from the op's read`);
    const writtenViaOp = [...viaOp.values()].reduce((s, v) => s + new BigUint64Array(v.buffer)[3], 0n);
    assert(writtenViaOp >= written, `write bytes via the op: ${writtenViaOp}`);
  } finally {
    bpfUnload(loaded);
  }
});
