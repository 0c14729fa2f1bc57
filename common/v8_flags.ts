// V8 heap settings the exporter runs with (deno.json's exporter task, packaging/bin/ceems, deno compile):
// a 1 MiB semi-space and size-optimised heap growth keep a 50,000-series scrape's garbage from inflating RSS.

/**
 * The `--v8-flags` value for `ceems exporter`. Measured with `deno task bench cgroups` at 5,000 jobs: resident
 * memory 160 → 85 MiB, for about 10 % more scrape time (more, smaller GCs). tests/common/v8_flags_test.ts
 * checks that every launcher uses exactly this value.
 */
export const EXPORTER_V8_FLAGS = "--max-semi-space-size=1,--optimize-for-size";
