// OpenIPMI character-device (/dev/ipmiN) transport through libc via Deno.dlopen: the x86_64 layouts of
// linux/ipmi.h's structs, IPMICTL_SEND_COMMAND / IPMICTL_RECEIVE_MSG_TRUNC, poll with a bounded wait, and DCMI.

import { TimeoutError } from "../common/timeout.ts";
import { ErrnoError } from "./libc.ts";

/** ioctl numbers of linux/ipmi.h on x86_64 (_IOR/_IOWR with the struct sizes below). */
export const IPMICTL_SEND_COMMAND = 0x8028690d; // _IOR('i', 13, struct ipmi_req)      size 40
export const IPMICTL_RECEIVE_MSG_TRUNC = 0xc030690b; // _IOWR('i', 11, struct ipmi_recv) size 48
export const IPMI_SYSTEM_INTERFACE_ADDR_TYPE = 0x0c;
export const IPMI_BMC_CHANNEL = 0x0f;
export const IPMI_RESPONSE_RECV_TYPE = 1;

/** Byte offsets and sizes of the structs on x86_64 (LP64), as the kernel header lays them out. */
export const layout = {
  /** struct ipmi_system_interface_addr { int addr_type; short channel; unsigned char lun; } */
  sysAddr: { size: 8, addrType: 0, channel: 4, lun: 6 },
  /** struct ipmi_msg { u8 netfn; u8 cmd; u16 data_len; u8 *data; } */
  msg: { size: 16, netfn: 0, cmd: 1, dataLen: 2, data: 8 },
  /** struct ipmi_req { u8 *addr; unsigned addr_len; long msgid; struct ipmi_msg msg; } */
  req: { size: 40, addr: 0, addrLen: 8, msgid: 16, msg: 24 },
  /** struct ipmi_recv { int recv_type; u8 *addr; unsigned addr_len; long msgid; struct ipmi_msg msg; } */
  recv: { size: 48, recvType: 0, addr: 8, addrLen: 16, msgid: 24, msg: 32 },
} as const;

/** An IPMI request or response message. */
export interface IpmiMessage {
  netfn: number;
  cmd: number;
  data: Uint8Array;
}

/** Encodes the system-interface address of the local BMC (channel 0xf, LUN 0). */
export function encodeSystemInterfaceAddr(lun = 0): Uint8Array {
  const b = new Uint8Array(layout.sysAddr.size);
  const v = new DataView(b.buffer);
  v.setInt32(layout.sysAddr.addrType, IPMI_SYSTEM_INTERFACE_ADDR_TYPE, true);
  v.setInt16(layout.sysAddr.channel, IPMI_BMC_CHANNEL, true);
  v.setUint8(layout.sysAddr.lun, lun);
  return b;
}

function putMsg(v: DataView, at: number, netfn: number, cmd: number, dataPtr: bigint, dataLen: number): void {
  v.setUint8(at + layout.msg.netfn, netfn);
  v.setUint8(at + layout.msg.cmd, cmd);
  v.setUint16(at + layout.msg.dataLen, dataLen, true);
  v.setBigUint64(at + layout.msg.data, dataPtr, true);
}

/** Encodes a struct ipmi_req whose address and data buffers are at the given addresses. */
export function encodeReq(
  o: { addrPtr: bigint; addrLen: number; msgid: bigint; netfn: number; cmd: number; dataPtr: bigint; dataLen: number },
): Uint8Array {
  const b = new Uint8Array(layout.req.size);
  const v = new DataView(b.buffer);
  v.setBigUint64(layout.req.addr, o.addrPtr, true);
  v.setUint32(layout.req.addrLen, o.addrLen, true);
  v.setBigInt64(layout.req.msgid, o.msgid, true);
  putMsg(v, layout.req.msg, o.netfn, o.cmd, o.dataPtr, o.dataLen);
  return b;
}

/** Encodes a struct ipmi_recv offering address and data buffers of the given capacities. */
export function encodeRecv(o: { addrPtr: bigint; addrLen: number; dataPtr: bigint; dataLen: number }): Uint8Array {
  const b = new Uint8Array(layout.recv.size);
  const v = new DataView(b.buffer);
  v.setBigUint64(layout.recv.addr, o.addrPtr, true);
  v.setUint32(layout.recv.addrLen, o.addrLen, true);
  putMsg(v, layout.recv.msg, 0, 0, o.dataPtr, o.dataLen);
  return b;
}

