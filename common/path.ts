// POSIX path helpers (join, dirname, basename, isAbsolute) with node:path's results for the paths the
// exporter builds, so its modules need not load node compatibility at start-up.

/** Whether `p` starts at the root. */
export function isAbsolute(p: string): boolean {
  return p.startsWith("/");
}

/** `p` with `.`/`..` segments resolved and repeated slashes collapsed, as node's path.posix.normalize. */
export function normalize(p: string): string {
  if (p === "") return ".";
  const abs = p.startsWith("/");
  const out: string[] = [];
  for (const seg of p.split("/")) {
    if (seg === "" || seg === ".") continue;
    if (seg === "..") {
      if (out.length > 0 && out[out.length - 1] !== "..") out.pop();
      else if (!abs) out.push("..");
    } else out.push(seg);
  }
  const body = out.join("/");
  const trailing = p.endsWith("/") && body !== "" ? "/" : "";
  if (abs) return `/${body}${trailing}`;
  return body === "" ? "." : body + trailing;
}

/** The segments joined with "/" and normalized; empty segments are skipped ("." when nothing is left). */
export function join(...parts: string[]): string {
  const kept = parts.filter((s) => s !== "");
  return kept.length === 0 ? "." : normalize(kept.join("/"));
}

/** The directory part of `p`, exactly as node's path.posix.dirname (a slash run before the last segment loses one slash). */
export function dirname(p: string): string {
  if (p === "") return ".";
  const hasRoot = p[0] === "/";
  let end = -1;
  let matchedSlash = true;
  for (let i = p.length - 1; i >= 1; i--) {
    if (p[i] === "/") {
      if (!matchedSlash) {
        end = i;
        break;
      }
    } else matchedSlash = false;
  }
  if (end === -1) return hasRoot ? "/" : ".";
  if (hasRoot && end === 1) return "//";
  return p.slice(0, end);
}

/** The last segment of `p` (trailing slashes ignored), as node's path.posix.basename without a suffix. */
export function basename(p: string): string {
  let end = p.length;
  while (end > 1 && p[end - 1] === "/") end--;
  if (end === 1 && p[0] === "/") return "";
  return p.slice(p.lastIndexOf("/", end - 1) + 1, end);
}
