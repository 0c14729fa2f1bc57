#!/usr/bin/env bash
# Makes sure the real components the test suite starts (Prometheus, promtool, ...) are installed:
# installs the missing Debian packages when run as root, otherwise names them and fails.
set -euo pipefail

# command-to-check:debian-package, one per line; extend when a test needs a new real component.
needs=(
  "promtool:prometheus"
  "prometheus:prometheus"
  "prometheus-node-exporter:prometheus-node-exporter"
  "openssl:openssl"
  "curl:curl"
  "setfacl:acl"
  "getfacl:acl"
  "setcap:libcap2-bin"
  "systemd-analyze:systemd"
  "gcc:gcc"
)

missing=()
for n in "${needs[@]}"; do
  cmd=${n%%:*}
  pkg=${n#*:}
  if ! command -v "$cmd" >/dev/null 2>&1; then
    case " ${missing[*]-} " in *" $pkg "*) ;; *) missing+=("$pkg") ;; esac
  fi
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
