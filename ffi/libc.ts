// The one glibc binding (synchronous symbols only, opened once per thread that uses it): credentials,
// prctl, raw syscalls (capget/capset/gettid/close_range/perf_event_open), descriptors, xattrs, signals,
// per-thread nice, errno.

/** Linux syscall numbers used through `syscall(2)` (x86_64 and aarch64). */
const SYSCALLS: Record<string, SyscallNumbers> = {
  x86_64: { capget: 125n, capset: 126n, gettid: 186n, closeRange: 436n, perfEventOpen: 298n, seccomp: 317n },
  aarch64: { capget: 90n, capset: 91n, gettid: 178n, closeRange: 436n, perfEventOpen: 241n, seccomp: 277n },
};

/** The syscall numbers the product calls directly. */
export interface SyscallNumbers {
  capget: bigint;
  capset: bigint;
  gettid: bigint;
  closeRange: bigint;
  perfEventOpen: bigint;
  seccomp: bigint;
}

const symbols = {
  prctl: { parameters: ["i32", "u64", "u64", "u64", "u64"], result: "i32" },
  setgroups: { parameters: ["usize", "pointer"], result: "i32" },
  setresgid: { parameters: ["u32", "u32", "u32"], result: "i32" },
  setresuid: { parameters: ["u32", "u32", "u32"], result: "i32" },
  getuid: { parameters: [], result: "u32" },
  geteuid: { parameters: [], result: "u32" },
  getgid: { parameters: [], result: "u32" },
  syscall0: { name: "syscall", parameters: ["i64"], result: "i64" },
  syscall2: { name: "syscall", parameters: ["i64", "buffer", "buffer"], result: "i64" },
  syscall3: { name: "syscall", parameters: ["i64", "u64", "u64", "u64"], result: "i64" },
  syscall3p: { name: "syscall", parameters: ["i64", "u64", "u64", "buffer"], result: "i64" },
  syscall5: { name: "syscall", parameters: ["i64", "buffer", "i64", "i64", "i64", "u64"], result: "i64" },
  open: { parameters: ["buffer", "i32", "u32"], result: "i32" },
  read: { parameters: ["i32", "buffer", "usize"], result: "isize" },
  // read and getdents64 return ssize_t; these variants declare i32 (the low half of the return register on
  // LP64 x86_64/aarch64, exact for requests up to 2 GiB and -1) so that no BigInt is allocated per call
  // (fastfs.ts, the cgroup scrape's hot path).
  readI32: { name: "read", parameters: ["i32", "buffer", "usize"], result: "i32" },
  getdents64: { parameters: ["i32", "buffer", "usize"], result: "i32" },
  pread: { parameters: ["i32", "buffer", "usize", "i64"], result: "isize" },
  close: { parameters: ["i32"], result: "i32" },
  poll: { parameters: ["buffer", "u64", "i32"], result: "i32" },
  access: { parameters: ["buffer", "i32"], result: "i32" },
  kill: { parameters: ["i32", "i32"], result: "i32" },
  waitid: { parameters: ["i32", "u32", "buffer", "i32"], result: "i32" },
  statx: { parameters: ["i32", "buffer", "i32", "u32", "buffer"], result: "i32" },
  getxattr: { parameters: ["buffer", "buffer", "buffer", "usize"], result: "isize" },
  setxattr: { parameters: ["buffer", "buffer", "buffer", "usize", "i32"], result: "i32" },
  setpriority: { parameters: ["i32", "u32", "i32"], result: "i32" },
  __errno_location: { parameters: [], result: "pointer" },
  strerror: { parameters: ["i32"], result: "pointer" },
} as const satisfies Deno.ForeignLibraryInterface;

/** The bound symbols. */
export type Libc = Deno.DynamicLibrary<typeof symbols>["symbols"];
let lib: Libc | undefined;

/** The lazily opened glibc symbol table (one dlopen per thread that uses it). */
export function libc(): Libc {
  if (!lib) lib = Deno.dlopen("libc.so.6", symbols).symbols;
  return lib;
}

/** Syscall numbers for this architecture. */
export function syscallNumbers(): SyscallNumbers {
  const n = SYSCALLS[Deno.build.arch];
  if (!n) throw new Error(`unsupported architecture ${Deno.build.arch}`);
  return n;
}

const errnoNames: Record<number, string> = {
  1: "EPERM",
  2: "ENOENT",
  3: "ESRCH",
  4: "EINTR",
  5: "EIO",
  6: "ENXIO",
  7: "E2BIG",
  9: "EBADF",
  10: "ECHILD",
  11: "EAGAIN",
  12: "ENOMEM",
  13: "EACCES",
  14: "EFAULT",
  16: "EBUSY",
  17: "EEXIST",
  19: "ENODEV",
  20: "ENOTDIR",
  21: "EISDIR",
  40: "ELOOP",
  22: "EINVAL",
  24: "EMFILE",
  25: "ENOTTY",
  28: "ENOSPC",
  38: "ENOSYS",
  61: "ENODATA",
  90: "EMSGSIZE",
  95: "EOPNOTSUPP",
  110: "ETIMEDOUT",
  524: "ENOTSUPP",
};

/** The symbolic name of an errno value (E<number> when unknown). */
export function errnoName(errno: number): string {
  return errnoNames[errno] ?? `E${errno}`;
}

