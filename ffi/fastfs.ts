// Synchronous small-file and directory reads through libc open/read/getdents64/close into reusable buffers:
// a few FFI calls per file instead of Deno's per-call op, resource and buffer overhead (cgroup scrapes).

import { errnoName, type Libc, libc } from "./libc.ts";

/** The libc symbols FastFs uses (ffi/libc.ts: read and getdents64 with i32 results, no BigInt per call). */
export type FastFsSyms = Pick<Libc, "open" | "readI32" | "getdents64" | "close" | "__errno_location">;

const O_RDONLY_CLOEXEC = 0o2000000;
const O_DIRECTORY_CLOEXEC = 0o200000 | 0o2000000;
const ENOENT = 2;
const EINTR = 4;
const ENOTDIR = 20;
const DT_UNKNOWN = 0;
const DT_DIR = 4;

/** Error of a fast read, shaped like Deno's: NotFound for ENOENT/ENOTDIR, else a plain Error with errno. */
function errnoError(what: string, path: string, errno: number): Error {
  if (errno === ENOENT || errno === ENOTDIR) return new Deno.errors.NotFound(`${what} '${path}': errno ${errno}`);
  const e = new Error(`${what} '${path}': ${errnoName(errno)}`);
  (e as Error & { errno: number }).errno = errno;
  return e;
}

/** One directory entry: its name and whether it is a directory (symlinks are not followed). */
export interface DirEntryLite {
  name: string;
  isDirectory: boolean;
}

/**
 * A reader of small files and directory listings with reusable path, data and dirent buffers. Not
 * re-entrant (one call at a time, which sync code guarantees); files larger than the data buffer are read
 * in several chunks and joined.
 */
export class FastFs {
  readonly #s: FastFsSyms;
  readonly #path = new Uint8Array(4096);
  /** The string whose bytes start #path (#dirLen of them), or undefined. */
  #dir: string | undefined;
  #dirLen = 0;
  readonly #names = new Map<string, Uint8Array>();
  /** Where reads land (`bufferSize` bytes) and where the read that should see EOF lands (as large). */
  readonly #head: Uint8Array<ArrayBuffer>;
  readonly #tail: Uint8Array<ArrayBuffer>;
  readonly #chunkLen: bigint;
  readonly #dirents = new Uint8Array(32768);
  readonly #direntView: DataView;
  readonly #direntLen = 32768n;
  readonly #enc = new TextEncoder();
  readonly #dec = new TextDecoder();

  constructor(syms: FastFsSyms, bufferSize = 65536) {
    this.#s = syms;
    const data = new Uint8Array(2 * bufferSize);
    this.#head = data.subarray(0, bufferSize);
    this.#tail = data.subarray(bufferSize);
    this.#chunkLen = BigInt(bufferSize);
    this.#direntView = new DataView(this.#dirents.buffer);
  }

