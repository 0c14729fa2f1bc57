// A self-signed ECDSA P-256 server certificate (organisation "Acme Co", DNS names and IPs as subject
// alternative names, as CEEMS's ceems_tool makes it, but not marked as a CA: rustls clients refuse a CA
// certificate as a server's own). The key from WebCrypto, the certificate encoded here in DER.

const enc = new TextEncoder();

function len(n: number): number[] {
  if (n < 0x80) return [n];
  const out: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) out.unshift(v & 0xff);
  return [0x80 | out.length, ...out];
}

/** One DER element: tag, length, contents. */
function tlv(tag: number, ...parts: (Uint8Array | number[])[]): Uint8Array<ArrayBuffer> {
  const body = parts.flatMap((p) => [...p]);
  return new Uint8Array([tag, ...len(body.length), ...body]);
}

const seq = (...p: Uint8Array[]): Uint8Array<ArrayBuffer> => tlv(0x30, ...p);

function oid(dotted: string): Uint8Array {
  const arcs = dotted.split(".").map(Number);
  const out = [40 * arcs[0] + arcs[1]];
  for (const a of arcs.slice(2)) {
    const b: number[] = [];
    let v = a;
    do {
      b.unshift(v & 0x7f);
      v = Math.floor(v / 128);
    } while (v > 0);
    for (let i = 0; i < b.length - 1; i++) b[i] |= 0x80;
    out.push(...b);
  }
  return tlv(0x06, out);
}

/** A non-negative INTEGER from big-endian bytes (leading zeros stripped, sign byte added when needed). */
function uint(bytes: Uint8Array): Uint8Array {
  let i = 0;
  while (i < bytes.length - 1 && bytes[i] === 0) i++;
  const b = [...bytes.slice(i)];
  if (b[0] & 0x80) b.unshift(0);
  return tlv(0x02, b);
}

function time(d: Date): Uint8Array {
  const iso = d.toISOString().replace(/[-:T]/g, "").slice(0, 14) + "Z"; // YYYYMMDDHHMMSSZ
  const y = d.getUTCFullYear();
  return y >= 1950 && y < 2050 ? tlv(0x17, enc.encode(iso.slice(2))) : tlv(0x18, enc.encode(iso));
}

function ipBytes(ip: string): number[] | undefined {
  if (/^\d{1,3}(\.\d{1,3}){3}$/.test(ip)) return ip.split(".").map(Number);
  if (!ip.includes(":")) return undefined;
  const [head, tail = ""] = ip.split("::");
  const h = head ? head.split(":") : [];
  const t = ip.includes("::") && tail ? tail.split(":") : [];
  const groups = ip.includes("::") ? [...h, ...Array(8 - h.length - t.length).fill("0"), ...t] : h;
  if (groups.length !== 8) return undefined;
  return groups.flatMap((g) => {
    const v = parseInt(g, 16);
    return [v >> 8, v & 0xff];
  });
}

function extension(id: string, critical: boolean, value: Uint8Array): Uint8Array {
  return seq(oid(id), ...(critical ? [tlv(0x01, [0xff])] : []), tlv(0x04, value));
}

function pem(type: string, der: Uint8Array): string {
  const b64 = btoa(String.fromCharCode(...der));
  return `-----BEGIN ${type}-----\n${b64.match(/.{1,64}/g)!.join("\n")}\n-----END ${type}-----\n`;
}

/** A certificate and its private key, PEM encoded. */
export interface SelfSigned {
  certPem: string;
  keyPem: string;
}

/** Creates a self-signed certificate for `hosts` (names or IPs) valid for `validityMs` from now. */
export async function selfSignedCertificate(
  hosts: string[],
  validityMs: number,
  now = new Date(),
): Promise<SelfSigned> {
  const keys = await crypto.subtle.generateKey({ name: "ECDSA", namedCurve: "P-256" }, true, ["sign", "verify"]);
  const spki = new Uint8Array(await crypto.subtle.exportKey("spki", keys.publicKey));
  const pkcs8 = new Uint8Array(await crypto.subtle.exportKey("pkcs8", keys.privateKey));
  const serial = crypto.getRandomValues(new Uint8Array(16));
  const sigAlg = seq(oid("1.2.840.10045.4.3.2")); // ecdsa-with-SHA256
  const name = seq(tlv(0x31, seq(oid("2.5.4.10"), tlv(0x0c, enc.encode("Acme Co")))));
  const san: Uint8Array[] = hosts.map((h) => {
    const ip = ipBytes(h);
    return ip ? tlv(0x87, ip) : tlv(0x82, enc.encode(h));
  });
  const exts = [
    extension("2.5.29.15", true, tlv(0x03, [0x07, 0x80])), // keyUsage: digitalSignature
    extension("2.5.29.37", false, seq(oid("1.3.6.1.5.5.7.3.1"))), // extKeyUsage: serverAuth
    extension("2.5.29.19", true, seq()), // basicConstraints: not a CA
    ...(san.length ? [extension("2.5.29.17", false, seq(...san))] : []),
  ];
  const tbs = seq(
    tlv(0xa0, tlv(0x02, [2])),
    uint(serial),
    sigAlg,
    name,
    seq(time(now), time(new Date(now.getTime() + validityMs))),
    name,
    spki,
    tlv(0xa3, seq(...exts)),
  );
  const raw = new Uint8Array(await crypto.subtle.sign({ name: "ECDSA", hash: "SHA-256" }, keys.privateKey, tbs));
  const sig = seq(uint(raw.slice(0, 32)), uint(raw.slice(32)));
  const cert = seq(tbs, sigAlg, tlv(0x03, [0], sig));
  return { certPem: pem("CERTIFICATE", cert), keyPem: pem("PRIVATE KEY", pkcs8) };
}
