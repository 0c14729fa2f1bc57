// Where the privileged Worker's code comes from: the committed single-file bundle of privilege/worker.ts
// as a blob: URL when it matches the sources (no per-Worker transpile after the drop), else the TS module.

/**
 * Source files of the privileged Worker's module graph: privilege/worker.ts and every module it imports,
 * transitively (relative imports only; the run-as user must be able to read them all).
 */
export function workerModuleFiles(): string[] {
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
  visit(new URL("./worker.ts", import.meta.url));
  return [...seen].map((h) => decodeURIComponent(new URL(h).pathname)).sort();
}

/** The Worker's source files, computed once at start-up. */
export const WORKER_MODULE_FILES: string[] = workerModuleFiles();

/** The committed bundle (scripts/bundle_worker.ts regenerates it). */
export const WORKER_BUNDLE_URL = new URL("./worker.bundle.js", import.meta.url);
const WORKER_TS_URL = new URL("./worker.ts", import.meta.url).href;
const HEADER = /^\/\/ ceems-worker-bundle sources-sha256=([0-9a-f]{64})\n/;

/** SHA-256 (hex) over the Worker's source files, in WORKER_MODULE_FILES order. */
export async function workerSourcesHash(): Promise<string> {
  const enc = new TextEncoder();
  const parts = WORKER_MODULE_FILES.map((f) =>
    enc.encode(`${f.split("/").slice(-2).join("/")}\n${Deno.readTextFileSync(f)}\n`)
  );
  const all = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let off = 0;
  for (const p of parts) {
    all.set(p, off);
    off += p.length;
  }
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", all));
  return [...digest].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/** The header line a bundle of the current sources carries. */
export function bundleHeader(hash: string): string {
  return `// ceems-worker-bundle sources-sha256=${hash}\n`;
}

/**
 * The URL to start privileged Workers from: a blob: URL of the bundle when its header matches the
 * current sources, else the TypeScript module (correct, but transpiled again by every Worker once the
 * run-as user cannot read Deno's cache). Call before the privilege drop.
 */
export async function resolveWorkerUrl(): Promise<{ url: string; bundled: boolean; reason?: string }> {
  if (WORKER_BUNDLE_URL.protocol !== "file:") return { url: WORKER_TS_URL, bundled: false, reason: "not a file" };
  let text: string;
  try {
    text = Deno.readTextFileSync(WORKER_BUNDLE_URL);
  } catch (e) {
    return { url: WORKER_TS_URL, bundled: false, reason: (e as Error).message };
  }
  const m = HEADER.exec(text);
  const hash = await workerSourcesHash();
  if (!m || m[1] !== hash) return { url: WORKER_TS_URL, bundled: false, reason: "bundle is stale" };
  const blob = new Blob([text], { type: "application/javascript" });
  return { url: URL.createObjectURL(blob), bundled: true };
}
