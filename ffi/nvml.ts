// Binding of NVIDIA's NVML (libnvidia-ml.so.1) through Deno.dlopen: init/shutdown, devices and MIG
// instances, UUID and name, power (mW) and the total energy counter (mJ). No other repository imports.

/** NVML return codes this binding names. */
export const NvmlReturn = {
  SUCCESS: 0,
  UNINITIALIZED: 1,
  INVALID_ARGUMENT: 2,
  NOT_SUPPORTED: 3,
  NO_PERMISSION: 4,
  NOT_FOUND: 6,
  DRIVER_NOT_LOADED: 9,
  FUNCTION_NOT_FOUND: 13,
  GPU_IS_LOST: 15,
  UNKNOWN: 999,
} as const;

/** NVML_DEVICE_MIG_ENABLE. */
export const nvmlMigEnabled = 1;
const uuidBufferSize = 96; // NVML_DEVICE_UUID_V2_BUFFER_SIZE
const nameBufferSize = 96; // NVML_DEVICE_NAME_V2_BUFFER_SIZE
const versionBufferSize = 80; // NVML_SYSTEM_DRIVER_VERSION_BUFFER_SIZE

const symbols = {
  nvmlInit_v2: { parameters: [], result: "i32" },
  nvmlShutdown: { parameters: [], result: "i32" },
  nvmlErrorString: { parameters: ["i32"], result: "pointer" },
  nvmlSystemGetDriverVersion: { parameters: ["buffer", "u32"], result: "i32", optional: true },
  nvmlDeviceGetCount_v2: { parameters: ["buffer"], result: "i32" },
  nvmlDeviceGetHandleByIndex_v2: { parameters: ["u32", "buffer"], result: "i32" },
  nvmlDeviceGetUUID: { parameters: ["pointer", "buffer", "u32"], result: "i32" },
  nvmlDeviceGetName: { parameters: ["pointer", "buffer", "u32"], result: "i32" },
  nvmlDeviceGetPowerUsage: { parameters: ["pointer", "buffer"], result: "i32" },
  nvmlDeviceGetTotalEnergyConsumption: { parameters: ["pointer", "buffer"], result: "i32", optional: true },
  nvmlDeviceGetMigMode: { parameters: ["pointer", "buffer", "buffer"], result: "i32", optional: true },
  nvmlDeviceGetMaxMigDeviceCount: { parameters: ["pointer", "buffer"], result: "i32", optional: true },
  nvmlDeviceGetMigDeviceHandleByIndex: { parameters: ["pointer", "u32", "buffer"], result: "i32", optional: true },
  nvmlDeviceGetGpuInstanceId: { parameters: ["pointer", "buffer"], result: "i32", optional: true },
} as const;

type Lib = Deno.DynamicLibrary<typeof symbols>["symbols"];

/** A failed NVML call: the function, the return code and NVML's own message. */
export class NvmlError extends Error {
  constructor(readonly fn: string, readonly code: number, text: string) {
    super(`${fn}: ${text} (${code})`);
    this.name = "NvmlError";
  }
}

/** An opaque NVML device (GPU or MIG instance) handle. */
export type NvmlDevice = Deno.PointerValue;

/** An initialised NVML library; call close() to shut it down and unload it. */
export class Nvml {
  #dl: Deno.DynamicLibrary<typeof symbols>;
  #lib: Lib;
  #closed = false;

  private constructor(dl: Deno.DynamicLibrary<typeof symbols>) {
    this.#dl = dl;
    this.#lib = dl.symbols;
  }

  /** Loads the library at `path` (a soname searched the usual way, or a file) and calls nvmlInit_v2. */
  static open(path = "libnvidia-ml.so.1"): Nvml {
    const dl = Deno.dlopen(path, symbols);
    const n = new Nvml(dl);
    try {
      n.#check("nvmlInit_v2", n.#lib.nvmlInit_v2());
    } catch (e) {
      dl.close();
      throw e;
    }
    return n;
  }

  /** NVML's message for a return code. */
  errorString(code: number): string {
    const p = this.#lib.nvmlErrorString(code);
    return p ? new Deno.UnsafePointerView(p).getCString() : `NVML error ${code}`;
  }

