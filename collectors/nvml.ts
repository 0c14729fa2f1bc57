// The `nvml` collector: per-GPU and per-MIG-instance power and total energy of NVIDIA GPUs read
// through NVML (ffi/nvml.ts), as ceems_gpu_power_watts, ceems_gpu_energy_joules_total and ceems_gpu_info.

import type { FlagSet } from "../common/flags.ts";
import type { Logger } from "../common/log.ts";
import { isNotSupported, Nvml, type NvmlDevice, NvmlError, nvmlMigEnabled, NvmlReturn } from "../ffi/nvml.ts";
import { type Collector, type CollectorContext, type MetricSink, NoDataError } from "./framework/collector.ts";
import { registerCollector } from "./framework/registry.ts";

/** One GPU or MIG instance as read in one scrape. */
export interface GpuReading {
  /** NVML index of the (parent) GPU. */
  index: number;
  /** UUID of the (parent) GPU. */
  gpuUuid: string;
  /** GPU instance id of a MIG device; "" for a whole GPU. */
  gpuIid: string;
  /** UUID of the MIG device ("" for a whole GPU). */
  migUuid: string;
  name: string;
  powerWatts?: number;
  energyJoules?: number;
}

/** Reads a value that the device may not support: undefined when unsupported, rethrows anything else. */
function optional<T>(read: () => T): T | undefined {
  try {
    return read();
  } catch (e) {
    if (isNotSupported(e)) return undefined;
    throw e;
  }
}

/** Reads every GPU and, where MIG is enabled, every MIG instance. Per-device failures go to `errors`. */
export function readNvmlDevices(nvml: Nvml): { readings: GpuReading[]; errors: string[] } {
  const readings: GpuReading[] = [];
  const errors: string[] = [];
  const count = nvml.deviceCount();
  for (let index = 0; index < count; index++) {
    let gpu: NvmlDevice;
    let gpuUuid: string;
    try {
      gpu = nvml.deviceByIndex(index);
      gpuUuid = nvml.uuid(gpu);
      const name = nvml.name(gpu);
      readings.push({
        index,
        gpuUuid,
        gpuIid: "",
        migUuid: "",
        name,
        powerWatts: optional(() => nvml.powerMilliwatts(gpu) / 1000),
        energyJoules: optional(() => Number(nvml.totalEnergyMillijoules(gpu)) / 1000),
      });
    } catch (e) {
      errors.push(`gpu ${index}: ${(e as Error).message}`);
      continue;
    }
    const mig = optional(() => nvml.migMode(gpu));
    if (!mig || mig.current !== nvmlMigEnabled) continue;
    try {
      const slots = nvml.maxMigDeviceCount(gpu);
      for (let slot = 0; slot < slots; slot++) {
        let dev: NvmlDevice;
        try {
          dev = nvml.migDeviceByIndex(gpu, slot);
        } catch (e) {
          if (e instanceof NvmlError && e.code === NvmlReturn.NOT_FOUND) continue; // empty slot
          throw e;
        }
        readings.push({
          index,
          gpuUuid,
          gpuIid: String(nvml.gpuInstanceId(dev)),
          migUuid: nvml.uuid(dev),
          name: nvml.name(dev),
          powerWatts: optional(() => nvml.powerMilliwatts(dev) / 1000),
          energyJoules: optional(() => Number(nvml.totalEnergyMillijoules(dev)) / 1000),
        });
      }
    } catch (e) {
      errors.push(`gpu ${index} MIG devices: ${(e as Error).message}`);
    }
  }
  return { readings, errors };
}

/** How often a collector without NVML tries to load it again (the driver may come later). */
const reopenIntervalMs = 5 * 60_000;

/** The collector; holds NVML open from construction to stop(). */
export class NvmlCollector implements Collector {
  #nvml: Nvml | undefined;
  #driver = "";
  #lastOpen = 0;
  #lastErrors = "";

  constructor(
    private readonly libraryPath: string,
    private readonly hostname: string,
    private readonly logger: Logger,
  ) {
    this.#open();
  }

