// The header read deadline Deno.serve lacks (denoland/deno#3515): public listeners accepted here, each
// connection relayed to an internal loopback Deno.serve and closed when a request's headers take too long.

import type { Server as NodeNetServer, Socket as NodeSocket } from "node:net";
import type { Logger } from "../log.ts";

/**
 * Time allowed for a request's headers, as CEEMS's servers set ReadHeaderTimeout (a slowloris defence):
 * counted from the connection's start (its TLS handshake included) for the first request, and from the
 * first byte of each later one.
 */
export const HEADER_READ_TIMEOUT_MS = 2000;

/** TLS served by a front listener (client certificates are the node back end's); terminated by node:tls. */
export interface FrontTls {
  cert: string;
  key: string;
}

/** One client connection, as the internal server's handler sees it through {@link HeaderDeadlineFront.connectionOf}. */
export interface FrontConnection {
  /** The client's address (the internal server only sees the relay's loopback address). */
  readonly peer: Deno.NetAddr;
  /** Whether the client reached a TLS listener (its requests are https). */
  readonly tls: boolean;
  /** The internal server has read a request's headers: the deadline stops. */
  requestStarted(): void;
  /** That request's response is finished: the next bytes from the client start a new deadline. */
  requestEnded(): void;
}

/** Options of {@link HeaderDeadlineFront}. */
export interface HeaderDeadlineOptions {
  /** The internal server's loopback address. */
  inner: Deno.NetAddr;
  headerTimeoutMs: number;
  logger: Logger;
}

const CLIENT_READ_BYTES = 8 * 1024;
const SERVER_READ_BYTES = 32 * 1024;
const H2_PREFACE = new TextEncoder().encode("PRI * HTTP/2.0\r\n");

/** Writes all of `data` (Conn.write may take part of it). */
async function writeAll(conn: Deno.Conn, data: Uint8Array): Promise<void> {
  let off = 0;
  while (off < data.length) off += await conn.write(data.subarray(off));
}

function startsWith(data: Uint8Array, prefix: Uint8Array): boolean {
  if (data.length < prefix.length) return false;
  for (let i = 0; i < prefix.length; i++) if (data[i] !== prefix[i]) return false;
  return true;
}

/**
 * A relayed connection's deadline: armed at accept, stopped when the internal server starts a request,
 * armed again by client bytes while no request is in flight. Closing it closes both sides.
 */
class Relay implements FrontConnection {
  #timer: ReturnType<typeof setTimeout> | undefined;
  #inFlight = 0;
  /** HTTP/2 multiplexes requests and control frames, so only the connection's first request is timed. */
  #h2 = false;
  #seenRequest = false;
  #closed = false;
  #closers: (() => void)[] = [];

  constructor(
    readonly peer: Deno.NetAddr,
    readonly tls: boolean,
    private timeoutMs: number,
    private onTimeout: (r: Relay) => void,
  ) {
    this.#arm();
  }

