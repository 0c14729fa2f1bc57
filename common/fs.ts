// Small filesystem helpers on Deno's own sync APIs, so the exporter's modules need not load node:fs
// (which costs the node daemon about 6 MiB resident for one call).

/** Whether `path` exists (following symlinks); false on any error, as node's existsSync. */
export function pathExists(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return false;
  }
}

/** Whether `path` is a directory (following symlinks); false when it is absent or unreadable. */
export function isDirectory(path: string): boolean {
  try {
    return Deno.statSync(path).isDirectory;
  } catch {
    return false;
  }
}
