#!/bin/busybox sh
# /init of the QEMU guest of scripts/qemu_ipmi/run.ts: loads the IPMI driver stack, waits for /dev/ipmi0,
# runs scripts/qemu_ipmi/guest_dcmi.ts with Deno, prints its status on the serial console and powers off.
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
mount -t tmpfs tmp /tmp
echo "CEEMS-GUEST-BOOTED $(cut -d' ' -f1 /proc/uptime)"
for m in ipmi_msghandler ipmi_si ipmi_devintf; do
  insmod /modules/$m.ko || echo "CEEMS-GUEST-ERROR insmod $m"
done
i=0
while [ ! -e /dev/ipmi0 ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i + 1)); done
ls -l /dev/ipmi0 2>&1 | sed 's/^/CEEMS-GUEST-DEV /'
dmesg | grep -i ipmi | tail -5 | sed 's/^/CEEMS-GUEST-DMESG /'
HOME=/tmp DENO_DIR=/tmp/deno NO_COLOR=1 /deno run -A --no-check --no-config /repo/scripts/qemu_ipmi/guest_dcmi.ts
echo "CEEMS-GUEST-RC $?"
echo "CEEMS-GUEST-UPTIME $(cut -d' ' -f1 /proc/uptime)"
poweroff -f
