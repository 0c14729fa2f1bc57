// Synchronous glibc bindings the privilege layer needs: prctl, the credential wrappers, raw syscalls
// (capget/capset/gettid), open/read/close/poll for raw descriptors, per-thread nice. No symbol here is nonblocking.

/** Linux x86_64 / aarch64 syscall numbers used through `syscall(2)`. */
const SYSCALLS: Record<string, { capget: bigint; capset: bigint; gettid: bigint }> = {
  x86_64: { capget: 125n, capset: 126n, gettid: 186n },
  aarch64: { capget: 90n, capset: 91n, gettid: 178n },
};

const symbols = {
  prctl: { parameters: ["i32", "u64", "u64", "u64", "u64"], result: "i32" },
  setgroups: { parameters: ["usize", "pointer"], result: "i32" },
  setresgid: { parameters: ["u32", "u32", "u32"], result: "i32" },
  setresuid: { parameters: ["u32", "u32", "u32"], result: "i32" },
  getuid: { parameters: [], result: "u32" },
  geteuid: { parameters: [], result: "u32" },
  getgid: { parameters: [], result: "u32" },
  syscall2: { name: "syscall", parameters: ["i64", "buffer", "buffer"], result: "i64" },
  syscall0: { name: "syscall", parameters: ["i64"], result: "i64" },
  open: { parameters: ["buffer", "i32", "u32"], result: "i32" },
  read: { parameters: ["i32", "buffer", "usize"], result: "isize" },
  pread: { parameters: ["i32", "buffer", "usize", "i64"], result: "isize" },
  close: { parameters: ["i32"], result: "i32" },
  poll: { parameters: ["buffer", "u64", "i32"], result: "i32" },
  getxattr: { parameters: ["buffer", "buffer", "buffer", "usize"], result: "isize" },
  setxattr: { parameters: ["buffer", "buffer", "buffer", "usize", "i32"], result: "i32" },
  setpriority: { parameters: ["i32", "u32", "i32"], result: "i32" },
  __errno_location: { parameters: [], result: "pointer" },
  strerror: { parameters: ["i32"], result: "pointer" },
} as const satisfies Deno.ForeignLibraryInterface;

type Libc = Deno.DynamicLibrary<typeof symbols>["symbols"];
let lib: Libc | undefined;

/** The lazily opened glibc symbol table (one dlopen per thread that uses it). */
export function libc(): Libc {
  if (!lib) lib = Deno.dlopen("libc.so.6", symbols).symbols;
  return lib;
}

/** Syscall numbers for this architecture. */
export function syscallNumbers(): { capget: bigint; capset: bigint; gettid: bigint } {
  const n = SYSCALLS[Deno.build.arch];
  if (!n) throw new Error(`unsupported architecture ${Deno.build.arch}`);
  return n;
}

/** An OS error from a libc call, carrying errno and a message naming the call. */
export class ErrnoError extends Error {
  constructor(readonly call: string, readonly errno: number) {
    super(`${call}: ${strerror(errno)} (errno ${errno})`);
    this.name = "ErrnoError";
  }
  /** Node-style code for the common errno values. */
  get code(): string {
    return ({ 1: "EPERM", 2: "ENOENT", 13: "EACCES", 22: "EINVAL", 110: "ETIMEDOUT" } as Record<number, string>)[
      this.errno
    ] ?? `E${this.errno}`;
  }
}

/** The calling thread's errno. */
export function errno(): number {
  const p = libc().__errno_location();
  return p ? new Deno.UnsafePointerView(p).getInt32() : 0;
}

/** Text of an errno value. */
export function strerror(e: number): string {
  const p = libc().strerror(e);
  return p ? Deno.UnsafePointerView.getCString(p) : `errno ${e}`;
}

/** Throws ErrnoError when a libc call returned a negative value. */
export function check(call: string, rc: number | bigint): number {
  if (rc < 0) throw new ErrnoError(call, errno());
  return Number(rc);
}

/** The calling thread's kernel task id. */
export function gettid(): number {
  return Number(libc().syscall0(syscallNumbers().gettid));
}

/**
 * Sets the calling thread's nice value (Linux keeps one per thread): a positive value makes it yield the CPU to
 * the process's other threads when they compete; lowering it back needs CAP_SYS_NICE.
 */
export function niceThread(n: number): void {
  check("setpriority", libc().setpriority(0, /* PRIO_PROCESS: a task, here this thread */ gettid(), n));
}

/** prctl(2) with numeric arguments. */
export function prctl(option: number, a = 0n, b = 0n, c = 0n, d = 0n): number {
  return check(`prctl(${option})`, libc().prctl(option, a, b, c, d));
}

/** Open flags used by openFd. */
export const O_RDONLY = 0, O_RDWR = 2, O_NONBLOCK = 0o4000, O_CLOEXEC = 0o2000000;

/** open(2); returns the raw descriptor or throws. */
export function openRaw(path: string, flags: number): number {
  return check(`open ${path}`, libc().open(cstr(path), flags, 0));
}

const cstr = (s: string) => new TextEncoder().encode(s + "\0");

/** getxattr(2); undefined when the attribute does not exist (ENODATA). */
export function getXattr(path: string, name: string): Uint8Array | undefined {
  const buf = new Uint8Array(64 * 1024);
  const n = libc().getxattr(cstr(path), cstr(name), buf, BigInt(buf.length));
  if (n < 0) {
    const e = errno();
    if (e === 61) return undefined; // ENODATA
    throw new ErrnoError(`getxattr ${path} ${name}`, e);
  }
  return buf.slice(0, Number(n));
}

/** setxattr(2). */
export function setXattr(path: string, name: string, value: Uint8Array): void {
  check(`setxattr ${path} ${name}`, libc().setxattr(cstr(path), cstr(name), value, BigInt(value.length), 0));
}

/** close(2). */
export function closeRaw(fd: number): void {
  check(`close(${fd})`, libc().close(fd));
}

/** pread(2) of up to `max` bytes at `offset`; returns the bytes read. */
export function preadRaw(fd: number, max: number, offset = 0): Uint8Array {
  const buf = new Uint8Array(max);
  const n = check(`pread(${fd})`, libc().pread(fd, buf, BigInt(max), BigInt(offset)));
  return buf.subarray(0, n);
}

/** poll(2) on one descriptor for `events`; returns revents, 0 on timeout. */
export function pollOne(fd: number, events: number, timeoutMs: number): number {
  const pfd = new Uint8Array(8);
  const dv = new DataView(pfd.buffer);
  dv.setInt32(0, fd, true);
  dv.setInt16(4, events, true);
  const n = check(`poll(${fd})`, libc().poll(pfd, 1n, timeoutMs));
  return n === 0 ? 0 : dv.getInt16(6, true);
}
