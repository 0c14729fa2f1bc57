// The header read deadline Deno.serve lacks (denoland/deno#3515): public listeners accepted here, each
// connection relayed to an internal loopback Deno.serve and closed when a request's headers take too long.

import type { Server as NodeNetServer, Socket as NodeSocket } from "node:net";
import type { TLSSocket } from "node:tls";
import type { Logger } from "../log.ts";

/**
 * Time allowed for a request's headers, as CEEMS's servers set ReadHeaderTimeout (a slowloris defence):
 * counted from the connection's start (its TLS handshake included) for the first request, and from the
 * first byte of each later one.
 */
export const HEADER_READ_TIMEOUT_MS = 2000;

/**
 * How long a kept-alive connection may wait idle for its next request, as CEEMS's exporter and API server
 * bound it (Go's idle timeout defaults to their 10 s ReadTimeout).
 */
export const KEEP_ALIVE_IDLE_MS = 10_000;

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
  /** That request's response has been delivered (or failed): the connection is idle again. */
  requestEnded(): void;
  /**
   * The request body to hand the handler: the connection is closed unless it has been read to its end within
   * the idle limit, as Go's ReadTimeout bounds it (a client that declares a body and never sends it holds no
   * connection); `done` settles when the request's response is delivered, which ends the watch too.
   */
  watchBody(body: ReadableStream<Uint8Array>, done: Promise<void>): ReadableStream<Uint8Array>;
  /** Aborted when the connection closes (the client is gone). */
  readonly signal: AbortSignal;
  /** Whether the connection has closed (a request read before the close finds its client gone). */
  readonly closed: boolean;
}

/** Options of {@link HeaderDeadlineFront}. */
export interface HeaderDeadlineOptions {
  /** The internal server's loopback address (127.0.0.1). */
  inner: Deno.NetAddr;
  headerTimeoutMs: number;
  /** Idle time allowed between requests (default {@link KEEP_ALIVE_IDLE_MS}). */
  idleTimeoutMs?: number;
  /** Connections open at once; more are closed at accept (default: from the descriptor limit, see {@link defaultMaxConnections}). */
  maxConnections?: number;
  logger: Logger;
}

const CLIENT_READ_BYTES = 8 * 1024;
const SERVER_READ_BYTES = 16 * 1024;
const H2_PREFACE = new TextEncoder().encode("PRI * HTTP/2.0\r\n");
/**
 * How long a closed relay's port stays taken: a request the internal server read before the close may reach
 * the handler just after it (it finds the relay closed), and must not be taken for a new relay's client.
 */
const TOMBSTONE_MS = 2_000;
/** Ports the kernel hands a relay that still carry a tombstone are given back, this many times at most. */
const CONNECT_TRIES = 4;
/** The most connections ever relayed at once: beyond the kernel's ephemeral loopback ports (28,232) it fails anyway. */
const MAX_CONNECTIONS_CEILING = 20_000;

/**
 * Connections the front can hold within this process's descriptor limit: each costs three descriptors
 * (the client's, the relay's and the internal server's) and may use a fourth (the LB's request to its
 * backend), and a quarter of the limit stays for the rest of the process (databases, collectors, Workers).
 */
export function defaultMaxConnections(limitsText?: string): number {
  let soft = 1024;
  try {
    const text = limitsText ?? Deno.readTextFileSync("/proc/self/limits");
    const m = /^Max open files\s+(\S+)/m.exec(text);
    if (m) soft = m[1] === "unlimited" ? Infinity : Number(m[1]);
  } catch {
    // no /proc: the classic 1024
  }
  const usable = Math.floor((soft * 0.75 - 64) / 4);
  return Math.max(16, Math.min(MAX_CONNECTIONS_CEILING, usable));
}

/** Writes all of `data` (Conn.write may take part of it). */
async function writeAll(conn: Deno.Conn, data: Uint8Array): Promise<void> {
  let off = 0;
  while (off < data.length) off += await conn.write(data.subarray(off));
}

