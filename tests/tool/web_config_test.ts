// `ceems tool config create-web-config` and `check …`: the generated web config (bcrypt basic auth and a
// self-signed certificate) is served by a real `ceems api`, `ceems lb` and `ceems exporter`, which the health
// checks and Prometheus reach with the printed password and the certificate as CA; wrong ones and broken files fail.

import { join } from "node:path";
import { assert, assertEquals, assertMatch } from "../helpers/assert.ts";
import { freePort, runCeems, startCeems } from "../helpers/process.ts";
import { startPrometheus } from "../helpers/prometheus_server.ts";
import { parse as parseYaml } from "yaml";

Deno.test({
  name: "tool: created web config (bcrypt + self-signed TLS) secures the real API server and LB; checks pass",
  sanitizeResources: false,
  async fn() {
    const dir = Deno.makeTempDirSync({ prefix: "ceems-webcfg-" });
    try {
      const out = join(dir, "config");
      const made = await runCeems([
        "tool",
        "config",
        "create-web-config",
        "--tls",
        "--tls.host=127.0.0.1",
        "--tls.host=localhost",
        "--tls.validity=24h",
        `--output-dir=${out}`,
      ]);
      assertEquals(made.code, 0, made.stderr);
      const password = /plain text password for basic auth is ([A-Za-z0-9]{24})\n/.exec(made.stderr)?.[1];
      assert(password, made.stderr);
      const cfgPath = join(out, "web-config.yml");
      assertEquals(Deno.statSync(cfgPath).mode! & 0o777, 0o600);
      assertEquals(Deno.statSync(join(out, "key.pem")).mode! & 0o777, 0o600);
      const cfg = parseYaml(Deno.readTextFileSync(cfgPath)) as Record<string, Record<string, string>>;
      assertEquals(cfg.tls_server_config, { cert_file: "cert.pem", key_file: "key.pem" });
      assertMatch(cfg.basic_auth_users.ceems, /^\$2[aby]\$10\$.{53}$/);
      // openssl reads the certificate: self-signed, server auth, the two names.
      const x = await new Deno.Command("openssl", {
        args: ["x509", "-in", join(out, "cert.pem"), "-noout", "-text"],
        stdout: "piped",
      }).output();
      const text = new TextDecoder().decode(x.stdout);
      assertMatch(text, /Issuer: O = Acme Co/);
      assertMatch(text, /IP Address:127\.0\.0\.1, DNS:localhost/);
      assertMatch(text, /TLS Web Server Authentication/);

      const good = await runCeems(["tool", "check", "web-config", cfgPath]);
      assertEquals(good.code, 0, good.stderr);
      assertEquals(good.stderr, `${cfgPath} SUCCESS\n`);
      Deno.writeTextFileSync(join(dir, "bad.yml"), "basic_auth_users: {ceems: not-a-bcrypt-hash}\nnope: 1\n");
      const bad = await runCeems(["tool", "check", "web-config", cfgPath, join(dir, "bad.yml")]);
      assertEquals(bad.code, 1);
      assertMatch(bad.stderr, /bad\.yml FAILED: /);

      // The API server and the LB serve with the created file.
      Deno.writeTextFileSync(join(dir, "api.yml"), `ceems_api_server:\n  data: {path: ${join(dir, "data")}}\n`);
      const client = Deno.createHttpClient({ caCerts: [Deno.readTextFileSync(join(out, "cert.pem"))] });
      const auth = { Authorization: "Basic " + btoa(`ceems:${password}`) };
      const api = await startCeems(["api", `--config.file=${join(dir, "api.yml")}`, `--web.config.file=${cfgPath}`], {
        scheme: "https",
        fetchInit: { client, headers: auth },
      });
      Deno.writeTextFileSync(
        join(dir, "lb.yml"),
        `ceems_lb:\n  backends: [{id: slurm-0, tsdb: [{web: {url: "http://127.0.0.1:${freePort()}"}}]}]\n` +
          `ceems_api_server: {web: {url: "${api.base}", tls_config: {ca_file: ${join(out, "cert.pem")}}, ` +
          `basic_auth: {username: ceems, password: ${password}}}}\n`,
      );
      const lb = await startCeems([
        "lb",
        `--config.file=${join(dir, "lb.yml")}`,
        `--web.config.file=${cfgPath}`,
      ], { scheme: "https", fetchInit: { client, headers: { ...auth, "X-Ceems-Cluster-Id": "slurm-0" } } });
      try {
        const httpCfg = (pw: string, extra = "") =>
          `basic_auth: {username: ceems, password: ${pw}}\ntls_config: {ca_file: ${join(out, "cert.pem")}}\n${extra}`;
        Deno.writeTextFileSync(join(dir, "client.yml"), httpCfg(password));
        Deno.writeTextFileSync(join(dir, "wrong.yml"), httpCfg("wrong"));
        Deno.writeTextFileSync(
          join(dir, "lbclient.yml"),
          httpCfg(password, "http_headers: {X-Ceems-Cluster-Id: {values: [slurm-0]}}\n"),
        );
        const ok = await runCeems([
          "tool",
          "check",
          "api-healthy",
          `--url=${api.base}`,
          `--http.config.file=${join(dir, "client.yml")}`,
        ]);
        assertEquals(ok.code, 0, ok.stderr);
        assertEquals(ok.stderr, "  SUCCESS:  CEEMS API Server is healthy\n");
        const denied = await runCeems([
          "tool",
          "check",
          "api-healthy",
          `--url=${api.base}`,
          `--http.config.file=${join(dir, "wrong.yml")}`,
        ]);
        assertEquals(denied.code, 1);
        assertMatch(denied.stderr, /status=401/);
        const lbOk = await runCeems([
          "tool",
          "check",
          "lb-healthy",
          `--url=${lb.base}`,
          `--http.config.file=${join(dir, "lbclient.yml")}`,
        ]);
        assertEquals(lbOk.code, 0, lbOk.stderr);
        assertEquals(lbOk.stderr, "  SUCCESS:  CEEMS LB Server is healthy\n");

        // Prometheus (a Go client) scrapes an exporter served with the same file, trusting the certificate.
        const exporter = await startCeems(
          ["exporter", "--collector.disable-defaults", "--collector.cpu", `--web.config.file=${cfgPath}`],
          { scheme: "https", fetchInit: { client, headers: auth } },
        );
        const prom = await startPrometheus({
          config: `global: {scrape_interval: 1s}\nscrape_configs:\n  - job_name: tls\n    scheme: https\n` +
            `    basic_auth: {username: ceems, password: ${password}}\n` +
            `    tls_config: {ca_file: ${join(out, "cert.pem")}}\n` +
            `    static_configs: [{targets: ['127.0.0.1:${exporter.port}']}]\n`,
        });
        try {
          let up = "";
          for (let i = 0; i < 60 && up !== "1"; i++) {
            await new Promise((r) => setTimeout(r, 500));
            const r = await (await fetch(`${prom.url}/api/v1/query?query=up`)).json();
            up = r.data.result[0]?.value[1] ?? "";
          }
          assertEquals(up, "1", "Prometheus scrapes the exporter over the created TLS and basic auth");
        } finally {
          await prom.stop();
          await exporter.stop();
        }
      } finally {
        await lb.stop();
        await api.stop();
        client.close();
      }
    } finally {
      Deno.removeSync(dir, { recursive: true });
    }
  },
});
