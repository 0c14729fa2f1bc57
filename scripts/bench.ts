// `deno task bench [name ...]`: runs the benchmark scripts scripts/bench_<name>.ts one after the
// other (all of them when no name is given) and prints each one's report.

import { fileURLToPath } from "node:url";

const dir = fileURLToPath(new URL("./", import.meta.url));
const all = [...Deno.readDirSync(dir)]
  .map((e) => /^bench_(\w+)\.ts$/.exec(e.name)?.[1])
  .filter((n): n is string => !!n)
  .sort();
const wanted = Deno.args.length ? Deno.args : all;
let failed = 0;
for (const name of wanted) {
  if (!all.includes(name)) {
    console.error(`bench: no scripts/bench_${name}.ts (have: ${all.join(", ")})`);
    Deno.exit(2);
  }
  console.log(`\n=== bench ${name} ===`);
  const st = await new Deno.Command(Deno.execPath(), { args: ["run", "-A", `${dir}bench_${name}.ts`] }).spawn().status;
  if (!st.success) {
    failed++;
    console.error(`bench ${name} failed (exit ${st.code})`);
  }
}
Deno.exit(failed ? 1 : 0);