/**
 * A relayed connection's deadlines. The first request's headers are due `headerMs` after the accept (client
 * bytes do not extend it). While requests are in flight only their delivery is watched: a response write
 * that makes no progress for `idleMs` closes the connection (a client that stops reading), and so does a
 * request body not received within `idleMs` (see {@link FrontConnection.watchBody}). When the last response
 * is delivered the connection may idle `idleMs`; on HTTP/1 the first byte after that starts `headerMs` for
 * the next request's headers. HTTP/2 multiplexes requests and control frames, so after its first request
 * only the idle limit applies. Closing the relay closes both sides.
 */
class Relay implements FrontConnection {
  #timer: ReturnType<typeof setTimeout> | undefined;
  /** Whether the running timer is the idle limit (client bytes then start a header deadline). */
  #idle = false;
  #inFlight = 0;
  #h2 = false;
  #sniffed = new Uint8Array(H2_PREFACE.length);
  #sniffedLength = 0;
  /** When the response write now pending began (undefined: none pending), and its watchdog. */
  #writeSince: number | undefined;
  #writeWatch: ReturnType<typeof setTimeout> | undefined;
  #closed = false;
  #closers: (() => void)[] = [];
  #abort: AbortController | undefined;

  constructor(
    readonly peer: Deno.NetAddr,
    readonly tls: boolean,
    private headerMs: number,
    private idleMs: number,
    private onTimeout: (r: Relay, why: string) => void,
  ) {
    this.#armFor(headerMs, false);
  }

  /** Adds a way to close one side of the connection. */
  onClose(close: () => void): void {
    if (this.#closed) close();
    else this.#closers.push(close);
  }

  #armFor(ms: number, idle: boolean): void {
    this.#disarm();
    if (this.#closed) return;
    this.#idle = idle;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      // A response still being written is the write watchdog's to judge.
      if (idle && this.#writeSince !== undefined) return;
      this.#expire(idle ? "idle" : "request headers not read in time");
    }, ms);
  }

