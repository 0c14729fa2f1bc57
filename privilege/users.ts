// Resolves --security.run-as-user (a name or a numeric uid) through /etc/passwd into uid, gid and home
// directory, and its groups through /etc/group, without libc's NSS (which would need FFI and load modules).

/** A local account. */
export interface UserInfo {
  name: string;
  uid: number;
  gid: number;
  home: string;
}

/** Parses passwd(5) text into accounts. */
export function parsePasswd(text: string): UserInfo[] {
  const out: UserInfo[] = [];
  for (const line of text.split("\n")) {
    if (!line || line.startsWith("#")) continue;
    const f = line.split(":");
    if (f.length < 7 || !/^\d+$/.test(f[2]) || !/^\d+$/.test(f[3])) continue;
    out.push({ name: f[0], uid: Number(f[2]), gid: Number(f[3]), home: f[5] });
  }
  return out;
}

/** The groups `user` acts with: its primary group and those of group(5) that list it as a member. */
export function groupIds(user: UserInfo, groupPath = "/etc/group"): number[] {
  const out = new Set([user.gid]);
  try {
    for (const line of Deno.readTextFileSync(groupPath).split("\n")) {
      const f = line.split(":");
      if (f.length >= 4 && /^\d+$/.test(f[2]) && f[3].split(",").includes(user.name)) out.add(Number(f[2]));
    }
  } catch {
    // no group file: the primary group only
  }
  return [...out];
}

/** Looks a user up by name, then by uid (CEEMS's order); throws naming the value when neither matches. */
export function resolveUser(spec: string, passwdPath = "/etc/passwd"): UserInfo {
  const users = parsePasswd(Deno.readTextFileSync(passwdPath));
  const byName = users.find((u) => u.name === spec);
  if (byName) return byName;
  if (/^\d+$/.test(spec)) {
    const byUid = users.find((u) => u.uid === Number(spec));
    if (byUid) return byUid;
  }
  throw new Error(`unknown user "${spec}" (not a name or uid in ${passwdPath})`);
}
