// The `k8s` collector: pod cgroups under kubepods (cgroupfs driver) and kubepods.slice (systemd
// driver) with the pod UID as uuid; CEEMS's API-related flags are accepted, the kubelet/API part is not used.

import type { FlagSet } from "../common/flags.ts";
import { gatherNeeds } from "../privilege/declare.ts";
import type { Collector, CollectorContext } from "./framework/collector.ts";
import { addCgroupFlags, type CgroupOptions, cgroupOptions } from "./units/flags.ts";
import { UnitCollector } from "./units/unit_collector.ts";
import { registerCollector } from "./framework/registry.ts";
import {
  createUnitSubCollectors,
  registerUnitSubCollectorFlags,
  type UnitSubOptions,
  unitSubOptions,
  unitSubSecurity,
} from "./units/subcollectors.ts";

/** The k8s flags, read once. */
interface K8sOptions {
  cgroup: CgroupOptions;
  sub: UnitSubOptions;
  psi: boolean;
}

function k8sOptions(f: FlagSet): K8sOptions {
  return { cgroup: cgroupOptions(f), sub: unitSubOptions(f), psi: f.bool("collector.k8s.psi-metrics") };
}

registerCollector({
  name: "k8s",
  defaultEnabled: false,
  help: "Kubernetes pod cgroups",
  registerFlags(fs) {
    addCgroupFlags(fs);
    registerUnitSubCollectorFlags(fs);
    fs.add({
      name: "collector.k8s.kubeconfig.file",
      kind: "string",
      default: "",
      help: "Path to kubeconfig file (empty means in-cluster config). Accepted for compatibility.",
    });
    fs.alias("collector.k8s.kube-config-file", "collector.k8s.kubeconfig.file");
    fs.add({
      name: "collector.k8s.kubelet-podresources-socket.file",
      kind: "string",
      default: "/var/lib/kubelet/pod-resources/kubelet.sock",
      help: "Path to kubelet pod-resources socket. Accepted for compatibility.",
    });
    fs.alias("collector.k8s.kubelet-socket-file", "collector.k8s.kubelet-podresources-socket.file");
    fs.add({
      name: "collector.k8s.psi-metrics",
      kind: "bool",
      help: "Enables collection of PSI metrics (default: disabled)",
    });
  },
  options: k8sOptions,
  security: (o) => gatherNeeds(unitSubSecurity(o.sub)),
  async create(ctx: CollectorContext, o: K8sOptions): Promise<Collector> {
    const subs = await createUnitSubCollectors(ctx, o.sub);
    const uc = new UnitCollector(ctx, "k8s", { swap: true, psi: o.psi, blkio: true }, subs, { cgroup: o.cgroup });
    const both = uc.layout.roots.includes("/kubepods") && uc.layout.roots.includes("/kubepods.slice");
    if (both) ctx.logger.warn("both kubepods and kubepods.slice exist; pods of both drivers are reported");
    return { start: () => uc.start(), update: (sink) => uc.scrape(sink, uc.discover()), stop: () => uc.stop() };
  },
});