/** The fields of a struct ipmi_recv the kernel filled in. */
export function decodeRecv(
  b: Uint8Array,
): { recvType: number; addrLen: number; msgid: bigint; netfn: number; cmd: number; dataLen: number } {
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const m = layout.recv.msg;
  return {
    recvType: v.getInt32(layout.recv.recvType, true),
    addrLen: v.getUint32(layout.recv.addrLen, true),
    msgid: v.getBigInt64(layout.recv.msgid, true),
    netfn: v.getUint8(m + layout.msg.netfn),
    cmd: v.getUint8(m + layout.msg.cmd),
    dataLen: v.getUint16(m + layout.msg.dataLen, true),
  };
}

/** DCMI Get Power Reading: netfn 0x2C (group extension), cmd 0x02, group 0xDC, mode 1 (system power statistics). */
export const dcmiGetPowerReading: IpmiMessage = {
  netfn: 0x2c,
  cmd: 0x02,
  data: new Uint8Array([0xdc, 0x01, 0x00, 0x00]),
};

/** A decoded DCMI power reading. */
export interface DcmiPowerReading {
  currentWatts: number;
  minWatts: number;
  maxWatts: number;
  avgWatts: number;
  /** BMC timestamp (seconds since the epoch, BMC clock). */
  timestamp: number;
  /** Statistics reporting period in milliseconds. */
  periodMs: number;
  /** Power reading state bit 6: measurement active. */
  active: boolean;
}

/** IPMI completion codes worth naming in errors. */
const completionCodes: Record<number, string> = {
  0xc1: "invalid command",
  0xc3: "timeout",
  0xc9: "parameter out of range",
  0xcc: "invalid data field",
  0xd4: "insufficient privilege",
  0xd5: "command not supported in present state",
  0xff: "unspecified error",
};

/**
 * Decodes a Get Power Reading response: [0] completion code, [1] 0xDC, [2..3] current, [4..5] min, [6..7] max,
 * [8..9] average (little-endian watts), [10..13] timestamp, [14..17] period (ms), [18] state (0x40 = active).
 */
export function decodeDcmiPowerReading(data: Uint8Array): DcmiPowerReading {
  if (data.length < 1) throw new Error("DCMI power reading: empty response");
  if (data[0] !== 0) {
    const cc = data[0];
    throw new Error(`DCMI power reading: completion code 0x${cc.toString(16)} (${completionCodes[cc] ?? "error"})`);
  }
  if (data.length < 19) throw new Error(`DCMI power reading: response too short (${data.length} bytes)`);
  if (data[1] !== 0xdc) throw new Error(`DCMI power reading: group extension 0x${data[1].toString(16)}, want 0xdc`);
  const v = new DataView(data.buffer, data.byteOffset, data.byteLength);
  return {
    currentWatts: v.getUint16(2, true),
    minWatts: v.getUint16(4, true),
    maxWatts: v.getUint16(6, true),
    avgWatts: v.getUint16(8, true),
    timestamp: v.getUint32(10, true),
    periodMs: v.getUint32(14, true),
    active: (data[18] & 0x40) !== 0,
  };
}

const libcSymbols = {
  ioctl: { parameters: ["i32", "u64", "buffer"], result: "i32" },
  poll: { parameters: ["buffer", "u64", "i32"], result: "i32", nonblocking: true },
  close: { parameters: ["i32"], result: "i32" },
  open: { parameters: ["buffer", "i32", "u32"], result: "i32" },
  __errno_location: { parameters: [], result: "pointer" },
} as const;

const EMSGSIZE = 90;
const O_RDWR = 0o2;
const O_NONBLOCK = 0o4000;
const O_CLOEXEC = 0o2000000;

/**
 * Opens an IPMI device read-write, non-blocking and close-on-exec with the calling thread's credentials and
 * returns the raw fd (for a security context's openFd, or a test guest running as root).
 */
export function openIpmiDeviceFd(path: string, libc = "libc.so.6"): number {
  const dl = Deno.dlopen(libc, libcSymbols);
  try {
    const fd = dl.symbols.open(new TextEncoder().encode(path + "\0"), O_RDWR | O_NONBLOCK | O_CLOEXEC, 0);
    if (fd < 0) {
      const p = dl.symbols.__errno_location();
      throw new ErrnoError(`open ${path}`, p ? new Deno.UnsafePointerView(p).getInt32() : 0);
    }
    return fd;
  } finally {
    dl.close();
  }
}
const POLLIN = 0x1;

/** The OpenIPMI device interface over an already-open descriptor. */
export class IpmiDevice {
  #dl: Deno.DynamicLibrary<typeof libcSymbols>;
  #msgid = 0n;
  /** Off-heap scratch memory (fixed address) for the address, data and struct buffers. */
  #arena = new ArrayBuffer(4096);
  #base: bigint;

