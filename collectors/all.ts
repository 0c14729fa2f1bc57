// Imports every collector module so each registers itself; the exporter imports only this file.
// Add one line here per new collector file.

import "./cpu.ts";
import "./meminfo.ts";
import "./k8s.ts";
import "./libvirt.ts";
import "./slurm.ts";
