// Domain XML fixtures for the libvirt tests: a persistent definition as in /etc/libvirt/qemu and the
// runtime status file libvirt keeps in /run/libvirt/qemu (`<domstatus>` around the live `<domain>`).

/** A persistent `<domain>` with one PCI passthrough GPU and one mdev (vGPU). */
export function domainXml(uuid: string, extra = ""): string {
  return `<domain type='kvm'>\n  <name>instance-0000000a</name>\n  <uuid>${uuid}</uuid>\n  <devices>\n` +
    `    <hostdev mode='subsystem' type='pci' managed='yes'><source>` +
    `<address domain='0x0000' bus='0x15' slot='0x00' function='0x0'/></source></hostdev>\n` +
    `    <hostdev mode='subsystem' type='mdev' model='vfio-pci'><source><address uuid='AA-BB'/></source></hostdev>\n` +
    `${extra}  </devices>\n</domain>\n`;
}

/**
 * A runtime status file as libvirt's QEMU driver writes it for a running VM: daemon state (monitor,
 * vCPU threads, QEMU capabilities, device aliases in a `<devices>` of its own) before the live domain.
 */
export function domstatusXml(uuid: string, name: string, busHex = "0x21"): string {
  return `<!--\nWARNING: THIS IS AN AUTO-GENERATED FILE. CHANGES TO IT ARE LIKELY TO BE\nOVERWRITTEN AND LOST.\n-->\n` +
    `<domstatus state='running' reason='booted' pid='4711'>\n` +
    `  <taint flag='high-privileges'/>\n` +
    `  <monitor path='/var/lib/libvirt/qemu/domain-3-${name}/monitor.sock' type='unix'/>\n` +
    `  <vcpus>\n    <vcpu id='0' pid='4720'/>\n    <vcpu id='1' pid='4721'/>\n  </vcpus>\n` +
    `  <qemuCaps>\n    <flag name='kvm'/>\n    <flag name='vfio-pci'/>\n  </qemuCaps>\n` +
    `  <devices>\n    <device alias='hostdev0'/>\n    <device alias='net0'/>\n  </devices>\n` +
    `  <libDir path='/var/lib/libvirt/qemu/domain-3-${name}'/>\n` +
    `  <domain type='kvm' id='3'>\n    <name>${name}</name>\n    <uuid>${uuid}</uuid>\n` +
    `    <metadata>\n      <nova:instance xmlns:nova="http://openstack.org/xmlns/libvirt/nova/1.1">\n` +
    `        <nova:name>vm-${name}</nova:name>\n      </nova:instance>\n    </metadata>\n` +
    `    <resource>\n      <partition>/machine</partition>\n    </resource>\n    <devices>\n` +
    `      <hostdev mode='subsystem' type='pci' managed='yes'>\n        <driver name='vfio'/>\n` +
    `        <source>\n          <address domain='0x0000' bus='${busHex}' slot='0x00' function='0x0'/>\n        </source>\n` +
    `        <alias name='hostdev0'/>\n` +
    `        <address type='pci' domain='0x0000' bus='0x00' slot='0x05' function='0x0'/>\n      </hostdev>\n` +
    `    </devices>\n  </domain>\n</domstatus>\n`;
}