  #errno(): number {
    const p = this.#s.__errno_location();
    return p ? new Deno.UnsafePointerView(p).getInt32(0) : 0;
  }

  /**
   * `path` as a C string. The buffer keeps the last directory encoded (`#dir`), so the reads of several files
   * of one directory, and the listing that follows its cgroup.procs read, encode the directory once.
   */
  #cPath(path: string): Uint8Array {
    const buf = this.#path;
    if (path !== this.#dir) this.#encodeDir(path);
    buf[this.#dirLen] = 0;
    return buf;
  }

  /** `${dir}/${name}` as a C string, without building (and flattening) the joined JS string. */
  #cPath2(dir: string, name: string): Uint8Array {
    const buf = this.#path;
    if (dir !== this.#dir) this.#encodeDir(dir);
    const slash = this.#dirLen;
    if (slash + 2 >= buf.length) throw new Error(`path too long: ${dir}/${name}`);
    buf[slash] = 47;
    let end: number;
    const cached = this.#names.get(name);
    if (cached) {
      end = slash + 1 + cached.length;
      if (end >= buf.length) throw new Error(`path too long: ${dir}/${name}`);
      buf.set(cached, slash + 1);
    } else {
      const b = this.#enc.encodeInto(name, buf.subarray(slash + 1));
      end = slash + 1 + b.written;
      if (b.read !== name.length || end >= buf.length) throw new Error(`path too long: ${dir}/${name}`);
      // File names repeat in every unit's directory (cpu.stat, cgroup.procs): keep a few encoded.
      if (this.#names.size < 64 && name.length <= 64) this.#names.set(name, buf.slice(slash + 1, end));
    }
    buf[end] = 0;
    return buf;
  }

  #encodeDir(dir: string): void {
    const r = this.#enc.encodeInto(dir, this.#path);
    if (r.read !== dir.length || r.written >= this.#path.length) {
      this.#dir = undefined;
      throw new Error(`path too long: ${dir}`);
    }
    this.#dir = dir;
    this.#dirLen = r.written;
  }

  #open(path: string, flags: number, what: string, name?: string): number {
    const c = name === undefined ? this.#cPath(path) : this.#cPath2(path, name);
    for (;;) {
      const fd = this.#s.open(c, flags, 0);
      if (fd >= 0) return fd;
      const e = this.#errno();
      if (e !== EINTR) throw errnoError(what, name === undefined ? path : `${path}/${name}`, e);
    }
  }

  /** read(2) of up to bufferSize bytes into `buf`; retries EINTR. */
  #read(fd: number, buf: Uint8Array<ArrayBuffer>, path: string, name?: string): number {
    for (;;) {
      const n = this.#s.readI32(fd, buf, this.#chunkLen);
      if (n >= 0) return n;
      const e = this.#errno();
      if (e !== EINTR) throw errnoError("read", name === undefined ? path : `${path}/${name}`, e);
    }
  }

  /** Reads a whole file as UTF-8 text (reading until EOF); throws Deno.errors.NotFound when it does not exist. */
  readText(path: string): string {
    return this.readTextAt(path);
  }

  /** Reads `${dir}/${name}` (just `dir` when name is absent) as {@link readText} does. */
  readTextAt(dir: string, name?: string): string {
    const fd = this.#open(dir, O_RDONLY_CLOEXEC, "open", name);
    try {
      const head = this.#head;
      const n = this.#read(fd, head, dir, name);
      if (n === 0) return "";
      let parts: Uint8Array[];
      if (n < head.length) {
        // Usual case: the file fit; the read that should see EOF goes to the other half, keeping these bytes.
        const m = this.#read(fd, this.#tail, dir, name);
        if (m === 0) return this.#dec.decode(head.subarray(0, n));
        parts = [head.slice(0, n), this.#tail.slice(0, m)];
      } else {
        parts = [head.slice(0, n)];
      }
      for (let k = this.#read(fd, head, dir, name); k > 0; k = this.#read(fd, head, dir, name)) {
        parts.push(head.slice(0, k));
      }
      const all = new Uint8Array(parts.reduce((x, p) => x + p.length, 0));
      let off = 0;
      for (const p of parts) {
        all.set(p, off);
        off += p.length;
      }
      return this.#dec.decode(all);
    } finally {
      this.#s.close(fd);
    }
  }

  /** Lists a directory (without "." and ".."); throws Deno.errors.NotFound when it does not exist. */
  readDir(path: string): DirEntryLite[] {
    const out: DirEntryLite[] = [];
    this.#scanDir(path, false, (name, isDirectory) => out.push({ name, isDirectory }));
    return out;
  }

  /** Names of a directory's subdirectories (symlinks not followed); other entries' names are never decoded. */
  readSubdirs(path: string): string[] {
    const out: string[] = [];
    this.#scanDir(path, true, (name) => out.push(name));
    return out;
  }

  #name(start: number, end: number): string {
    const buf = this.#dirents;
    let ascii = true;
    for (let i = start; i < end; i++) {
      if (buf[i] >= 0x80) {
        ascii = false;
        break;
      }
    }
    // Short ASCII names (all cgroup names in practice) are cheaper to build in JS than through the decoder op.
    if (ascii && end - start <= 255) {
      return String.fromCharCode.apply(null, buf.subarray(start, end) as unknown as number[]);
    }
    return this.#dec.decode(buf.subarray(start, end));
  }

  #scanDir(path: string, dirsOnly: boolean, add: (name: string, isDirectory: boolean) => void): void {
    const fd = this.#open(path, O_DIRECTORY_CLOEXEC, "opendir");
    try {
      const buf = this.#dirents;
      const view = this.#direntView;
      for (;;) {
        const n = this.#s.getdents64(fd, buf, this.#direntLen);
        if (n < 0) {
          const e = this.#errno();
          if (e === EINTR) continue;
          throw errnoError("getdents64", path, e);
        }
        if (n === 0) break;
        // struct linux_dirent64: d_ino u64, d_off s64, d_reclen u16 @16, d_type u8 @18, d_name @19.
        for (let off = 0; off < n;) {
          const reclen = view.getUint16(off + 16, true);
          const type = buf[off + 18];
          off += reclen;
          if (dirsOnly && type !== DT_DIR && type !== DT_UNKNOWN) continue;
          const start = off - reclen + 19;
          let end = start;
          while (buf[end] !== 0) end++;
          const nameLen = end - start;
          if (buf[start] === 46 && (nameLen === 1 || (nameLen === 2 && buf[start + 1] === 46))) continue;
          const name = this.#name(start, end);
          let isDirectory = type === DT_DIR;
          if (type === DT_UNKNOWN) {
            try {
              isDirectory = Deno.lstatSync(`${path}/${name}`).isDirectory;
            } catch {
              isDirectory = false;
            }
          }
          if (isDirectory || !dirsOnly) add(name, isDirectory);
        }
      }
    } finally {
      this.#s.close(fd);
    }
  }
}

let shared: FastFs | null | undefined;

/** The process's FastFs (libc opened on first use), or null where libc cannot be loaded (callers fall back). */
export function fastFs(): FastFs | null {
  if (shared === undefined) {
    try {
      shared = new FastFs(libc());
    } catch {
      shared = null;
    }
  }
  return shared;
}
