// Native IPMI mode of the ipmi_dcmi collector: DCMI Get Power Reading over /dev/ipmiN, the device opened
// inside a cap_dac_override security context and then used from the main thread through its raw fd.

import { pathExists } from "../../common/fs.ts";
import { type DcmiPowerReading, IpmiDevice } from "../../ffi/ipmi.ts";
import { ErrnoError } from "../../ffi/libc.ts";
import type { DeclaredContext } from "../../privilege/declare.ts";
import type { SecurityManager } from "../../privilege/security.ts";

export type { DcmiPowerReading } from "../../ffi/ipmi.ts";

/** The security context that opens the device (CEEMS: cap_dac_override for native mode). */
export const nativeIpmiContext: DeclaredContext = {
  name: "ipmi_dcmi_native",
  caps: ["cap_dac_override"],
  flag: "collector.ipmi_dcmi",
  reason: "opens /dev/ipmiN read-write (native mode)",
  uses: ["openFd"],
};

/** Device paths CEEMS tries for --collector.ipmi_dcmi.dev-num=N, in order. */
export function ipmiDevicePaths(devNum: number): string[] {
  return [`/dev/ipmi${devNum}`, `/dev/ipmi/${devNum}`, `/dev/ipmidev/${devNum}`];
}

/** The first existing device path for devNum, or undefined. */
export function findIpmiDevice(devNum: number, exists: (p: string) => boolean = pathExists): string | undefined {
  return ipmiDevicePaths(devNum).find(exists);
}

/** errnos after which the descriptor is useless and the device must be opened again. */
const reopenErrnos = new Set([9, /* EBADF */ 19, /* ENODEV */ 6 /* ENXIO */]);

/** Reads DCMI power through one device, opening it on first use and serialising requests. */
export class NativeDcmiReader {
  #dev: IpmiDevice | undefined;
  #queue: Promise<unknown> = Promise.resolve();

  /** `libc` is the library providing ioctl/poll/close (tests pass a fake of the IPMI driver). */
  constructor(
    readonly devPath: string,
    private readonly security: SecurityManager,
    private readonly libc = "libc.so.6",
  ) {}

  async #open(): Promise<IpmiDevice> {
    if (this.#dev) return this.#dev;
    const [r] = await this.security.run(nativeIpmiContext, [{ kind: "openFd", path: this.devPath, write: true }]);
    if (!r || !r.ok) throw new Error(`open ${this.devPath}: ${r ? r.error : "no result"}`);
    if (typeof r.value !== "number" || !Number.isInteger(r.value) || r.value < 0) {
      throw new Error(`open ${this.devPath}: security context returned no descriptor`);
    }
    this.#dev = new IpmiDevice(r.value, this.libc);
    return this.#dev;
  }

  /** One DCMI power reading, waiting at most timeoutMs for the BMC. */
  read(timeoutMs: number): Promise<DcmiPowerReading> {
    const run = async () => {
      const dev = await this.#open();
      try {
        return await dev.dcmiPowerReading(timeoutMs);
      } catch (e) {
        if (e instanceof ErrnoError && reopenErrnos.has(e.errno)) this.close();
        throw e;
      }
    };
    const p = this.#queue.then(run, run);
    this.#queue = p.catch(() => {});
    return p;
  }

  /** Closes the device (it is reopened on the next read). */
  close(): void {
    this.#dev?.close();
    this.#dev = undefined;
  }
}

const readers = new Map<string, NativeDcmiReader>();

/**
 * DCMI Get Power Reading over `devPath` (e.g. from findIpmiDevice), bounded by timeoutMs. The device is
 * opened once per path through `security` (cap_dac_override) and kept open for later calls.
 */
export function readDcmiPowerNative(
  devPath: string,
  timeoutMs: number,
  security: SecurityManager,
): Promise<DcmiPowerReading> {
  let r = readers.get(devPath);
  if (!r) readers.set(devPath, r = new NativeDcmiReader(devPath, security));
  return r.read(timeoutMs);
}

/** Closes every device readDcmiPowerNative opened (collector stop). */
export function closeNativeDcmiReaders(): void {
  for (const r of readers.values()) r.close();
  readers.clear();
}