  /** Adds a way to close one side of the connection. */
  onClose(close: () => void): void {
    if (this.#closed) close();
    else this.#closers.push(close);
  }

  #arm(): void {
    if (this.#timer !== undefined || this.#closed) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.onTimeout(this);
      this.close();
    }, this.timeoutMs);
  }

  #disarm(): void {
    if (this.#timer === undefined) return;
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  /** The client speaks HTTP/2 (ALPN chose it, or its first bytes are the connection preface). */
  markH2(): void {
    this.#h2 = true;
  }

  /** Client bytes arrived: with no request in flight they begin one, whose headers are now timed. */
  clientBytes(first: boolean, data: Uint8Array): void {
    if (first && startsWith(data, H2_PREFACE)) this.#h2 = true;
    if (this.#inFlight === 0 && !(this.#h2 && this.#seenRequest)) this.#arm();
  }

  /**
   * Response bytes went out: an armed deadline restarts, so a request pipelined behind a long response is
   * timed from that response's end, as Go times it.
   */
  serverBytes(): void {
    if (this.#timer === undefined) return;
    this.#disarm();
    this.#arm();
  }

  requestStarted(): void {
    this.#seenRequest = true;
    this.#inFlight++;
    this.#disarm();
  }

  requestEnded(): void {
    if (this.#inFlight > 0) this.#inFlight--;
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#disarm();
    for (const close of this.#closers) {
      try {
        close();
      } catch {
        // already closed
      }
    }
  }

  get closed(): boolean {
    return this.#closed;
  }
}

/**
 * Accepts clients on public addresses and relays each connection to the internal server, closing it when a
 * request's headers are not complete within the deadline. The internal server learns the client (address,
 * TLS) from {@link connectionOf}; a connection to it that did not come through here is unknown.
 *
 * Plain HTTP is accepted with Deno.listen. TLS is terminated by node:tls, whose raw TCP socket can be
 * destroyed during a stalled handshake (closing a Deno TlsConn before its handshake leaves the socket open).
 */
export class HeaderDeadlineFront {
  #listeners: Deno.Listener[] = [];
  #tlsServers: NodeNetServer[] = [];
  #byInnerPort = new Map<number, Relay>();
  #relays = new Set<Relay>();

  constructor(private opts: HeaderDeadlineOptions) {}

  /** Listens on host:port (TLS when `tls` is given) and starts accepting; resolves to the bound address. */
  async listen(hostname: string, port: number, tls?: FrontTls): Promise<Deno.NetAddr> {
    if (tls) return await this.#listenTls(hostname, port, tls);
    const listener = Deno.listen({ hostname, port });
    this.#listeners.push(listener);
    void this.#accept(listener);
    return listener.addr as Deno.NetAddr;
  }

  /** The client connection whose relay reaches the internal server from `innerPeer`, if any. */
  connectionOf(innerPeer: Deno.NetAddr): FrontConnection | undefined {
    return this.#byInnerPort.get(innerPeer.port);
  }

  /** Connections open now. */
  get openConnections(): number {
    return this.#relays.size;
  }

  /** Stops accepting new connections. */
  stopAccepting(): void {
    for (const l of this.#listeners) {
      try {
        l.close();
      } catch {
        // already closed
      }
    }
    this.#listeners = [];
    for (const s of this.#tlsServers) s.close();
    this.#tlsServers = [];
  }

  /** Closes every open connection. */
  closeAll(): void {
    for (const r of [...this.#relays]) r.close();
  }

  #newRelay(peer: Deno.NetAddr, tls: boolean): Relay {
    const relay = new Relay(peer, tls, this.opts.headerTimeoutMs, (r) => {
      this.opts.logger.debug("closing a connection whose request headers were not read in time", {
        remote: r.peer.hostname,
        timeout_ms: this.opts.headerTimeoutMs,
      });
    });
    this.#relays.add(relay);
    relay.onClose(() => this.#relays.delete(relay));
    return relay;
  }

  /** Registers the relay's own port toward the internal server, before a byte is relayed through it. */
  #register(relay: Relay, innerPort: number): void {
    this.#byInnerPort.set(innerPort, relay);
    relay.onClose(() => {
      if (this.#byInnerPort.get(innerPort) === relay) this.#byInnerPort.delete(innerPort);
    });
  }

  async #accept(listener: Deno.Listener): Promise<void> {
    while (true) {
      let conn: Deno.Conn;
      try {
        conn = await listener.accept();
      } catch (e) {
        if (e instanceof Deno.errors.BadResource || e instanceof Deno.errors.Interrupted) return;
        // Out of descriptors and the like: one bad accept does not stop the listener.
        this.opts.logger.warn("accepting a connection failed", { err: e });
        await new Promise((r) => setTimeout(r, 50));
        continue;
      }
      void this.#relayTcp(conn);
    }
  }

  async #relayTcp(client: Deno.Conn): Promise<void> {
    const relay = this.#newRelay(client.remoteAddr as Deno.NetAddr, false);
    relay.onClose(() => client.close());
    try {
      const inner = await Deno.connect({ hostname: this.opts.inner.hostname, port: this.opts.inner.port });
      relay.onClose(() => inner.close());
      if (relay.closed) return;
      this.#register(relay, (inner.localAddr as Deno.NetAddr).port);
      await Promise.all([clientToInner(relay, client, inner), innerToClient(relay, client, inner)]);
    } catch {
      // A reset or a closed relay: the connection simply ends.
    } finally {
      relay.close();
    }
  }

  async #listenTls(hostname: string, port: number, tls: FrontTls): Promise<Deno.NetAddr> {
    const nodeTls = await import("node:tls");
    const net = await import("node:net");
    const relays = new Map<string, Relay>();
    const key = (s: NodeSocket) => `${s.remoteAddress}|${s.remotePort}`;
    const server = nodeTls.createServer({ cert: tls.cert, key: tls.key, ALPNProtocols: ["h2", "http/1.1"] });
    server.on("connection", (raw: NodeSocket) => {
      // The deadline covers the handshake: a stalled one is ended by destroying the TCP socket under it.
      const relay = this.#newRelay(netAddr(raw), true);
      const k = key(raw);
      relays.set(k, relay);
      relay.onClose(() => {
        relays.delete(k);
        raw.destroy();
      });
      raw.on("close", () => relay.close());
      raw.on("error", () => relay.close());
    });
    server.on("tlsClientError", () => {
      // A failed handshake: its TCP socket closes, and with it the relay.
    });
    server.on("secureConnection", (client: import("node:tls").TLSSocket) => {
      const relay = relays.get(key(client));
      if (!relay || relay.closed) return void client.destroy();
      relay.onClose(() => client.destroy());
      client.on("error", () => relay.close());
      client.on("close", () => relay.close());
      if (client.alpnProtocol === "h2") relay.markH2();
      const inner = net.connect(this.opts.inner.port, this.opts.inner.hostname);
      relay.onClose(() => inner.destroy());
      inner.on("error", () => relay.close());
      inner.on("close", () => relay.close());
      inner.once("connect", () => {
        if (relay.closed) return;
        this.#register(relay, inner.localPort!);
        let first = true;
        client.on("data", (data: Uint8Array) => {
          relay.clientBytes(first, data);
          first = false;
        });
        inner.on("data", () => relay.serverBytes());
        client.pipe(inner);
        inner.pipe(client);
      });
    });
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(port, hostname, () => {
        server.off("error", reject);
        resolve();
      });
    });
    server.on("error", (e: unknown) => this.opts.logger.warn("TLS listener error", { err: e }));
    this.#tlsServers.push(server);
    const a = server.address() as import("node:net").AddressInfo;
    return { transport: "tcp", hostname: a.address, port: a.port };
  }
}

function netAddr(s: NodeSocket): Deno.NetAddr {
  return { transport: "tcp", hostname: s.remoteAddress ?? "", port: s.remotePort ?? 0 };
}

async function clientToInner(relay: Relay, client: Deno.Conn, inner: Deno.TcpConn): Promise<void> {
  const buf = new Uint8Array(CLIENT_READ_BYTES);
  let first = true;
  try {
    while (true) {
      const n = await client.read(buf);
      if (n === null) break;
      const data = buf.subarray(0, n);
      relay.clientBytes(first, data);
      first = false;
      await writeAll(inner, data);
    }
    // The client finished sending (a half-close): the internal server may still answer.
    await inner.closeWrite();
  } catch {
    relay.close();
  }
}

async function innerToClient(relay: Relay, client: Deno.Conn, inner: Deno.TcpConn): Promise<void> {
  const buf = new Uint8Array(SERVER_READ_BYTES);
  try {
    while (true) {
      const n = await inner.read(buf);
      if (n === null) break;
      relay.serverBytes();
      await writeAll(client, buf.subarray(0, n));
    }
  } catch {
    // either side gone
  }
  relay.close();
}