  #expire(why: string): void {
    this.onTimeout(this, why);
    this.close();
  }

  #disarm(): void {
    if (this.#timer === undefined) return;
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  /** The client speaks HTTP/2 (ALPN chose it). */
  markH2(): void {
    this.#h2 = true;
  }

  /** Collects the first bytes, however they are split across reads, to recognise HTTP/2's preface. */
  #sniff(data: Uint8Array): void {
    if (this.#sniffedLength === H2_PREFACE.length) return;
    const take = Math.min(data.length, H2_PREFACE.length - this.#sniffedLength);
    this.#sniffed.set(data.subarray(0, take), this.#sniffedLength);
    this.#sniffedLength += take;
    if (this.#sniffedLength === H2_PREFACE.length && this.#sniffed.every((b, i) => b === H2_PREFACE[i])) {
      this.#h2 = true;
    }
  }

  /** Client bytes arrived: on an idle HTTP/1 connection they begin a request, whose headers are now timed. */
  clientBytes(data: Uint8Array): void {
    this.#sniff(data);
    if (this.#inFlight === 0 && this.#idle && !this.#h2) this.#armFor(this.headerMs, false);
  }

  /** A write of response bytes to the client begins. */
  writeStarted(): void {
    this.#writeSince = performance.now();
    this.#writeWatch ??= setTimeout(() => this.#checkWrite(), this.idleMs);
  }

  /** That write finished: the client is reading. An idle limit running restarts from now. */
  writeEnded(): void {
    this.#writeSince = undefined;
    if (this.#inFlight === 0 && this.#idle) this.#armFor(this.idleMs, true);
  }

  #checkWrite(): void {
    this.#writeWatch = undefined;
    if (this.#closed || this.#writeSince === undefined) return;
    const waited = performance.now() - this.#writeSince;
    if (waited >= this.idleMs) return this.#expire("the client stopped reading");
    this.#writeWatch = setTimeout(() => this.#checkWrite(), this.idleMs - waited);
  }

  requestStarted(): void {
    this.#inFlight++;
    this.#disarm();
  }

  requestEnded(): void {
    if (this.#inFlight === 0 || --this.#inFlight > 0) return;
    this.#armFor(this.idleMs, true);
  }

  watchBody(body: ReadableStream<Uint8Array>, done: Promise<void>): ReadableStream<Uint8Array> {
    let timer: ReturnType<typeof setTimeout> | undefined = setTimeout(() => {
      timer = undefined;
      if (!this.#closed) this.#expire("request body not received in time");
    }, this.idleMs);
    const stop = () => {
      if (timer !== undefined) clearTimeout(timer);
      timer = undefined;
    };
    // A handler may answer without reading the body, and a closed connection fails the delivery: `done`
    // settles either way, so the watch needs no closer of its own (one per request would pile up on a
    // kept-alive connection).
    done.then(stop, stop);
    return body.pipeThrough(new TransformStream<Uint8Array, Uint8Array>({ flush: stop }));
  }

  get signal(): AbortSignal {
    if (!this.#abort) {
      this.#abort = new AbortController();
      if (this.#closed) this.#abort.abort();
    }
    return this.#abort.signal;
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#disarm();
    if (this.#writeWatch !== undefined) clearTimeout(this.#writeWatch);
    this.#abort?.abort();
    for (const close of this.#closers) {
      try {
        close();
      } catch {
        // already closed
      }
    }
    this.#closers = [];
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
  /** Relays by their own port toward the internal server; closed ones stay a while as tombstones. */
  #byInnerPort = new Map<number, Relay>();
  #relays = new Set<Relay>();
  #closing = false;
  #maxConnections: number;
  #refused = 0;
  #refusalLogged = 0;

  constructor(private opts: HeaderDeadlineOptions) {
    this.#maxConnections = opts.maxConnections ?? defaultMaxConnections();
  }

  /** Listens on host:port (TLS when `tls` is given) and starts accepting; resolves to the bound address. */
  async listen(hostname: string, port: number, tls?: FrontTls): Promise<Deno.NetAddr> {
    if (tls) return await this.#listenTls(hostname, port, tls);
    const listener = Deno.listen({ hostname, port });
    this.#listeners.push(listener);
    void this.#accept(listener);
    return listener.addr as Deno.NetAddr;
  }

  /**
   * The client connection whose relay reaches the internal server from `innerPeer`, if any: only
   * 127.0.0.1, where relays connect from, and only ports a relay was given.
   */
  connectionOf(innerPeer: Deno.NetAddr): FrontConnection | undefined {
    if (innerPeer.hostname !== this.opts.inner.hostname) return undefined;
    const relay = this.#byInnerPort.get(innerPeer.port);
    // A closed relay's port may already belong to someone else (a local process that bound it).
    return relay && !relay.closed ? relay : undefined;
  }

  /** Connections open now. */
  get openConnections(): number {
    return this.#relays.size;
  }

  /** Stops accepting new connections; relays not yet connected to the internal server never will be. */
  stopAccepting(): void {
    this.#closing = true;
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

  /** A relay for a new client, or undefined (the client to be closed) when too many are open. */
  #newRelay(peer: Deno.NetAddr, tls: boolean): Relay | undefined {
    if (this.#closing) return undefined;
    if (this.#relays.size >= this.#maxConnections) {
      this.#refused++;
      const now = Date.now();
      if (now - this.#refusalLogged >= 10_000) {
        this.#refusalLogged = now;
        this.opts.logger.warn("too many open connections: closing new ones", {
          open: this.#relays.size,
          max: this.#maxConnections,
          refused: this.#refused,
        });
      }
      return undefined;
    }
    const relay = new Relay(
      peer,
      tls,
      this.opts.headerTimeoutMs,
      this.opts.idleTimeoutMs ?? KEEP_ALIVE_IDLE_MS,
      (r, why) => this.opts.logger.debug("closing a connection", { remote: r.peer.hostname, reason: why }),
    );
    this.#relays.add(relay);
    relay.onClose(() => this.#relays.delete(relay));
    return relay;
  }

  /**
   * Whether `innerPort` may name `relay`: false when a relay (open, or closed less than TOMBSTONE_MS ago)
   * holds it. Registered before a byte is relayed, and kept briefly after the close as a tombstone.
   */
  #register(relay: Relay, innerPort: number): boolean {
    if (this.#byInnerPort.has(innerPort)) return false;
    this.#byInnerPort.set(innerPort, relay);
    relay.onClose(() => {
      const t = setTimeout(() => {
        if (this.#byInnerPort.get(innerPort) === relay) this.#byInnerPort.delete(innerPort);
      }, TOMBSTONE_MS);
      // A tombstone never keeps the process alive (shutdown would wait for it).
      Deno.unrefTimer(t);
    });
    return true;
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

  /** Connects to the internal server from a port no other relay names. */
  async #connectInner(relay: Relay): Promise<Deno.TcpConn | undefined> {
    for (let i = 0; i < CONNECT_TRIES; i++) {
      const inner = await Deno.connect({ hostname: this.opts.inner.hostname, port: this.opts.inner.port });
      if (relay.closed || this.#closing) {
        inner.close();
        return undefined;
      }
      if (this.#register(relay, (inner.localAddr as Deno.NetAddr).port)) return inner;
      inner.close();
    }
    throw new Error("no free relay port toward the internal server");
  }

  async #relayTcp(client: Deno.Conn): Promise<void> {
    const relay = this.#newRelay(client.remoteAddr as Deno.NetAddr, false);
    if (!relay) return client.close();
    relay.onClose(() => client.close());
    try {
      // Each write is relayed at once: Nagle's algorithm would hold a response's tail for the peer's delayed ACK.
      (client as Deno.TcpConn).setNoDelay(true);
      const inner = await this.#connectInner(relay);
      if (!inner) return;
      inner.setNoDelay(true);
      relay.onClose(() => inner.close());
      await Promise.all([clientToInner(relay, client, inner), innerToClient(relay, client, inner)]);
    } catch (e) {
      if (relay.closed) return;
      // Connecting to the internal server failed (no descriptor, no port): worth an operator's attention.
      if (e instanceof Error && !(e instanceof Deno.errors.ConnectionReset)) {
        this.opts.logger.warn("relaying a connection failed", { remote: relay.peer.hostname, err: e });
      }
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
      if (!relay) return void raw.destroy();
      raw.setNoDelay(true);
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
    server.on("secureConnection", (client: TLSSocket) => {
      const relay = relays.get(key(client));
      if (!relay || relay.closed || this.#closing) return void client.destroy();
      relay.onClose(() => client.destroy());
      client.on("error", () => relay.close());
      client.on("close", () => relay.close());
      if (client.alpnProtocol === "h2") relay.markH2();
      this.#connectInnerNode(relay, net.connect, client);
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

  /** The node:tls side's relay: connects from a port no other relay names, then pipes both ways. */
  #connectInnerNode(relay: Relay, connect: typeof import("node:net").connect, client: TLSSocket, tries = 0): void {
    if (relay.closed || this.#closing) return relay.close();
    if (tries === CONNECT_TRIES) return relay.close();
    const inner = connect(this.opts.inner.port, this.opts.inner.hostname);
    inner.setNoDelay(true);
    inner.on("error", () => relay.close());
    inner.once("connect", () => {
      if (relay.closed || this.#closing || !this.#register(relay, inner.localPort!)) {
        inner.destroy();
        return this.#connectInnerNode(relay, connect, client, tries + 1);
      }
      relay.onClose(() => inner.destroy());
      inner.on("close", () => relay.close());
      client.on("data", (data: Uint8Array) => relay.clientBytes(data));
      client.pipe(inner);
      // Toward the client by hand, so that a client that stops reading is seen (the write watchdog).
      inner.on("data", (data: Uint8Array) => {
        if (client.write(data)) return;
        inner.pause();
        relay.writeStarted();
        client.once("drain", () => {
          relay.writeEnded();
          inner.resume();
        });
      });
      inner.on("end", () => client.end());
    });
  }
}

function netAddr(s: NodeSocket): Deno.NetAddr {
  return { transport: "tcp", hostname: s.remoteAddress ?? "", port: s.remotePort ?? 0 };
}

async function clientToInner(relay: Relay, client: Deno.Conn, inner: Deno.TcpConn): Promise<void> {
  const buf = new Uint8Array(CLIENT_READ_BYTES);
  try {
    while (true) {
      const n = await client.read(buf);
      if (n === null) break;
      const data = buf.subarray(0, n);
      relay.clientBytes(data);
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
      relay.writeStarted();
      await writeAll(client, buf.subarray(0, n));
      relay.writeEnded();
    }
  } catch {
    // either side gone
  }
  relay.close();
}
