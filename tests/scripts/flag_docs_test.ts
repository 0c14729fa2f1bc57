// The flag references in docs/flags/ are exactly what each subcommand's `--help` prints today, and every
// documented flag name appears in them (regenerate with `deno task docs:flags`).

import { assert, assertEquals } from "../helpers/assert.ts";
import { DOCUMENTED, flagDoc, flagDocPath } from "../../scripts/flag_docs.ts";

Deno.test("docs/flags/*.md match each subcommand's --help", async () => {
  for (const sub of DOCUMENTED) {
    const fresh = await flagDoc(sub);
    const committed = Deno.readTextFileSync(flagDocPath(sub));
    assertEquals(committed, fresh, `docs/flags/${sub}.md is stale: run deno task docs:flags`);
    assert((committed.match(/^ {2}--/gm) ?? []).length > 5, `${sub}: no flag listed`);
  }
});
