// End-to-end test of native IPMI on a real kernel driver: boots a Debian kernel in QEMU whose KCS BMC
// (ipmi-bmc-extern) is OpenIPMI's ipmi_sim with our DCMI plugin, and runs guest_dcmi.ts in the guest.

/**
 * Usage (root, Debian 12): deno run -A scripts/qemu_ipmi/run.ts [--timeout-s=300] [--keep]
 * Needs qemu-system-x86, openipmi, libopenipmi-dev and gcc (installed with apt-get when missing), and fetches
 * the Debian kernel and busybox-static packages with `apt-get download` into .cache/qemu-ipmi/ once.
 * Exit status 0 when the guest read the simulated power through /dev/ipmi0 and followed a change; 1 otherwise.
 */
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { freePort } from "../free_port.ts";

const repo = fileURLToPath(new URL("../../", import.meta.url));
const here = `${repo}scripts/qemu_ipmi/`;
const arg = (n: string, d: string) => Deno.args.find((a) => a.startsWith(`--${n}=`))?.slice(n.length + 3) ?? d;
const timeoutS = Number(arg("timeout-s", "300"));
const keep = Deno.args.includes("--keep");

/** Repository files of the guest program's module graph (what `deno info` lists), relative to the repo. */
function guestModules(): string[] {
  const out = new Deno.Command(Deno.execPath(), {
    args: ["info", "--json", `${repo}scripts/qemu_ipmi/guest_dcmi.ts`],
    stdout: "piped",
    stderr: "piped",
  }).outputSync();
  if (!out.success) throw new Error(`deno info: ${new TextDecoder().decode(out.stderr)}`);
  const graph = JSON.parse(new TextDecoder().decode(out.stdout)) as { modules: { specifier: string }[] };
  const base = new URL(`file://${repo}`).href;
  return graph.modules.map((m) => m.specifier).filter((s) => s.startsWith(base)).map((s) =>
    decodeURIComponent(s.slice(base.length))
  );
}
function sh(cmd: string, args: string[], opts: { cwd?: string } = {}): string {
  const out = new Deno.Command(cmd, { args, cwd: opts.cwd, stdout: "piped", stderr: "piped" }).outputSync();
  const text = new TextDecoder().decode(out.stdout);
  if (out.code !== 0) {
    throw new Error(`${cmd} ${args.join(" ")} failed (${out.code}): ${new TextDecoder().decode(out.stderr).trim()}`);
  }
  return text;
}

function log(msg: string): void {
  console.log(`[qemu-ipmi ${new Date().toISOString().slice(11, 19)}] ${msg}`);
}

/** Installs the host tools when missing (as root). */
function ensureHostTools(): void {
  const need: string[] = [];
  if (!existsSync("/usr/bin/qemu-system-x86_64")) need.push("qemu-system-x86");
  if (!existsSync("/usr/bin/ipmi_sim")) need.push("openipmi");
  if (!existsSync("/usr/include/OpenIPMI/serv.h")) need.push("libopenipmi-dev");
  if (!existsSync("/usr/bin/gcc")) need.push("gcc");
  if (need.length === 0) return;
  log(`installing ${need.join(" ")}`);
  sh("apt-get", ["install", "-y", "-q", "-o", "DPkg::Lock::Timeout=600", "--no-install-recommends", ...need]);
}