  /** Wraps `fd`; `libc` names the C library (tests pass a fake of the driver's ioctls). */
  constructor(readonly fd: number, libc = "libc.so.6") {
    this.#dl = Deno.dlopen(libc, libcSymbols);
    this.#base = BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(this.#arena)));
  }

  #errno(): number {
    const p = this.#dl.symbols.__errno_location();
    return p ? new Deno.UnsafePointerView(p).getInt32() : 0;
  }

  #ioctl(req: number, arg: Uint8Array): number {
    const rc = this.#dl.symbols.ioctl(this.fd, BigInt(req), arg);
    return rc < 0 ? this.#errno() : 0;
  }

  /** Sends one request to the BMC; returns its msgid. */
  send(msg: IpmiMessage): bigint {
    const u8 = new Uint8Array(this.#arena);
    const addr = encodeSystemInterfaceAddr();
    u8.set(addr, 0);
    u8.set(msg.data, 64);
    const msgid = ++this.#msgid;
    const req = encodeReq({
      addrPtr: this.#base,
      addrLen: addr.length,
      msgid,
      netfn: msg.netfn,
      cmd: msg.cmd,
      dataPtr: this.#base + 64n,
      dataLen: msg.data.length,
    });
    const err = this.#ioctl(IPMICTL_SEND_COMMAND, req);
    if (err) throw new ErrnoError("ioctl IPMICTL_SEND_COMMAND", err);
    return msgid;
  }

  /** Waits up to timeoutMs for a message to read (poll runs off the JS thread). */
  async waitReadable(timeoutMs: number): Promise<boolean> {
    // struct pollfd { int fd; short events; short revents; } in the arena: poll runs on another thread, so
    // its buffer must not be a small on-heap array the garbage collector could move.
    const pfd = new Uint8Array(this.#arena, 256, 8);
    const v = new DataView(this.#arena, 256, 8);
    v.setInt32(0, this.fd, true);
    v.setInt16(4, POLLIN, true);
    v.setInt16(6, 0, true);
    const rc = await this.#dl.symbols.poll(pfd, 1n, Math.max(0, Math.round(timeoutMs)));
    if (rc < 0) throw new Error("poll on the IPMI device failed");
    const revents = v.getInt16(6, true);
    if (rc > 0 && !(revents & POLLIN)) throw new Error(`poll on the IPMI device: revents 0x${revents.toString(16)}`);
    return rc > 0;
  }

  /** Receives one message (truncated to 1 KiB); throws EAGAIN when none is queued. */
  receive(): { recvType: number; msgid: bigint; netfn: number; cmd: number; data: Uint8Array } {
    const u8 = new Uint8Array(this.#arena);
    const cap = 1024;
    const recv = encodeRecv({ addrPtr: this.#base + 512n, addrLen: 40, dataPtr: this.#base + 1024n, dataLen: cap });
    const err = this.#ioctl(IPMICTL_RECEIVE_MSG_TRUNC, recv);
    if (err && err !== EMSGSIZE) throw new ErrnoError("ioctl IPMICTL_RECEIVE_MSG_TRUNC", err);
    const r = decodeRecv(recv);
    return { ...r, data: u8.slice(1024, 1024 + Math.min(r.dataLen, cap)) };
  }

  /** Sends `msg` and returns its response's data, waiting at most timeoutMs in total. */
  async request(msg: IpmiMessage, timeoutMs: number): Promise<Uint8Array> {
    const msgid = this.send(msg);
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      const left = deadline - performance.now();
      if (left <= 0 || !(await this.waitReadable(left))) {
        throw new TimeoutError("no response from the BMC", timeoutMs);
      }
      let r;
      try {
        r = this.receive();
      } catch (e) {
        if (e instanceof ErrnoError && e.errno === 11) continue; // raced with another reader
        throw e;
      }
      // Skip events, commands and stale responses to earlier (timed-out) requests.
      if (r.recvType !== IPMI_RESPONSE_RECV_TYPE || r.msgid !== msgid) continue;
      if (r.netfn !== (msg.netfn | 1) || r.cmd !== msg.cmd) continue;
      return r.data;
    }
  }

  /** DCMI Get Power Reading, decoded. */
  async dcmiPowerReading(timeoutMs: number): Promise<DcmiPowerReading> {
    return decodeDcmiPowerReading(await this.request(dcmiGetPowerReading, timeoutMs));
  }

  /** Closes the descriptor (unless closeFd is false) and unloads the library handle. */
  close(closeFd = true): void {
    if (closeFd) this.#dl.symbols.close(this.fd);
    this.#dl.close();
  }
}
