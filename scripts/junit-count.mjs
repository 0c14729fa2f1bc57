// Counts test cases in a JUnit XML report (as written by `deno test --junit-path`) and prints
// "N passed, N failed"; skipped or ignored cases count as failed, since CI allows no silent skips.
import { readFileSync } from "node:fs";

const xml = readFileSync(process.argv[2], "utf8");
let passed = 0;
let failed = 0;
const re = /<testcase\b[^>]*?(\/>|>([\s\S]*?)<\/testcase>)/g;
for (const m of xml.matchAll(re)) {
  const body = m[2] ?? "";
  if (/<(failure|error|skipped)\b/.test(body)) failed++;
  else passed++;
}
if (passed + failed === 0) {
  console.error("no test cases in report");
  process.exit(1);
}
console.log(`${passed} passed, ${failed} failed`);