/** Downloads and unpacks the kernel and busybox-static packages once; returns the unpack directory. */
function ensureGuestPackages(cache: string): { vmlinuz: string; modules: string; busybox: string } {
  Deno.mkdirSync(cache, { recursive: true });
  const unpacked = `${cache}/root`;
  const find = () => {
    const boot = existsSync(`${unpacked}/boot`) ? [...Deno.readDirSync(`${unpacked}/boot`)] : [];
    const vm = boot.find((e) => e.name.startsWith("vmlinuz-"));
    if (!vm || !existsSync(`${unpacked}/bin/busybox`)) return undefined;
    const version = vm.name.slice("vmlinuz-".length);
    return {
      vmlinuz: `${unpacked}/boot/${vm.name}`,
      modules: `${unpacked}/lib/modules/${version}/kernel/drivers/char/ipmi`,
      busybox: `${unpacked}/bin/busybox`,
    };
  };
  const have = find();
  if (have) return have;
  // The kernel the linux-image-amd64 metapackage points at, else the newest 6.x image apt knows.
  let image: string | undefined;
  try {
    image = /Depends: (linux-image-\S+)/.exec(sh("apt-cache", ["depends", "linux-image-amd64"]))?.[1];
  } catch {
    // no metapackage known: fall back to the search below
  }
  const candidates = sh("apt-cache", ["search", "--names-only", "^linux-image-[0-9.-]+-amd64$"])
    .split("\n").map((l) => l.split(" ")[0]).filter(Boolean).sort();
  for (const pkg of [image, ...candidates.reverse()].filter(Boolean) as string[]) {
    try {
      log(`apt-get download ${pkg} busybox-static`);
      sh("apt-get", ["download", "-q", pkg, "busybox-static"], { cwd: cache });
      image = pkg;
      break;
    } catch (e) {
      log(`${pkg}: ${(e as Error).message.split("\n")[0]}`);
      image = undefined;
    }
  }
  if (!image) throw new Error("no Debian kernel image could be downloaded");
  for (const e of Deno.readDirSync(cache)) {
    if (e.name.endsWith(".deb")) sh("dpkg-deb", ["-x", `${cache}/${e.name}`, unpacked]);
  }
  const got = find();
  if (!got) throw new Error("kernel or busybox missing after unpacking");
  return got;
}

/** Libraries the deno binary loads (ldd), to copy into the initramfs. */
function libsOf(bin: string): string[] {
  return [...sh("ldd", [bin]).matchAll(/(\/\S+\.so[^\s]*)/g)].map((m) => m[1]);
}

/** Builds the initramfs: busybox, the IPMI modules, deno and its libraries, and the repository files the guest needs. */
function buildInitramfs(dir: string, pkgs: { modules: string; busybox: string }): string {
  const root = `${dir}/initramfs`;
  for (const d of ["bin", "modules", "proc", "sys", "dev", "tmp", "lib64", "lib/x86_64-linux-gnu", "repo"]) {
    Deno.mkdirSync(`${root}/${d}`, { recursive: true });
  }
  Deno.copyFileSync(pkgs.busybox, `${root}/bin/busybox`);
  for (const m of ["ipmi_msghandler", "ipmi_si", "ipmi_devintf"]) {
    Deno.copyFileSync(`${pkgs.modules}/${m}.ko`, `${root}/modules/${m}.ko`);
  }
  Deno.copyFileSync(Deno.execPath(), `${root}/deno`);
  for (const lib of libsOf(Deno.execPath())) {
    const target = `${root}${lib}`;
    Deno.mkdirSync(target.slice(0, target.lastIndexOf("/")), { recursive: true });
    Deno.copyFileSync(lib, target);
  }
  // libc.so.6 by that name is what ffi/ipmi.ts opens.
  for (const f of guestModules()) {
    const target = `${root}/repo/${f}`;
    Deno.mkdirSync(target.slice(0, target.lastIndexOf("/")), { recursive: true });
    Deno.copyFileSync(`${repo}${f}`, target);
  }
  Deno.copyFileSync(`${here}init.sh`, `${root}/init`);
  Deno.chmodSync(`${root}/init`, 0o755);
  const out = `${dir}/initramfs.cpio`;
  sh("sh", ["-c", `cd '${root}' && find . | '${pkgs.busybox}' cpio -o -H newc > '${out}' 2>/dev/null`]);
  return out;
}

