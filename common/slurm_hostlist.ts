// SLURM hostlist expansion ("gpu[01-03,07],login1" → gpu01 gpu02 gpu03 gpu07 login1), shared by the
// exporter (gres.conf NodeName/File) and the API server (sacct NodeList).

/** Expands a SLURM hostlist into its hosts, keeping the zero padding of each range's first number. */
export function expandHostlist(s: string): string[] {
  const out: string[] = [];
  for (const part of s.match(/[^,[]+(?:\[[^\]]*\][^,]*)?/g) ?? []) {
    const m = /^(.*?)\[([^\]]*)\](.*)$/.exec(part);
    if (!m) {
      out.push(part);
      continue;
    }
    for (const r of m[2].split(",")) {
      const [a, b] = r.split("-");
      if (b === undefined) out.push(m[1] + a + m[3]);
      else for (let i = Number(a); i <= Number(b); i++) out.push(m[1] + String(i).padStart(a.length, "0") + m[3]);
    }
  }
  return out;
}
