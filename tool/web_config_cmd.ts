// `ceems tool config create-web-config`: a web config file for the CEEMS servers with a basic-auth user
// `ceems` (random 24-character password, bcrypt cost 10, printed once) and optionally self-signed TLS.

import { join } from "node:path";
import { stringify } from "yaml";
import { parseFlags, StartupError } from "../common/cli.ts";
import { FlagSet } from "../common/flags.ts";
import { addHelpFlags } from "./common.ts";
import { selfSignedCertificate } from "./x509.ts";

const CHARSET = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";

/** A random password of `n` characters from [a-zA-Z0-9] (rejection sampling: no modulo bias). */
export function randomPassword(n = 24): string {
  const out: string[] = [];
  const buf = new Uint8Array(1);
  while (out.length < n) {
    crypto.getRandomValues(buf);
    if (buf[0] < 248) out.push(CHARSET[buf[0] % 62]);
  }
  return out.join("");
}

/** Runs `tool config create-web-config <args>`. */
export async function createWebConfig(args: string[]): Promise<void> {
  const fs = new FlagSet("tool config create-web-config", "Create web config file for CEEMS components.");
  addHelpFlags(fs);
  fs.add({ name: "basic-auth", kind: "bool", default: true, help: "Create web config file with basic auth." });
  fs.add({
    name: "tls",
    kind: "bool",
    default: false,
    help: "Create web config file with self signed TLS certificates.",
  });
  fs.add({
    name: "tls.host",
    kind: "strings",
    default: [],
    help: "Hostnames and/or IPs to generate a certificate for.",
  });
  fs.add({
    name: "tls.validity",
    kind: "duration",
    default: 8760 * 3600e3,
    help: "Validity for TLS certificates.",
    validate: (v) => ((v as number) <= 0 ? "must be positive" : undefined),
  });
  fs.add({ name: "output-dir", kind: "string", default: "config", help: "Output directory to place config files." });
  parseFlags(fs, args, "tool");
  if (fs.bool("tls") && !fs.strings("tls.host").length) throw new StartupError("--tls.host must be provided");
  const dir = fs.string("output-dir");
  try {
    Deno.mkdirSync(dir, { recursive: true, mode: 0o700 });
  } catch (e) {
    throw new StartupError(`--output-dir: ${dir}: ${(e as Error).message}`);
  }
  const doc: Record<string, unknown> = {};
  if (fs.bool("tls")) {
    const c = await selfSignedCertificate(fs.strings("tls.host"), fs.number("tls.validity"));
    Deno.writeTextFileSync(join(dir, "cert.pem"), c.certPem, { mode: 0o644 });
    Deno.writeTextFileSync(join(dir, "key.pem"), c.keyPem, { mode: 0o600 });
    doc.tls_server_config = { cert_file: "cert.pem", key_file: "key.pem" };
  }
  let password = "";
  if (fs.bool("basic-auth")) {
    const { hash } = await import("bcryptjs");
    password = randomPassword();
    doc.basic_auth_users = { ceems: await hash(password, 10) };
  }
  const file = join(dir, "web-config.yml");
  Deno.writeTextFileSync(file, stringify(doc, { indent: 2 }), { mode: 0o600 });
  console.error(`web config file created at ${file}`);
  if (password) {
    console.error(`plain text password for basic auth is ${password}`);
    console.error("store the plain text password securely as you will need it to configure Prometheus");
  }
}
