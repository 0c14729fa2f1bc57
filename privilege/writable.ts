// Who could replace a file: the file or any directory above it writable (mode bits and ACL entries) by an
// identity, or by anyone but root; a sticky directory protects the entries others own.

import { currentAcl } from "./acl.ts";

// No node:path here: this module is in the privileged Workers' graph, which imports only local modules.
const dirname = (p: string) => p.slice(0, p.lastIndexOf("/")) || "/";
const resolve = (dir: string, target: string) => target.startsWith("/") ? target : `${dir}/${target}`;

/** A user with the groups it can act with. */
export interface Identity {
  uid: number;
  gids: number[];
}

/** Anyone who is not root (uid 0): what a tool run as root must be safe from. */
export const NOT_ROOT = "not-root" as const;

/** A user (with groups), or every user but root. */
export type Who = Identity | typeof NOT_ROOT;

const TAG = { USER_OBJ: 1, USER: 2, GROUP_OBJ: 4, GROUP: 8, MASK: 0x10, OTHER: 0x20 } as const;

/** Why `who` may write the inode at `path`, or undefined. */
function writeReason(path: string, st: Deno.FileInfo, who: Who): string | undefined {
  const acl = currentAcl(path);
  const mask = acl.find((e) => e.tag === TAG.MASK)?.perm ?? 7;
  const w = (perm: number) => (perm & 2) !== 0;
  const groupObj = acl.find((e) => e.tag === TAG.GROUP_OBJ)!.perm;
  const other = acl.find((e) => e.tag === TAG.OTHER)!.perm;
  if (who === NOT_ROOT) {
    if (st.uid !== 0) return `${path} belongs to uid ${st.uid}`;
    if (w(groupObj & mask)) return `${path} is group-writable (gid ${st.gid})`;
    if (w(other)) return `${path} is writable by others`;
    const named = acl.filter((e) => (e.tag === TAG.USER && e.id !== 0) || e.tag === TAG.GROUP);
    const writers = named.filter((e) => w(e.perm & mask));
    if (writers.length) {
      const names = writers.map((e) => `${e.tag === TAG.USER ? "user" : "group"}:${e.id}`);
      return `${path} is writable through ACL entries (${names.join(", ")})`;
    }
    return undefined;
  }
  if (st.uid === who.uid) return `${path} belongs to uid ${who.uid}`;
  const user = acl.find((e) => e.tag === TAG.USER && e.id === who.uid);
  if (user) return w(user.perm & mask) ? `${path} is writable by uid ${who.uid} (ACL)` : undefined;
  const groups = acl.filter((e) =>
    (e.tag === TAG.GROUP_OBJ && who.gids.includes(st.gid ?? -1)) || (e.tag === TAG.GROUP && who.gids.includes(e.id))
  );
  if (groups.length) {
    return groups.some((e) => w(e.perm & mask)) ? `${path} is writable by a group of uid ${who.uid}` : undefined;
  }
  return w(other) ? `${path} is writable by others` : undefined;
}

/**
 * Why `who` could change what `path` is (write it, or rename or replace it or a directory above it), or
 * undefined when only someone else can. Symbolic links are followed hop by hop: the directory holding each
 * link counts as well as the target's (a link in a directory `who` can write can be pointed elsewhere). A
 * sticky writable directory (/tmp) counts only for entries `who` owns (for NOT_ROOT: entries not owned by root).
 */
export function replaceableBy(path: string, who: Who): string | undefined {
  let hop = path;
  for (let links = 0;; links++) {
    if (links > 40) return `${path}: too many levels of symbolic links`;
    const link = Deno.lstatSync(hop);
    if (!link.isSymlink) break;
    // The link's own mode means nothing; its directory, and in a sticky one its owner, decide.
    const why = chainReason(Deno.realPathSync(dirname(hop)), who, link);
    if (why) return `${why} (it holds the link ${hop})`;
    hop = resolve(dirname(hop), Deno.readLinkSync(hop));
  }
  return chainReason(Deno.realPathSync(path), who);
}

/**
 * Why `who` could change the entry at the real path `real`, or a directory above it; with `entry`, the
 * entry to judge lies in the directory `real` (a symbolic link, which only its directory protects).
 */
function chainReason(real: string, who: Who, entry?: Deno.FileInfo): string | undefined {
  const parts = real.split("/").filter((p) => p);
  const chain = ["/", ...parts.map((_, i) => "/" + parts.slice(0, i + 1).join("/"))];
  const stats = chain.map((p) => Deno.statSync(p));
  for (let i = 0; i < chain.length; i++) {
    const why = writeReason(chain[i], stats[i], who);
    if (!why) continue;
    const next = stats[i + 1] ?? entry;
    const sticky = stats[i].isDirectory && ((stats[i].mode ?? 0) & 0o1000) !== 0;
    const ownerSafe = who === NOT_ROOT ? stats[i].uid === 0 : stats[i].uid !== who.uid;
    if (sticky && ownerSafe && next && (who === NOT_ROOT ? next.uid === 0 : next.uid !== who.uid)) continue;
    return why;
  }
  return undefined;
}
