// Fake external tools for exporter tests: shell scripts that print a recorded output chosen by their
// command line, or misbehave on purpose (exit non-zero, hang, print nonsense).

import { join } from "node:path";

/** Writes an executable script `dir/name` with the given body (a `#!/bin/sh` script). */
export function writeScript(dir: string, name: string, body: string): string {
  const path = join(dir, name);
  Deno.writeTextFileSync(path, `#!/bin/sh\n${body}\n`);
  Deno.chmodSync(path, 0o755);
  return path;
}

function shQuote(s: string): string {
  return `'${s.replaceAll("'", `'\\''`)}'`;
}

/**
 * Writes a fake `tool` into `binDir` that prints `recordingsDir/<tool>_<arg1>_<arg2>....<ext>` for the
 * command line it is called with (the naming of the recorded tool outputs), and fails on any other.
 * `prefixFallbacks` maps an argument prefix (`statistic qp`) to a recording used for every call starting so.
 */
export function writeRecordedTool(
  binDir: string,
  tool: string,
  recordingsDir: string,
  prefixFallbacks: Record<string, string> = {},
): string {
  const fallbacks = Object.entries(prefixFallbacks)
    .map(([prefix, file]) =>
      `case "$*" in ${shQuote(prefix)}*) exec /bin/cat ${shQuote(join(recordingsDir, file))} ;; esac`
    )
    .join("\n");
  return writeScript(
    binDir,
    tool,
    `key=${shQuote(tool)}
for a in "$@"; do key="\${key}_$a"; done
for ext in txt json xml csv; do
  if [ -f ${shQuote(recordingsDir)}/"$key.$ext" ]; then exec /bin/cat ${shQuote(recordingsDir)}/"$key.$ext"; fi
done
${fallbacks}
echo "fake ${tool}: no recording for: $*" >&2
exit 1`,
  );
}
