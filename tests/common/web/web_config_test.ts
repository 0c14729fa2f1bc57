// Tests of the exporter-toolkit web configuration parser: TLS files relative to the config,
// client CA, bcrypt users, allowed headers, and clear errors for bad files.

import bcrypt from "bcryptjs";
import { parseWebConfig } from "../../../common/web/web_config.ts";
import { assertEquals, assertRejects } from "../../helpers/assert.ts";

Deno.test("web config: relative cert paths resolve against the config's directory", async () => {
  const dir = Deno.makeTempDirSync();
  Deno.writeTextFileSync(`${dir}/c.pem`, "CERT");
  Deno.writeTextFileSync(`${dir}/k.pem`, "KEY");
  Deno.writeTextFileSync(`${dir}/ca.pem`, "CA");
  const cfg = await parseWebConfig(
    "tls_server_config:\n  cert_file: c.pem\n  key_file: k.pem\n  client_ca_file: ca.pem\n",
    dir,
  );
  assertEquals(cfg.tls!.cert, "CERT");
  assertEquals(cfg.tls!.clientCa, "CA");
  assertEquals(cfg.tls!.clientAuthType, "RequireAndVerifyClientCert");
  assertEquals(cfg.tls!.minVersion, "TLSv1.2");
  Deno.removeSync(dir, { recursive: true });
});

Deno.test("web config: basic auth users and headers", async () => {
  const hash = bcrypt.hashSync("password", 4);
  const cfg = await parseWebConfig(
    `basic_auth_users:\n  prometheus: "${hash}"\nhttp_server_config:\n  headers:\n    X-Frame-Options: deny\n`,
    "/",
  );
  assertEquals(cfg.basicAuthUsers.get("prometheus"), hash);
  assertEquals(cfg.headers, { "X-Frame-Options": "deny" });
});

Deno.test("web config: bad files give a clear reason", async () => {
  const cases: [string, RegExp][] = [
    ["tls_server_config:\n  key_file: /nonexistent\n", /missing cert_file/],
    ["tls_server_config:\n  cert_file: /nonexistent/c\n  key_file: /x\n", /cannot read cert_file/],
    ["basic_auth_users:\n  bob: plaintext\n", /basic_auth_users\.bob is not a bcrypt hash/],
    ["tls_config: {}\n", /unknown key "tls_config"/],
    ["http_server_config:\n  headers:\n    Server: x\n", /header "Server" is not allowed/],
    ["- a\n- b\n", /must be a YAML mapping/],
  ];
  for (const [text, re] of cases) await assertRejects(() => parseWebConfig(text, "/"), re);
});

Deno.test("web config: CEEMS's packaged file (empty tls_server_config) serves plain HTTP, as exporter-toolkit", async () => {
  const cfg = await parseWebConfig("---\ntls_server_config: {}\nhttp_server_config: {}\n", "/");
  assertEquals(cfg.tls, undefined);
  assertEquals(cfg.basicAuthUsers.size, 0);
});