/** Starts ipmi_sim with the DCMI plugin: LAN on one port, the VM serial interface (KCS) on another. */
function startIpmiSim(dir: string, powerFile: string): { child: Deno.ChildProcess; serialPort: number } {
  sh("gcc", [
    "-O2",
    "-Wall",
    "-fPIC",
    "-shared",
    "-o",
    `${dir}/dcmi_power.so`,
    `${repo}tests/fixtures/ipmi_sim/dcmi_power.c`,
  ]);
  const serialPort = freePort();
  const lanPort = freePort();
  Deno.writeTextFileSync(
    `${dir}/lan.conf`,
    `name "ceemsbmc"
loadlib "${dir}/dcmi_power.so" "${powerFile}"
set_working_mc 0x20
  startlan 1
    addr 127.0.0.1 ${lanPort}
    priv_limit admin
    allowed_auths_callback none md2 md5 straight
    allowed_auths_user none md2 md5 straight
    allowed_auths_operator none md2 md5 straight
    allowed_auths_admin none md2 md5 straight
    guid a123456789abcdefa123456789abcdef
  endlan
  serial kcs 127.0.0.1 ${serialPort} codec VM
  user 2 true  "admin" "password" admin 10 none md2 md5 straight
`,
  );
  Deno.writeTextFileSync(
    `${dir}/bmc.emu`,
    "mc_setbmc 0x20\nmc_add 0x20 0 no-device-sdrs 0x23 9 8 0x9f 0x1291 0xf02 persist_sdr\n" +
      "sel_enable 0x20 1000 0x0a\nmc_enable 0x20\n",
  );
  Deno.mkdirSync(`${dir}/simstate`);
  const child = new Deno.Command("ipmi_sim", {
    args: ["-c", `${dir}/lan.conf`, "-f", `${dir}/bmc.emu`, "-s", `${dir}/simstate`, "-n"],
    stdout: "null",
    stderr: "null",
  }).spawn();
  return { child, serialPort };
}

/** Waits until something listens on 127.0.0.1:port, without connecting (ipmi_sim serves one VM connection). */
async function waitPort(port: number, ms: number): Promise<void> {
  const end = Date.now() + ms;
  const hexPort = port.toString(16).toUpperCase().padStart(4, "0");
  while (Date.now() < end) {
    const listening = Deno.readTextFileSync("/proc/net/tcp").split("\n")
      .some((l) => l.includes(`0100007F:${hexPort} 00000000:0000 0A`));
    if (listening) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`ipmi_sim did not listen on ${port}`);
}

/** What one boot of the guest gave. */
interface Boot {
  result?: Record<string, unknown>;
  /** Whether the guest printed any of its own lines (it booted, whatever happened next). */
  guestSpoke: boolean;
  transcript: string[];
  stderr: string;
  bootStart: number;
}