/** A failed system or library call: `call: ENAME (errno)`, with the name in `code`. */
export class ErrnoError extends Error {
  constructor(readonly call: string, readonly errno: number) {
    super(`${call}: ${errnoName(errno)} (${errno})`);
    this.name = "ErrnoError";
  }
  /** The errno's symbolic name (EPERM, ENOENT, ...). */
  get code(): string {
    return errnoName(this.errno);
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

/** open(2) flags the product uses. */
export const O_RDONLY = 0, O_RDWR = 2, O_NONBLOCK = 0o4000, O_NOFOLLOW = 0o400000, O_CLOEXEC = 0o2000000;
/** O_RDONLY | O_DIRECTORY | O_CLOEXEC. */
export const O_DIR_RDONLY = 0o200000 | 0o2000000;

const encoder = new TextEncoder();

/** NUL-terminated bytes of a string for C. */
export function cString(s: string): Uint8Array<ArrayBuffer> {
  const b = new Uint8Array(encoder.encode(s).length + 1);
  encoder.encodeInto(s, b);
  return b;
}

/** open(2); returns the raw descriptor or throws ErrnoError. */
export function openRaw(path: string, flags: number): number {
  return check(`open ${path}`, libc().open(cString(path), flags, 0));
}

/** close(2); errors are ignored (the descriptor is gone either way). */
export function closeRaw(fd: number): void {
  libc().close(fd);
}

/** read(2) into buf; returns the byte count or throws ErrnoError. */
export function readRaw(fd: number, buf: Uint8Array<ArrayBuffer>): number {
  return check(`read fd ${fd}`, libc().read(fd, buf, BigInt(buf.byteLength)));
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

/** getxattr(2); undefined when the attribute does not exist (ENODATA). */
export function getXattr(path: string, name: string): Uint8Array | undefined {
  const buf = new Uint8Array(64 * 1024);
  const n = libc().getxattr(cString(path), cString(name), buf, BigInt(buf.length));
  if (n < 0) {
    const e = errno();
    if (e === 61) return undefined; // ENODATA
    throw new ErrnoError(`getxattr ${path} ${name}`, e);
  }
  return buf.slice(0, Number(n));
}

/** setxattr(2). */
export function setXattr(path: string, name: string, value: Uint8Array): void {
  check(`setxattr ${path} ${name}`, libc().setxattr(cString(path), cString(name), value, BigInt(value.length), 0));
}

/**
 * A path's status-change time in nanoseconds (statx(2): Deno's FileInfo.ctime keeps whole seconds only),
 * as a decimal string.
 */
export function ctimeNs(path: string): string {
  const AT_FDCWD = -100, STATX_CTIME = 0x80;
  const buf = new Uint8Array(256);
  check(`statx ${path}`, libc().statx(AT_FDCWD, cString(path), 0, STATX_CTIME, buf));
  const dv = new DataView(buf.buffer);
  return (dv.getBigInt64(96, true) * 1_000_000_000n + BigInt(dv.getUint32(104, true))).toString();
}

const W_OK = 2;

/** access(path, W_OK) with the real uid and gid (what the run-as user may do once the process runs as it). */
export function writableByRealUser(path: string): boolean {
  return libc().access(cString(path), W_OK) === 0;
}

/**
 * Marks every descriptor from 3 up close-on-exec (close_range(2) with CLOSE_RANGE_CLOEXEC), so a child
 * gets only stdin, stdout and stderr whatever other threads or libraries opened without O_CLOEXEC.
 */
export function cloexecFrom3(): void {
  const CLOSE_RANGE_CLOEXEC = 4n;
  check("close_range", libc().syscall3(syscallNumbers().closeRange, 3n, 0xffffffffn, CLOSE_RANGE_CLOEXEC));
}

/**
 * Sets no_new_privs on every thread of the process: PR_SET_NO_NEW_PRIVS on this one, then an allow-all
 * seccomp filter installed with SECCOMP_FILTER_FLAG_TSYNC, which gives all other threads the same
 * no_new_privs (prctl alone reaches only the calling thread and those it creates later).
 */
export function noNewPrivsAllThreads(): void {
  prctl(38, /* PR_SET_NO_NEW_PRIVS */ 1n);
  const filter = new Uint8Array(8); // struct sock_filter { BPF_RET|BPF_K, 0, 0, SECCOMP_RET_ALLOW }
  const fv = new DataView(filter.buffer);
  fv.setUint16(0, 0x06, true);
  fv.setUint32(4, 0x7fff0000, true);
  const prog = new Uint8Array(16); // struct sock_fprog { u16 len; struct sock_filter *filter; }
  const pv = new DataView(prog.buffer);
  pv.setUint16(0, 1, true);
  pv.setBigUint64(8, BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(filter))), true);
  const SECCOMP_SET_MODE_FILTER = 1n, SECCOMP_FILTER_FLAG_TSYNC = 1n;
  const rc = libc().syscall3p(syscallNumbers().seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_TSYNC, prog);
  if (rc > 0) throw new Error(`seccomp TSYNC: thread ${rc} could not be synchronized`);
  check("seccomp(SECCOMP_SET_MODE_FILTER, TSYNC)", rc);
}

/** kill(2); false when the process is already gone (ESRCH), throws on any other failure. */
export function killRaw(pid: number, signal: number): boolean {
  if (libc().kill(pid, signal) === 0) return true;
  const e = errno();
  if (e === 3) return false;
  throw new ErrnoError(`kill(${pid}, ${signal})`, e);
}

/**
 * Reaps one exited child by pid without blocking (waitid(P_PID, pid, WEXITED|WNOHANG)); true when it was
 * reaped, false when it has not exited or is not a child of this process.
 */
export function reapChild(pid: number): boolean {
  const P_PID = 1, WEXITED = 4, WNOHANG = 1;
  const info = new Uint8Array(128); // siginfo_t
  if (libc().waitid(P_PID, pid, info, WEXITED | WNOHANG) !== 0) return false;
  // si_pid (offset 16 on 64-bit Linux) is 0 when the child has not exited yet.
  return new DataView(info.buffer).getInt32(16, true) === pid;
}
