// Start-up plumbing shared by the three subcommands: the common web and log flags, flag parsing that
// exits 2 with one line naming the flag, logger construction and graceful shutdown on signals.

import { FlagError, FlagSet } from "./flags.ts";
import { type Level, type LogFormat, Logger } from "./log.ts";
import { versionText } from "./version.ts";
import { systemdListenFds, SystemdSocketError } from "./web/systemd_socket.ts";
import { loadWebConfig, type WebConfig } from "./web/web_config.ts";

/** Exit status for bad flags and configuration, as kingpin uses. */
export const EXIT_USAGE = 2;

/** Thrown to end start-up with an exit status and one line on stderr. */
export class StartupError extends Error {
  constructor(message: string, readonly status = EXIT_USAGE) {
    super(message);
    this.name = "StartupError";
  }
}

/** Adds --help, --version, --log.* and --web.* flags shared by every server. */
export function addCommonFlags(fs: FlagSet, defaultListen: string[], webConfigEnv?: string): void {
  fs.add({ name: "help", kind: "bool", help: "Show context-sensitive help." });
  fs.add({ name: "version", kind: "bool", help: "Show application version." });
  fs.add({
    name: "log.level",
    kind: "enum",
    choices: ["debug", "info", "warn", "error"],
    default: "info",
    help: "Only log messages with the given severity or above.",
  });
  fs.add({
    name: "log.format",
    kind: "enum",
    choices: ["logfmt", "json"],
    default: "logfmt",
    help: "Output format of log messages.",
  });
  fs.add({
    name: "web.listen-address",
    kind: "strings",
    default: defaultListen,
    placeholder: "ADDRESS",
    help: "Addresses on which to expose metrics and web interface. Repeatable.",
  });
  fs.add({
    name: "web.config.file",
    kind: "string",
    default: "",
    placeholder: "PATH",
    envar: webConfigEnv,
    help: "Path to configuration file that can enable TLS or authentication.",
  });
  fs.add({
    name: "web.max-requests",
    kind: "int",
    default: 40,
    help: "Maximum number of parallel requests. 0 disables the limit.",
    validate: (v) => ((v as number) < 0 ? "must not be negative" : undefined),
  });
  fs.add({
    name: "web.systemd-socket",
    kind: "bool",
    help: "Use systemd socket activation listeners (LISTEN_FDS) instead of port listeners.",
  });
  fs.add({
    name: "runtime.gomaxprocs",
    kind: "int",
    default: 1,
    envar: "GOMAXPROCS",
    help: "Accepted for CEEMS compatibility (Go's GOMAXPROCS); no effect: the runtime sizes its own threads.",
  });
}

/** Parses argv; prints help or version and exits 0 when asked. Throws StartupError on a bad flag. */
export function parseFlags(fs: FlagSet, argv: string[], component: string): void {
  try {
    const rest = fs.parse(argv, Deno.env.toObject());
    if (rest.length) throw new FlagError(rest[0], `unexpected argument '${rest[0]}'`);
  } catch (e) {
    if (e instanceof FlagError) throw new StartupError(e.message);
    throw e;
  }
  if (fs.bool("help")) {
    Deno.stdout.writeSync(new TextEncoder().encode(fs.help()));
    Deno.exit(0);
  }
  if (fs.bool("version")) {
    Deno.stdout.writeSync(new TextEncoder().encode(versionText(component)));
    Deno.exit(0);
  }
}

/** The logger described by --log.level and --log.format. */
export function loggerFromFlags(fs: FlagSet): Logger {
  return new Logger(fs.string("log.level") as Level, fs.string("log.format") as LogFormat);
}

/** Loads --web.config.file, turning any problem into a StartupError naming the flag. */
export async function webConfigFromFlags(fs: FlagSet): Promise<WebConfig> {
  const path = fs.string("web.config.file");
  try {
    return await loadWebConfig(path);
  } catch (e) {
    throw new StartupError(`--web.config.file: ${path}: ${(e as Error).message}`);
  }
}

/** Where a server listens: its --web.listen-address values, or the sockets systemd passed. */
export interface Listeners {
  addresses: string[];
  /** Set with --web.systemd-socket: descriptors to serve on instead of the addresses. */
  fds?: number[];
}

/**
 * The listeners the flags ask for. With --web.systemd-socket, the sockets systemd passed (LISTEN_FDS); when
 * there are none, start-up stops with one line naming the flag rather than listening anywhere else.
 */
export function listenersFromFlags(fs: FlagSet): Listeners {
  const addresses = fs.strings("web.listen-address");
  if (!fs.bool("web.systemd-socket")) return { addresses };
  try {
    const fds = systemdListenFds({ env: Deno.env.toObject(), pid: Deno.pid });
    // Taken: no child (sacct, ipmitool...) inherits the variables, as go-systemd's Files(true) unsets them.
    for (const v of ["LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES"]) Deno.env.delete(v);
    return { addresses, fds };
  } catch (e) {
    if (e instanceof SystemdSocketError) throw new StartupError(`--web.systemd-socket: ${e.message}`);
    throw e;
  }
}

/** Checks that a file named by a flag can be read; throws StartupError naming the flag. */
export function requireReadableFile(fs: FlagSet, flag: string): void {
  const path = fs.string(flag);
  if (!path) return;
  try {
    Deno.openSync(path, { read: true }).close();
  } catch (e) {
    throw new StartupError(`--${flag}: cannot read ${path}: ${(e as Error).message}`);
  }
}

/** Runs `main`, turning a StartupError into one stderr line and its exit status. */
export async function runMain(component: string, main: () => Promise<void>): Promise<void> {
  try {
    await main();
  } catch (e) {
    if (e instanceof StartupError) {
      // One line, always: multi-line reasons (YAML parser errors) keep their first line.
      const line = e.message.split("\n")[0].trim();
      Deno.stderr.writeSync(new TextEncoder().encode(`ceems ${component}: error: ${line}\n`));
      Deno.exit(e.status);
    }
    throw e;
  }
}

/** Resolves once SIGTERM or SIGINT arrives. */
export function waitForShutdownSignal(): Promise<Deno.Signal> {
  return new Promise((resolve) => {
    const handlers: [Deno.Signal, () => void][] = [];
    for (const sig of ["SIGTERM", "SIGINT"] as Deno.Signal[]) {
      const h = () => {
        for (const [s, f] of handlers) Deno.removeSignalListener(s, f);
        resolve(sig);
      };
      handlers.push([sig, h]);
      Deno.addSignalListener(sig, h);
    }
  });
}

/** A counting limiter for concurrent requests (0 = unlimited). */
export class RequestLimiter {
  #inFlight = 0;
  constructor(readonly max: number) {}
  /** Takes a slot; false when all are busy. */
  tryAcquire(): boolean {
    if (this.max > 0 && this.#inFlight >= this.max) return false;
    this.#inFlight++;
    return true;
  }
  /** Returns a slot. */
  release(): void {
    this.#inFlight--;
  }
}
