// Small readers for cgroup and sysfs files: optional reads, key/value parsing, CPU range lists and
// systemd's `\x2d` escapes, each strict enough to reject garbage instead of reporting zeros.

import { fastFs } from "../../ffi/fastfs.ts";

const fast = fastFs();

/** Reads a whole file as text (libc reads into a reused buffer where available); throws NotFound when absent. */
export function readTextSync(path: string): string {
  return fast ? fast.readText(path) : Deno.readTextFileSync(path);
}

/** Reads `${dir}/${name}` as text without building the joined path string; throws NotFound when absent. */
export function readTextAt(dir: string, name: string): string {
  return fast ? fast.readTextAt(dir, name) : Deno.readTextFileSync(`${dir}/${name}`);
}

/**
 * Readers of the files of one cgroup directory, as readOptional/readValue/readKeyed on `${dir}/${name}`,
 * that build the joined path only for error messages (a scrape reads tens of thousands of cgroup files).
 */
export class CgroupDir {
  constructor(readonly dir: string) {}

  /** The file's text, or undefined when it does not exist. */
  optional(name: string): string | undefined {
    try {
      return readTextAt(this.dir, name);
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) return undefined;
      throw e;
    }
  }

  /** A single-value file (undefined when absent). */
  value(name: string): number | undefined {
    const t = this.optional(name);
    return t === undefined ? undefined : parseCgroupValue(t, `${this.dir}/${name}`);
  }

  /** A flat keyed file, as {@link readKeyed}. */
  keyed(name: string, required: string[], optional: string[] = []): Map<string, number> | undefined {
    const t = this.optional(name);
    return t === undefined ? undefined : keyedFrom(t, `${this.dir}/${name}`, required, optional);
  }
}

/** Names of a directory's subdirectories (symlinks not followed); throws NotFound when absent. */
export function readSubdirsSync(path: string): string[] {
  if (fast) return fast.readSubdirs(path);
  const out: string[] = [];
  for (const e of Deno.readDirSync(path)) if (e.isDirectory) out.push(e.name);
  return out;
}

/** Reads a whole file as text, or undefined when it does not exist. Other errors propagate. */
export function readOptional(path: string): string | undefined {
  try {
    return readTextSync(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return undefined;
    throw e;
  }
}

/** Parses a non-negative integer file value; "max" yields Infinity. Throws on anything else. */
export function parseCgroupValue(text: string, path: string): number {
  const t = text.trim();
  if (t === "max") return Infinity;
  if (!/^-?\d+$/.test(t)) throw new Error(`${path}: malformed value ${JSON.stringify(t.slice(0, 40))}`);
  return Number(t);
}

/** Reads a single-value file (undefined when absent). */
export function readValue(path: string): number | undefined {
  const t = readOptional(path);
  return t === undefined ? undefined : parseCgroupValue(t, path);
}

const keyedLine = /^(\S+) (\d+)$/;
const wellFormedKeyed = /^(?:\S+ \d+\n)*(?:\S+ \d+)?$/;

/** Parses `key value` lines (memory.stat, cpu.stat, memory.events), keeping only `wanted` keys when given;
 * every line is checked, and a malformed one throws. */
export function parseFlatKeyed(text: string, path: string, wanted?: string[]): Map<string, number> {
  if (wanted && wellFormedKeyed.test(text)) {
    // Every line is `key digits`: pick the wanted keys without splitting the file (memory.stat has ~40 lines).
    const out = new Map<string, number>();
    for (const k of wanted) {
      const at = text.lastIndexOf(`\n${k} `);
      const start = at >= 0 ? at + 1 : text.startsWith(`${k} `) ? 0 : -1;
      if (start < 0) continue;
      const end = text.indexOf("\n", start);
      out.set(k, Number(text.slice(start + k.length + 1, end < 0 ? text.length : end)));
    }
    return out;
  }
  const out = new Map<string, number>();
  for (const line of text.split("\n")) {
    if (!line) continue;
    const m = keyedLine.exec(line) ?? /^\s*(\S+)\s+(\d+)\s*$/.exec(line);
    if (!m) throw new Error(`${path}: malformed line ${JSON.stringify(line.slice(0, 60))}`);
    if (!wanted || wanted.includes(m[1])) out.set(m[1], Number(m[2]));
  }
  return out;
}

/** Reads a flat keyed file, keeping the named keys (all when none are named) and requiring `required`. */
export function readKeyed(path: string, required: string[], optional: string[] = []): Map<string, number> | undefined {
  const t = readOptional(path);
  return t === undefined ? undefined : keyedFrom(t, path, required, optional);
}

function keyedFrom(t: string, path: string, required: string[], optional: string[]): Map<string, number> {
  const m = parseFlatKeyed(t, path, required.length || optional.length ? [...required, ...optional] : undefined);
  for (const k of required) {
    if (!m.has(k)) throw new Error(`${path}: missing key ${k}`);
  }
  return m;
}

/** Number of CPUs in a cpuset list such as "0-3,8,10-11". */
export function cpuListCount(text: string, path = "cpuset"): number {
  const t = text.trim();
  if (!t) return 0;
  let n = 0;
  for (const part of t.split(",")) {
    const m = /^(\d+)(?:-(\d+))?$/.exec(part.trim());
    if (!m) throw new Error(`${path}: malformed cpu list ${JSON.stringify(t.slice(0, 40))}`);
    n += m[2] === undefined ? 1 : Number(m[2]) - Number(m[1]) + 1;
  }
  return n;
}

/** PSI `full total=` value in seconds from a *.pressure file (0 when the line is absent). */
export function parsePsiFullSeconds(text: string, path: string): number {
  for (const line of text.split("\n")) {
    if (line.startsWith("full ")) {
      const m = /total=(\d+)/.exec(line);
      if (!m) throw new Error(`${path}: malformed pressure line`);
      return Number(m[1]) / 1e6;
    }
  }
  if (text.trim() && !text.startsWith("some ")) throw new Error(`${path}: malformed pressure file`);
  return 0;
}

/** Decodes systemd unit-name escapes (`\x2d` → `-`). */
export function unescapeSystemd(s: string): string {
  return s.includes("\\x") ? s.replace(/\\x([0-9a-fA-F]{2})/g, (_, h) => String.fromCharCode(parseInt(h, 16))) : s;
}

/** Parses a cgroup.procs file into PIDs; a non-numeric line throws. */
export function parseProcs(text: string, path: string): number[] {
  const out: number[] = [];
  for (const line of text.split("\n")) {
    const t = line.trim();
    if (!t) continue;
    if (!/^\d+$/.test(t)) throw new Error(`${path}: malformed pid ${JSON.stringify(t.slice(0, 20))}`);
    out.push(Number(t));
  }
  return out;
}

/** Host MemTotal and SwapTotal in bytes from <procfs>/meminfo (0 when unreadable). */
export function hostMemory(procfs: string): { memTotal: number; swapTotal: number } {
  const t = readOptional(`${procfs}/meminfo`) ?? "";
  const get = (k: string) => {
    const m = new RegExp(`^${k}:\\s+(\\d+)`, "m").exec(t);
    return m ? Number(m[1]) * 1024 : 0;
  };
  return { memTotal: get("MemTotal"), swapTotal: get("SwapTotal") };
}

/** Map "major:minor" → block device name from <procfs>/diskstats (later lines win, as CEEMS). */
export function blockDevices(procfs: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of (readOptional(`${procfs}/diskstats`) ?? "").split("\n")) {
    const f = line.trim().split(/\s+/);
    if (f.length >= 3) out.set(`${f[0]}:${f[1]}`, f[2]);
  }
  return out;
}
