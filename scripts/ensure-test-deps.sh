#!/usr/bin/env bash
# Makes sure the real components the test suite starts (Prometheus, promtool, ...) are installed:
# installs the missing Debian packages when run as root, otherwise names them and fails.
set -euo pipefail

# command-to-check:debian-package (or /absolute/file:debian-package), one per line; extend when a test
# needs a new real component.
needs=(
  "promtool:prometheus"
  "prometheus:prometheus"
  "prometheus-node-exporter:prometheus-node-exporter"
  "victoria-metrics:victoria-metrics"
  "vmalert:victoria-metrics"
  "openssl:openssl"
  "curl:curl"
  "setfacl:acl"
  "getfacl:acl"
  "setcap:libcap2-bin"
  "systemd-analyze:systemd"
  "gcc:gcc"
  "slurmctld:slurm-wlm"
  "slurmd:slurm-wlm"
  "slurmdbd:slurmdbd"
  "sacct:slurm-client"
  "munged:munge"
  "mariadbd:mariadb-server"
  "qemu-system-x86_64:qemu-system-x86"
  "ipmi_sim:openipmi"
  "ipmitool:ipmitool"
  "ipmi-dcmi:freeipmi-tools"
  "/usr/include/OpenIPMI/serv.h:libopenipmi-dev"
  "perl:perl-base"
  "clang:clang"
  "llc:llvm"
  "bpftool:bpftool"
  "/usr/include/bpf/bpf_helpers.h:libbpf-dev"
  "/usr/lib/x86_64-linux-gnu/libbpf.so.1:libbpf1"
  "systemd-socket-activate:systemd"
  "capsh:libcap2-bin"
  "dpkg-deb:dpkg"
  "dpkg-shlibdeps:dpkg-dev"
  "lintian:lintian"
  "sqlite3:sqlite3"
  "npm:npm"
  "gzip:gzip"
)

missing=()
for n in "${needs[@]}"; do
  cmd=${n%%:*}
  pkg=${n#*:}
  if [[ "$cmd" == /* ]]; then
    [ -e "$cmd" ] && continue
  elif command -v "$cmd" >/dev/null 2>&1; then
    continue
  fi
  case " ${missing[*]-} " in *" $pkg "*) ;; *) missing+=("$pkg") ;; esac
done

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "missing test dependencies (Debian packages): ${missing[*]}; run as root or install them" >&2
  exit 1
fi
echo "installing test dependencies: ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get -o DPkg::Lock::Timeout=600 update -qq >/dev/null
apt-get install -y -qq -o DPkg::Lock::Timeout=600 --no-install-recommends "${missing[@]}" >/dev/null
