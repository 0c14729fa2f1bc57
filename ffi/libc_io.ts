// libc calls for raw kernel descriptors (open, close, read, ioctl, raw syscall) and errno, through a
// lazily opened per-thread handle, so privileged Workers and the main thread each load their own.

const libcSymbols = {
  syscall: { parameters: ["i64", "buffer", "i64", "i64", "i64", "u64"], result: "i64" },
  open: { parameters: ["buffer", "i32"], result: "i32" },
  close: { parameters: ["i32"], result: "i32" },
  read: { parameters: ["i32", "buffer", "usize"], result: "isize" },
  ioctl: { parameters: ["i32", "u64", "u64"], result: "i32" },
  __errno_location: { parameters: [], result: "pointer" },
} as const;

type Libc = Deno.DynamicLibrary<typeof libcSymbols>["symbols"];
let libc: Libc | undefined;

/** The libc symbols, opened on first use in this thread. */
export function libcSyms(): Libc {
  if (!libc) libc = Deno.dlopen("libc.so.6", libcSymbols).symbols;
  return libc;
}

const errnoNames: Record<number, string> = {
  1: "EPERM",
  2: "ENOENT",
  3: "ESRCH",
  4: "EINTR",
  5: "EIO",
  7: "E2BIG",
  9: "EBADF",
  11: "EAGAIN",
  12: "ENOMEM",
  13: "EACCES",
  14: "EFAULT",
  16: "EBUSY",
  17: "EEXIST",
  19: "ENODEV",
  20: "ENOTDIR",
  22: "EINVAL",
  24: "EMFILE",
  28: "ENOSPC",
  38: "ENOSYS",
  95: "EOPNOTSUPP",
  524: "ENOTSUPP",
};

/** The symbolic name of an errno value (E<number> when unknown). */
export function errnoName(errno: number): string {
  return errnoNames[errno] ?? `E${errno}`;
}

/** The calling thread's current errno. */
export function lastErrno(): number {
  const p = libcSyms().__errno_location();
  return p ? new Deno.UnsafePointerView(p).getInt32(0) : 0;
}

/** An error carrying an errno name in `code`, as privileged ops report them. */
export class ErrnoError extends Error {
  constructor(what: string, readonly errno: number) {
    super(`${what}: ${errnoName(errno)}`);
    this.name = "ErrnoError";
  }
  get code(): string {
    return errnoName(this.errno);
  }
}

const encoder = new TextEncoder();

/** NUL-terminated bytes of a string for C. */
export function cString(s: string): Uint8Array<ArrayBuffer> {
  const b = new Uint8Array(encoder.encode(s).length + 1);
  encoder.encodeInto(s, b);
  return b;
}

/** open(2) returning the raw fd; throws ErrnoError. */
export function openRaw(path: string, flags: number): number {
  const fd = libcSyms().open(cString(path), flags);
  if (fd < 0) throw new ErrnoError(`open ${path}`, lastErrno());
  return fd;
}

/** close(2); errors are ignored (the descriptor is gone either way). */
export function closeRaw(fd: number): void {
  libcSyms().close(fd);
}

/** read(2) into buf; returns the byte count or throws ErrnoError. */
export function readRaw(fd: number, buf: Uint8Array<ArrayBuffer>): number {
  const n = Number(libcSyms().read(fd, buf, BigInt(buf.byteLength)));
  if (n < 0) throw new ErrnoError(`read fd ${fd}`, lastErrno());
  return n;
}

/** O_RDONLY | O_DIRECTORY | O_CLOEXEC. */
export const O_DIR_RDONLY = 0o200000 | 0o2000000;