  #check(fn: string, code: number): void {
    if (code !== NvmlReturn.SUCCESS) throw new NvmlError(fn, code, this.errorString(code));
  }

  #fn<K extends keyof Lib>(name: K): NonNullable<Lib[K]> {
    const f = this.#lib[name];
    if (!f) throw new NvmlError(name, NvmlReturn.FUNCTION_NOT_FOUND, "function not found in this NVML");
    return f as NonNullable<Lib[K]>;
  }

  #string(fn: "nvmlDeviceGetUUID" | "nvmlDeviceGetName", dev: NvmlDevice, size: number): string {
    const buf = new Uint8Array(size);
    this.#check(fn, this.#lib[fn](dev, buf, size));
    const end = buf.indexOf(0);
    return new TextDecoder().decode(buf.subarray(0, end < 0 ? size : end));
  }

  #u32(
    fn: "nvmlDeviceGetPowerUsage" | "nvmlDeviceGetMaxMigDeviceCount" | "nvmlDeviceGetGpuInstanceId",
    dev: NvmlDevice,
  ) {
    const out = new Uint32Array(1);
    this.#check(fn, this.#fn(fn)(dev, out));
    return out[0];
  }

  #handle(fn: string, code: (out: BigUint64Array) => number): NvmlDevice {
    const out = new BigUint64Array(1);
    this.#check(fn, code(out));
    return Deno.UnsafePointer.create(out[0]);
  }

  /** The driver version string ("" when this NVML lacks the call). */
  driverVersion(): string {
    const f = this.#lib.nvmlSystemGetDriverVersion;
    if (!f) return "";
    const buf = new Uint8Array(versionBufferSize);
    this.#check("nvmlSystemGetDriverVersion", f(buf, versionBufferSize));
    const end = buf.indexOf(0);
    return new TextDecoder().decode(buf.subarray(0, end < 0 ? buf.length : end));
  }

  /** Number of GPUs visible to NVML. */
  deviceCount(): number {
    const out = new Uint32Array(1);
    this.#check("nvmlDeviceGetCount_v2", this.#lib.nvmlDeviceGetCount_v2(out));
    return out[0];
  }

  /** Handle of GPU `index`. */
  deviceByIndex(index: number): NvmlDevice {
    return this.#handle("nvmlDeviceGetHandleByIndex_v2", (o) => this.#lib.nvmlDeviceGetHandleByIndex_v2(index, o));
  }

  /** UUID ("GPU-..." or "MIG-..."). */
  uuid(dev: NvmlDevice): string {
    return this.#string("nvmlDeviceGetUUID", dev, uuidBufferSize);
  }

  /** Product name. */
  name(dev: NvmlDevice): string {
    return this.#string("nvmlDeviceGetName", dev, nameBufferSize);
  }

  /** Current power draw in milliwatts. */
  powerMilliwatts(dev: NvmlDevice): number {
    return this.#u32("nvmlDeviceGetPowerUsage", dev);
  }

  /** Energy consumed since the driver was loaded, in millijoules (Volta and newer). */
  totalEnergyMillijoules(dev: NvmlDevice): bigint {
    const out = new BigUint64Array(1);
    this.#check("nvmlDeviceGetTotalEnergyConsumption", this.#fn("nvmlDeviceGetTotalEnergyConsumption")(dev, out));
    return out[0];
  }

  /** Current and pending MIG mode (1 = enabled). */
  migMode(dev: NvmlDevice): { current: number; pending: number } {
    const cur = new Uint32Array(1);
    const pend = new Uint32Array(1);
    this.#check("nvmlDeviceGetMigMode", this.#fn("nvmlDeviceGetMigMode")(dev, cur, pend));
    return { current: cur[0], pending: pend[0] };
  }

  /** Maximum number of MIG devices the GPU can hold. */
  maxMigDeviceCount(dev: NvmlDevice): number {
    return this.#u32("nvmlDeviceGetMaxMigDeviceCount", dev);
  }

  /** Handle of the MIG device in slot `index` (NOT_FOUND when the slot is empty). */
  migDeviceByIndex(dev: NvmlDevice, index: number): NvmlDevice {
    const f = this.#fn("nvmlDeviceGetMigDeviceHandleByIndex");
    return this.#handle("nvmlDeviceGetMigDeviceHandleByIndex", (o) => f(dev, index, o));
  }

  /** GPU instance id of a MIG device. */
  gpuInstanceId(dev: NvmlDevice): number {
    return this.#u32("nvmlDeviceGetGpuInstanceId", dev);
  }

  /** Calls nvmlShutdown and unloads the library; idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    try {
      this.#lib.nvmlShutdown();
    } finally {
      this.#dl.close();
    }
  }
}

/** Whether an error is NVML saying the call or value is not supported on this device. */
export function isNotSupported(e: unknown): boolean {
  return e instanceof NvmlError &&
    (e.code === NvmlReturn.NOT_SUPPORTED || e.code === NvmlReturn.FUNCTION_NOT_FOUND);
}
