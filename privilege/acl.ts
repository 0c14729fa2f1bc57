// POSIX ACL entries that let the run-as user reach configured paths, changing nobody else's rights: an
// entry is added only where none exists, the mask only widened when no other entry's effective rights move.

import { ctimeNs, getXattr, setXattr } from "../ffi/libc.ts";

/** One planned ACL entry: grant `perm` (rwx bits) on `path` to `uid`. */
export interface AclEntry {
  path: string;
  uid: number;
  perm: number;
}

/** What adding an entry changed, so that exactly that can be undone (also after a crash). */
export interface AddedAcl extends AclEntry {
  /** The mask before (null: the file had no mask, i.e. no extended ACL). */
  maskBefore: number | null;
  /** The mask written with the entry. */
  maskAfter: number;
  /** The path's ctime (ns, decimal) right after the change: a later change by anyone else moves it. */
  ctime: string;
}

const XATTR = "system.posix_acl_access";
const VERSION = 2;
const TAG = { USER_OBJ: 1, USER: 2, GROUP_OBJ: 4, GROUP: 8, MASK: 0x10, OTHER: 0x20 } as const;

/** One raw entry of the system.posix_acl_access xattr. */
export interface RawAclEntry {
  tag: number;
  perm: number;
  id: number;
}

function decodeAcl(buf: Uint8Array): RawAclEntry[] {
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  if (buf.length < 4 || dv.getUint32(0, true) !== VERSION) throw new Error("unsupported ACL xattr version");
  const out: RawAclEntry[] = [];
  for (let o = 4; o + 8 <= buf.length; o += 8) {
    out.push({ tag: dv.getUint16(o, true), perm: dv.getUint16(o + 2, true), id: dv.getUint32(o + 4, true) });
  }
  return out;
}

function encodeAcl(entries: RawAclEntry[]): Uint8Array {
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

/** The access ACL of a path: the xattr's entries, or the three the mode bits stand for. */
export function currentAcl(path: string): RawAclEntry[] {
  const raw = getXattr(path, XATTR);
  if (raw) return decodeAcl(raw);
  const mode = Deno.statSync(path).mode ?? 0;
  return [
    { tag: TAG.USER_OBJ, perm: (mode >> 6) & 7, id: 0 },
    { tag: TAG.GROUP_OBJ, perm: (mode >> 3) & 7, id: 0 },
    { tag: TAG.OTHER, perm: mode & 7, id: 0 },
  ];
}

const rwx = (p: number) => `${p & 4 ? "r" : "-"}${p & 2 ? "w" : "-"}${p & 1 ? "x" : "-"}`;

/** Entries whose effective rights differ between two masks (the group class: group owner and named entries). */
function movedBy(entries: RawAclEntry[], from: number, to: number, skipUid?: number): RawAclEntry[] {
  return entries.filter((e) =>
    (e.tag === TAG.GROUP_OBJ || e.tag === TAG.GROUP || (e.tag === TAG.USER && e.id !== skipUid)) &&
    (e.perm & from) !== (e.perm & to)
  );
}

function describe(e: RawAclEntry): string {
  const who = e.tag === TAG.GROUP_OBJ ? "group:" : e.tag === TAG.GROUP ? `group:${e.id}` : `user:${e.id}`;
  return `${who}:${rwx(e.perm)}`;
}

/**
 * Adds an ACL_USER entry for `e.uid` with `e.perm`. Returns what it changed, or undefined when the user's
 * existing entry already grants it. Throws (one line naming the path) rather than change an existing entry
 * or widen the mask in a way that would change anyone else's effective rights.
 */
export function addAclEntry(e: AclEntry): AddedAcl | undefined {
  const acl = currentAcl(e.path);
  const maskEntry = acl.find((x) => x.tag === TAG.MASK);
  const mine = acl.find((x) => x.tag === TAG.USER && x.id === e.uid);
  if (mine) {
    const eff = mine.perm & (maskEntry?.perm ?? 7);
    if ((eff & e.perm) === e.perm) return undefined;
    throw new Error(
      `${e.path}: has an ACL entry user:${e.uid}:${rwx(mine.perm)} (effective ${rwx(eff)}) that does not grant ` +
        `${rwx(e.perm)}; ceems changes no existing ACL entry: grant it yourself`,
    );
  }
  const groupObj = acl.find((x) => x.tag === TAG.GROUP_OBJ)!.perm;
  // Without a mask the group class is the group owner alone: a mask of group owner | ours moves nobody.
  const maskBefore = maskEntry ? maskEntry.perm : null;
  const maskAfter = maskEntry ? maskEntry.perm | e.perm : groupObj | e.perm;
  const moved = movedBy(acl, maskBefore ?? 7, maskAfter);
  if (moved.length) {
    throw new Error(
      `${e.path}: adding user:${e.uid}:${rwx(e.perm)} would widen the ACL mask from ${rwx(maskBefore ?? 7)} to ` +
        `${rwx(maskAfter)} and change the effective rights of ${moved.map(describe).join(", ")}; ` +
        "ceems changes nobody's rights but the run-as user's: grant it access yourself",
    );
  }
  const next = acl.filter((x) => x.tag !== TAG.MASK);
  next.push({ tag: TAG.USER, perm: e.perm, id: e.uid }, { tag: TAG.MASK, perm: maskAfter, id: 0 });
  setXattr(e.path, XATTR, encodeAcl(next));
  return { ...e, maskBefore, maskAfter, ctime: ctimeNs(e.path) };
}

/** Whether the run-as user's entry `a` added is still there, unchanged. */
export function addedAclPresent(a: AddedAcl): boolean {
  return currentAcl(a.path).some((x) => x.tag === TAG.USER && x.id === a.uid && x.perm === a.perm);
}

/**
 * Undoes `a`: removes the run-as user's entry only if it is still exactly the one added, and puts the mask
 * back only where that moves nobody's effective rights (an ACL left minimal folds back into the mode bits).
 */
export function removeAddedAcl(a: AddedAcl): "removed" | "absent" | "changed" {
  const acl = currentAcl(a.path);
  const mine = acl.find((x) => x.tag === TAG.USER && x.id === a.uid);
  if (!mine) return "absent";
  if (mine.perm !== a.perm) return "changed";
  const left = acl.filter((x) => x !== mine);
  const mask = left.find((x) => x.tag === TAG.MASK);
  const named = left.some((x) => x.tag === TAG.USER || x.tag === TAG.GROUP);
  if (mask && mask.perm === a.maskAfter) {
    if (a.maskBefore === null && !named) left.splice(left.indexOf(mask), 1);
    else if (a.maskBefore !== null && movedBy(left, a.maskAfter, a.maskBefore).length === 0) {
      mask.perm = a.maskBefore;
    }
  }
  setXattr(a.path, XATTR, encodeAcl(left));
  return "removed";
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
