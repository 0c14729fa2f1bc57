import { exporterFlags, createCollectors } from "./collectors/exporter.ts";
import { scrapeCollectors } from "./collectors/scrape.ts";
import { renderFamilies } from "./collectors/metric_sink.ts";
import { nullLogger } from "./common/log.ts";
import { InlineSecurityManager } from "./privilege/security.ts";
import { discoverUnits, findLayout } from "./collectors/cgroup/discovery.ts";
const root = Deno.args[0];
const fs = exporterFlags(); fs.parse(["--collector.disable-defaults","--collector.slurm","--collector.cgroups.force-version=v2",`--path.cgroupfs=${root}`,"--collector.gpu.type=nogpu"]);
const cols = await createCollectors(fs, nullLogger, new InlineSecurityManager());
for (let i=0;i<3;i++){
let t=performance.now();
const units = discoverUnits(findLayout("slurm","v2",root,"cpuacct"));
const td=performance.now()-t; t=performance.now();
const sink = await scrapeCollectors(cols, nullLogger);
const ts=performance.now()-t; t=performance.now();
const txt = await renderFamilies(sink.families.values());
const tr=performance.now()-t;
console.log({units: units.length, discover: td.toFixed(1), scrape: ts.toFixed(1), render: tr.toFixed(1), len: txt.length});
}
console.log(Deno.memoryUsage());
