// Tests of the NVML binding against a fake libnvidia-ml.so.1 built from tests/fakes/fake_nvml.c, with
// readings of a real H100 (shared/data/nvml-h100.json): values, units, errors, MIG handles, shutdown.

import { isNotSupported, Nvml, NvmlError, NvmlReturn } from "../../ffi/nvml.ts";
import { fakeNvml, h100 } from "../fakes/nvml.ts";
import { assert, assertEquals, assertThrows } from "../helpers/assert.ts";

Deno.test("NVML binding reads count, UUID, name, power (mW) and the u64 energy counter (mJ)", () => {
  const dir = Deno.makeTempDirSync();
  // An energy counter beyond 2^32 mJ checks the u64 out-parameter is read whole.
  const { lib, log } = fakeNvml(dir, `driver 580.159.04\n${h100}\ngpu GPU-second 70000 5000000123 0 0 NVIDIA A100\n`);
  const n = Nvml.open(lib);
  try {
    assertEquals(n.driverVersion(), "580.159.04");
    assertEquals(n.deviceCount(), 2);
    const d0 = n.deviceByIndex(0);
    assertEquals(n.uuid(d0), "GPU-083b8c1d-11cc-660b-aae2-23e15449cf91");
    assertEquals(n.name(d0), "NVIDIA H100 80GB HBM3");
    assertEquals(n.powerMilliwatts(d0), 105900);
    assertEquals(n.totalEnergyMillijoules(d0), 2264388n);
    assertEquals(n.totalEnergyMillijoules(n.deviceByIndex(1)), 5000000123n);
    assertEquals(n.migMode(d0), { current: 0, pending: 0 });
    const e = assertNvmlError(() => n.deviceByIndex(5));
    assertEquals(e.code, NvmlReturn.INVALID_ARGUMENT);
    assertEquals(e.message, "nvmlDeviceGetHandleByIndex_v2: Invalid Argument (2)");
  } finally {
    n.close();
    n.close(); // idempotent
  }
  assertEquals(Deno.readTextFileSync(log), "init\nshutdown\n");
  Deno.removeSync(dir, { recursive: true });
});

function assertNvmlError(fn: () => unknown): NvmlError {
  try {
    fn();
  } catch (e) {
    assert(e instanceof NvmlError, String(e));
    return e;
  }
  throw new Error("expected an NvmlError");
}

Deno.test("NVML binding: init failure is an error and unloads; unsupported values are recognisable", () => {
  const dir = Deno.makeTempDirSync();
  const { lib } = fakeNvml(dir, "init 9\n");
  assertThrows(() => Nvml.open(lib), /nvmlInit_v2: Driver Not Loaded \(9\)/);
  assertThrows(() => Nvml.open(`${dir}/missing.so`));
  fakeNvml(dir, "gpu GPU-x E3 E3 0 0 Old GPU\n");
  const n = Nvml.open(lib);
  try {
    const d = n.deviceByIndex(0);
    const e = assertNvmlError(() => n.powerMilliwatts(d));
    assert(isNotSupported(e));
    assert(isNotSupported(assertNvmlError(() => n.totalEnergyMillijoules(d))));
  } finally {
    n.close();
  }
  Deno.removeSync(dir, { recursive: true });
});

Deno.test("NVML binding walks MIG devices: empty slots NOT_FOUND, GPU instance ids and MIG UUIDs", () => {
  const dir = Deno.makeTempDirSync();
  const { lib } = fakeNvml(
    dir,
    "gpu GPU-aaaa 250000 9000000 1 7 NVIDIA H100 80GB HBM3\nmig 0 0 MIG-1111 1 E3 E3\nmig 0 2 MIG-2222 5 E3 E3\n",
  );
  const n = Nvml.open(lib);
  try {
    const g = n.deviceByIndex(0);
    assertEquals(n.migMode(g).current, 1);
    assertEquals(n.maxMigDeviceCount(g), 7);
    const m0 = n.migDeviceByIndex(g, 0);
    assertEquals([n.uuid(m0), n.gpuInstanceId(m0)], ["MIG-1111", 1]);
    assertEquals(assertNvmlError(() => n.migDeviceByIndex(g, 1)).code, NvmlReturn.NOT_FOUND);
    assertEquals(n.gpuInstanceId(n.migDeviceByIndex(g, 2)), 5);
  } finally {
    n.close();
  }
  Deno.removeSync(dir, { recursive: true });
});
