// Writes docs/flags/<subcommand>.md from each subcommand's own `--help`, so the flag reference cannot
// drift from the code: `deno task docs:flags`. tests/scripts/flag_docs_test.ts checks the files are current.

import { join } from "node:path";
import { fileURLToPath } from "node:url";

/** The subcommands whose flags are documented. */
export const DOCUMENTED = ["exporter", "api", "lb", "cacct"] as const;

const root = fileURLToPath(new URL("../", import.meta.url));

/** The path of a subcommand's flag reference. */
export function flagDocPath(sub: string): string {
  return join(root, "docs", "flags", `${sub}.md`);
}

/** The flag reference of `sub`: its `--help` as ceems prints it, under a generated-file header. */
export async function flagDoc(sub: string): Promise<string> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", join(root, "main.ts"), sub, "--help"],
    env: { NO_COLOR: "1", DENO_DIR: "/dev/null", COLUMNS: "120" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  const help = dec.decode(out.stdout) + dec.decode(out.stderr);
  if (!out.success || !help.includes("Flags:")) throw new Error(`ceems ${sub} --help failed: ${help}`);
  return `# \`ceems ${sub}\` flags

Generated from \`ceems ${sub} --help\` by \`deno task docs:flags\`; do not edit (a test compares it with the code).
Hidden flags (debugging, tests) are not listed. Each flag can also be given as \`--flag=value\`; boolean flags take
\`--no-\` to turn them off.

\`\`\`text
${help.trimEnd()}
\`\`\`
`;
}

if (import.meta.main) {
  Deno.mkdirSync(join(root, "docs", "flags"), { recursive: true });
  for (const sub of DOCUMENTED) {
    Deno.writeTextFileSync(flagDocPath(sub), await flagDoc(sub));
    console.error(`wrote ${flagDocPath(sub)}`);
  }
}
