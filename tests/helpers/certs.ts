// Generates a throwaway CA, a server certificate for 127.0.0.1/localhost and a client certificate
// with openssl, for TLS and mutual-TLS tests.

import type { ClientAuthType, WebConfig } from "../../common/web/web_config.ts";

/** Paths and PEM texts of a generated certificate set. */
export interface TestCerts {
  dir: string;
  caCert: string;
  serverCert: string;
  serverKey: string;
  clientCert: string;
  clientKey: string;
  /** A self-signed client certificate the CA did not sign. */
  strangerCert: string;
  strangerKey: string;
}

function openssl(args: string[], cwd: string) {
  const out = new Deno.Command("openssl", { args, cwd, stdout: "null", stderr: "piped" }).outputSync();
  if (out.code !== 0) throw new Error(`openssl ${args[0]} failed: ${new TextDecoder().decode(out.stderr)}`);
}

/** Creates the certificates in a new temporary directory. */
export function makeTestCerts(): TestCerts {
  const dir = Deno.makeTempDirSync({ prefix: "ceems-certs-" });
  openssl([
    "req",
    "-x509",
    "-newkey",
    "rsa:2048",
    "-nodes",
    "-keyout",
    "ca.key",
    "-out",
    "ca.crt",
    "-days",
    "2",
    "-subj",
    "/CN=ceems-test-ca",
    "-addext",
    "basicConstraints=critical,CA:TRUE",
    "-addext",
    "keyUsage=keyCertSign,cRLSign",
  ], dir);
  Deno.writeTextFileSync(
    `${dir}/server.ext`,
    "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n",
  );
  Deno.writeTextFileSync(`${dir}/client.ext`, "basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n");
  for (const who of ["server", "client"]) {
    openssl([
      "req",
      "-newkey",
      "rsa:2048",
      "-nodes",
      "-keyout",
      `${who}.key`,
      "-out",
      `${who}.csr`,
      "-subj",
      `/CN=${who}`,
    ], dir);
    openssl([
      "x509",
      "-req",
      "-in",
      `${who}.csr`,
      "-CA",
      "ca.crt",
      "-CAkey",
      "ca.key",
      "-CAcreateserial",
      "-out",
      `${who}.crt`,
      "-days",
      "2",
      "-extfile",
      `${who}.ext`,
    ], dir);
  }
  openssl([
    "req",
    "-x509",
    "-newkey",
    "rsa:2048",
    "-nodes",
    "-keyout",
    "stranger.key",
    "-out",
    "stranger.crt",
    "-days",
    "2",
    "-subj",
    "/CN=stranger",
    "-addext",
    "extendedKeyUsage=clientAuth",
  ], dir);
  const read = (f: string) => Deno.readTextFileSync(`${dir}/${f}`);
  return {
    dir,
    caCert: read("ca.crt"),
    serverCert: read("server.crt"),
    serverKey: read("server.key"),
    clientCert: read("client.crt"),
    clientKey: read("client.key"),
    strangerCert: read("stranger.crt"),
    strangerKey: read("stranger.key"),
  };
}

/** A web config serving TLS with the generated server certificate; client certificates checked against the CA when asked. */
export function tlsWebConfig(certs: TestCerts, clientAuthType: ClientAuthType = "NoClientCert"): WebConfig {
  return {
    basicAuthUsers: new Map(),
    headers: {},
    tls: {
      cert: certs.serverCert,
      key: certs.serverKey,
      ...(clientAuthType === "NoClientCert" ? {} : { clientCa: certs.caCert }),
      clientAuthType,
      minVersion: "TLSv1.2",
      maxVersion: "TLSv1.3",
    },
  };
}
