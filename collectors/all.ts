// Imports every collector module so each registers itself; the exporter imports only this file.
// Add one line here per new collector file.

import "./cpu.ts";
import "./meminfo.ts";
import "./cray_pm_counters.ts";
import "./emissions.ts";
import "./hwmon.ts";
import "./infiniband.ts";
import "./ipmi_dcmi.ts";
import "./k8s.ts";
import "./libvirt.ts";
import "./netdev.ts";
import "./nvml.ts";
import "./rapl.ts";
import "./redfish.ts";
import "./slurm.ts";
