// The privileged Worker's module and its source files (worker.ts and everything it imports), which the
// run-as user must be able to read because Workers load their code after the privilege drop.

/**
 * Source files of a Worker's module graph: `entry` and every module it imports, transitively (relative
 * imports only; the run-as user must be able to read them all, since Workers load after the drop).
 */
export function moduleGraphFiles(entry: URL): string[] {
  const seen = new Set<string>();
  const visit = (url: URL) => {
    if (url.protocol !== "file:" || seen.has(url.href)) return;
    seen.add(url.href);
    const src = Deno.readTextFileSync(url);
    for (const m of src.matchAll(/(?:import|export)[^"';]*?from\s*["']([^"']+)["']|import\s*["']([^"']+)["']/g)) {
      const spec = m[1] ?? m[2];
      if (spec.startsWith(".")) visit(new URL(spec, url));
    }
  };
  visit(entry);
  return [...seen].map((h) => decodeURIComponent(new URL(h).pathname)).sort();
}

/** Source files of the privileged Workers' module graphs (worker.ts, exec_worker.ts and their imports). */
export function workerModuleFiles(): string[] {
  const files = ["./worker.ts", "./exec_worker.ts"].flatMap((m) => moduleGraphFiles(new URL(m, import.meta.url)));
  return [...new Set(files)].sort();
}

/** The Worker's source files, computed once at start-up. */
export const WORKER_MODULE_FILES: string[] = workerModuleFiles();

/** URL privileged Workers start from. */
export const WORKER_URL: string = new URL("./worker.ts", import.meta.url).href;

/** URL the root-exec Workers start from. */
export const EXEC_WORKER_URL: string = new URL("./exec_worker.ts", import.meta.url).href;