  #open(): void {
    this.#lastOpen = Date.now();
    try {
      this.#nvml = Nvml.open(this.libraryPath);
      this.#driver = this.#nvml.driverVersion();
      this.logger.info("NVML loaded", { library: this.libraryPath, driver: this.#driver });
    } catch (e) {
      this.logger.warn("NVML not available; nvml collector reports no data", {
        library: this.libraryPath,
        err: (e as Error).message,
      });
    }
  }

  update(sink: MetricSink): void {
    if (!this.#nvml && Date.now() - this.#lastOpen >= reopenIntervalMs) this.#open();
    const nvml = this.#nvml;
    if (!nvml) throw new NoDataError("NVML not loaded");
    const { readings, errors } = readNvmlDevices(nvml);
    const errText = errors.join("; ");
    if (errText && errText !== this.#lastErrors) this.logger.warn("NVML device read failed", { err: errText });
    this.#lastErrors = errText;
    if (readings.length === 0) {
      if (errors.length) throw new Error(errText);
      throw new NoDataError("no GPU found by NVML");
    }
    for (const r of readings) {
      const labels = {
        hostname: this.hostname,
        index: String(r.index),
        hindex: `${this.hostname}/gpu-${r.index}`,
        gpuuuid: r.gpuUuid,
        gpuiid: r.gpuIid,
      };
      sink.gauge(
        "ceems_gpu_info",
        "GPU or MIG instance seen by NVML (value 1), with its model, MIG device UUID and driver version.",
        { ...labels, name: r.name, miguuid: r.migUuid, driver_version: this.#driver },
        1,
      );
      if (r.powerWatts !== undefined) {
        sink.gauge("ceems_gpu_power_watts", "Current GPU power draw in watts (NVML).", labels, r.powerWatts);
      }
      if (r.energyJoules !== undefined) {
        sink.counter(
          "ceems_gpu_energy_joules_total",
          "GPU energy consumed since the driver was loaded, in joules (NVML total energy counter).",
          labels,
          r.energyJoules,
        );
      }
    }
  }

  stop(): void {
    this.#nvml?.close();
    this.#nvml = undefined;
  }
}

function registerFlags(fs: FlagSet): void {
  fs.add({
    name: "collector.nvml.library-path",
    kind: "string",
    default: "libnvidia-ml.so.1",
    hidden: true,
    placeholder: "PATH",
    help: "NVML library to load (tests point it at a fake).",
  });
}

/** The nvml flags. */
interface NvmlOptions {
  library: string;
  gpuType: string;
}

/** GPU vendor chosen with --collector.gpu.type when that flag exists ("" = autodetect or undeclared). */
export function declaredGpuType(fs: FlagSet): string {
  return fs.has("collector.gpu.type") ? String(fs.get("collector.gpu.type") ?? "") : "";
}

/** A collector that only reports that it is off for this GPU type. */
class DisabledCollector implements Collector {
  constructor(private readonly why: string) {}
  update(): void {
    throw new NoDataError(this.why);
  }
}

registerCollector({
  name: "nvml",
  defaultEnabled: false,
  help: "NVIDIA GPU power and energy counters through NVML",
  registerFlags,
  options: (f): NvmlOptions => ({ library: f.string("collector.nvml.library-path"), gpuType: declaredGpuType(f) }),
  // The library is loaded at the first scrape, after the privilege drop: the run-as user must read it and
  // must not be able to replace it.
  security: (o) => ({ readPaths: [o.library], loadPaths: [o.library] }),
  create: (ctx: CollectorContext, o: NvmlOptions): Collector => {
    const type = o.gpuType;
    if (type && type !== "nvidia") {
      ctx.logger.info("nvml collector idle: --collector.gpu.type is not nvidia", { gpu_type: type });
      return new DisabledCollector(`--collector.gpu.type=${type}`);
    }
    return new NvmlCollector(o.library, ctx.hostname, ctx.logger);
  },
});