/** Boots the guest with accelerator `accel` ("kvm" or "tcg") and reads its console until it powers off. */
async function bootGuest(
  accel: string,
  vmlinuz: string,
  initrd: string,
  serialPort: number,
  powerFile: string,
  started: (p: Deno.ChildProcess) => void,
): Promise<Boot> {
  const vm = new Deno.Command("qemu-system-x86_64", {
    args: [
      ...(accel === "kvm" ? ["-accel", "kvm", "-cpu", "host"] : ["-accel", accel, "-cpu", "max"]),
      "-m",
      "1536",
      "-smp",
      "1",
      "-nographic",
      "-no-reboot",
      "-net",
      "none",
      "-kernel",
      vmlinuz,
      "-initrd",
      initrd,
      "-append",
      "console=ttyS0 quiet loglevel=3 panic=-1 rdinit=/init",
      "-chardev",
      `socket,id=ipmi0,host=127.0.0.1,port=${serialPort},reconnect=1`,
      "-device",
      "ipmi-bmc-extern,id=bmc0,chardev=ipmi0",
      "-device",
      "isa-ipmi-kcs,bmc=bmc0",
    ],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  started(vm);
  const bootStart = Date.now();
  let stderr = "";
  const stderrDone = (async () => {
    for await (const c of vm.stderr) stderr += new TextDecoder().decode(c);
  })();
  const timer = setTimeout(() => {
    log(`timed out after ${timeoutS} s`);
    try {
      vm.kill("SIGKILL");
    } catch { /* gone */ }
  }, timeoutS * 1000);
  let result: Record<string, unknown> | undefined;
  let guestSpoke = false;
  let buf = "";
  const transcript: string[] = [];
  const dec = new TextDecoder();
  for await (const chunk of vm.stdout) {
    buf += dec.decode(chunk, { stream: true });
    let nl;
    while ((nl = buf.indexOf("\n")) >= 0) {
      const line = buf.slice(0, nl).replace(/\r$/, "");
      buf = buf.slice(nl + 1);
      transcript.push(line);
      if (!line.includes("CEEMS-GUEST")) continue;
      guestSpoke = true;
      log(`guest: ${line.slice(0, 300)}`);
      if (line.includes("CEEMS-GUEST-READ1")) Deno.writeTextFileSync(powerFile, "405\n");
      const m = /CEEMS-GUEST-RESULT (.*)$/.exec(line);
      if (m) result = JSON.parse(m[1]);
    }
  }
  clearTimeout(timer);
  await vm.status;
  await stderrDone;
  return { result, guestSpoke, transcript, stderr, bootStart };
}

async function main(): Promise<number> {
  ensureHostTools();
  const pkgs = ensureGuestPackages(`${repo}.cache/qemu-ipmi`);
  const dir = Deno.makeTempDirSync({ prefix: "ceems-qemu-ipmi-" });
  let sim: Deno.ChildProcess | undefined;
  let vm: Deno.ChildProcess | undefined;
  try {
    const t0 = Date.now();
    const initrd = buildInitramfs(dir, pkgs);
    log(`initramfs ${(Deno.statSync(initrd).size / 2 ** 20).toFixed(0)} MiB built in ${Date.now() - t0} ms`);
    const powerFile = `${dir}/power_w`;
    Deno.writeTextFileSync(powerFile, "312\n");
    const s = startIpmiSim(dir, powerFile);
    sim = s.child;
    await waitPort(s.serialPort, 5000);
    // KVM when /dev/kvm exists, TCG otherwise; a KVM start that fails before the guest prints anything (e.g.
    // "failed to set MSR 0x10a" where /dev/kvm exists but cannot run this guest) falls back to TCG.
    const accels = (Deno.env.get("CEEMS_QEMU_ACCELS") ?? (existsSync("/dev/kvm") ? "kvm,tcg" : "tcg")).split(",");
    let boot: Boot | undefined;
    for (const [i, accel] of accels.entries()) {
      log(`booting ${pkgs.vmlinuz.split("/").pop()} with ${accel}`);
      boot = await bootGuest(accel, pkgs.vmlinuz, initrd, s.serialPort, powerFile, (p) => vm = p);
      vm = undefined;
      if (boot.result || boot.guestSpoke || i === accels.length - 1) break;
      log(
        `${accel} did not start the guest (${boot.stderr.trim().split("\n")[0] || "no output"}); trying ${
          accels[i + 1]
        }`,
      );
    }
    const { result, transcript, stderr, bootStart } = boot!;
    const seconds = ((Date.now() - bootStart) / 1000).toFixed(1);
    if (!result || result.error) {
      log(`FAIL after ${seconds} s: ${result ? result.error : "no result"}; last console lines:`);
      for (const l of transcript.slice(-25)) console.log("  | " + l);
      if (stderr.trim()) console.log("  qemu stderr: " + stderr.trim());
      return 1;
    }
    const first = result.first as { currentWatts: number; active: boolean };
    const last = result.last as { currentWatts: number; minWatts: number; maxWatts: number };
    const ok = first.currentWatts === 312 && first.active && last.currentWatts === 405 && last.minWatts === 312 &&
      last.maxWatts === 405;
    log(`${ok ? "PASS" : "FAIL"} in ${seconds} s: ${JSON.stringify(result)}`);
    return ok ? 0 : 1;
  } finally {
    for (const p of [vm, sim]) {
      try {
        p?.kill("SIGKILL");
        await p?.status;
      } catch { /* already gone */ }
    }
    if (!keep) Deno.removeSync(dir, { recursive: true });
    else log(`kept ${dir}`);
  }
}

if (import.meta.main) {
  try {
    Deno.exit(await main());
  } catch (e) {
    log(`error: ${(e as Error).message}`);
    Deno.exit(1);
  }
}
