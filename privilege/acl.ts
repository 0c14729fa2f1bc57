// POSIX ACL entries that let the run-as user reach configured paths: planning from file modes, and
// adding/removing ACL_USER entries through the system.posix_acl_access xattr. Synchronous calls only.

import { getXattr, setXattr } from "../ffi/libc.ts";

/** One planned ACL entry: grant `perm` (rwx bits) on `path` to `uid`. */
export interface AclEntry {
  path: string;
  uid: number;
  perm: number;
}

const XATTR = "system.posix_acl_access";
const VERSION = 2;
const TAG = { USER_OBJ: 1, USER: 2, GROUP_OBJ: 4, GROUP: 8, MASK: 0x10, OTHER: 0x20 } as const;

interface RawEntry {
  tag: number;
  perm: number;
  id: number;
}

function decodeAcl(buf: Uint8Array): RawEntry[] {
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  if (buf.length < 4 || dv.getUint32(0, true) !== VERSION) throw new Error("unsupported ACL xattr version");
  const out: RawEntry[] = [];
  for (let o = 4; o + 8 <= buf.length; o += 8) {
    out.push({ tag: dv.getUint16(o, true), perm: dv.getUint16(o + 2, true), id: dv.getUint32(o + 4, true) });
  }
  return out;
}

function encodeAcl(entries: RawEntry[]): Uint8Array {
  const order = (t: number) => [1, 2, 4, 8, 0x10, 0x20].indexOf(t);
  const sorted = [...entries].sort((a, b) => order(a.tag) - order(b.tag) || a.id - b.id);
  const buf = new Uint8Array(4 + 8 * sorted.length);
  const dv = new DataView(buf.buffer);
  dv.setUint32(0, VERSION, true);
  sorted.forEach((e, i) => {
    dv.setUint16(4 + 8 * i, e.tag, true);
    dv.setUint16(6 + 8 * i, e.perm, true);
    dv.setUint32(8 + 8 * i, e.tag === TAG.USER || e.tag === TAG.GROUP ? e.id : 0xffffffff, true);
  });
  return buf;
}

function currentAcl(path: string): RawEntry[] {
  const raw = getXattr(path, XATTR);
  if (raw) return decodeAcl(raw);
  const mode = Deno.statSync(path).mode ?? 0;
  return [
    { tag: TAG.USER_OBJ, perm: (mode >> 6) & 7, id: 0 },
    { tag: TAG.GROUP_OBJ, perm: (mode >> 3) & 7, id: 0 },
    { tag: TAG.OTHER, perm: mode & 7, id: 0 },
  ];
}

/** Recomputes the mask as setfacl does: the union of the group class (named entries and group owner). */
function withMask(entries: RawEntry[]): RawEntry[] {
  const rest = entries.filter((e) => e.tag !== TAG.MASK);
  const named = rest.some((e) => e.tag === TAG.USER || e.tag === TAG.GROUP);
  if (!named) return rest;
  const mask = rest.filter((e) => e.tag !== TAG.USER_OBJ && e.tag !== TAG.OTHER).reduce((m, e) => m | e.perm, 0);
  return [...rest, { tag: TAG.MASK, perm: mask, id: 0 }];
}

/** Adds (or widens) an ACL_USER entry. */
export function addAclEntry(e: AclEntry): void {
  const acl = currentAcl(e.path);
  const mine = acl.find((x) => x.tag === TAG.USER && x.id === e.uid);
  if (mine) mine.perm |= e.perm;
  else acl.push({ tag: TAG.USER, perm: e.perm, id: e.uid });
  setXattr(e.path, XATTR, encodeAcl(withMask(acl)));
}

/** Removes the ACL_USER entry of `uid`; a minimal ACL left over folds back into the mode bits. */
export function removeAclEntry(path: string, uid: number): void {
  const acl = currentAcl(path);
  const left = acl.filter((x) => !(x.tag === TAG.USER && x.id === uid));
  if (left.length === acl.length) return;
  setXattr(path, XATTR, encodeAcl(withMask(left)));
}

/** Permission bits `uid`/`gid` would get from a path's mode alone (owner, group or other class). */
function modeBitsFor(st: Deno.FileInfo, uid: number, gid: number): number {
  const mode = st.mode ?? 0;
  if (st.uid === uid) return (mode >> 6) & 7;
  if (st.gid === gid) return (mode >> 3) & 7;
  return mode & 7;
}

/**
 * Plans the entries the user needs: r (files) or r-x (directories) on read paths, rw/rwx on read-write
 * paths, and search (x) on every ancestor directory it cannot traverse. Missing paths are skipped.
 */
export function planAclEntries(
  user: { uid: number; gid: number },
  readPaths: string[],
  readWritePaths: string[],
): AclEntry[] {
  const want = new Map<string, number>();
  const need = (path: string, perm: number) => want.set(path, (want.get(path) ?? 0) | perm);
  const visit = (path: string, rw: boolean) => {
    let st: Deno.FileInfo;
    try {
      st = Deno.statSync(path);
    } catch {
      return;
    }
    need(path, st.isDirectory ? (rw ? 7 : 5) : (rw ? 6 : 4));
    const parts = path.split("/").filter((p) => p);
    for (let i = 0; i < parts.length - 1; i++) need("/" + parts.slice(0, i + 1).join("/"), 1);
    if (parts.length > 0) need("/", 1);
  };
  for (const p of readPaths.filter((p) => p)) visit(p.startsWith("/") ? p : `${Deno.cwd()}/${p}`, false);
  for (const p of readWritePaths.filter((p) => p)) visit(p.startsWith("/") ? p : `${Deno.cwd()}/${p}`, true);
  const out: AclEntry[] = [];
  for (const [path, perm] of want) {
    const st = Deno.statSync(path);
    const missing = perm & ~modeBitsFor(st, user.uid, user.gid);
    if (missing) out.push({ path, uid: user.uid, perm });
  }
  return out;
}
