/**
 * What both listeners share: HTTPS when a certificate is given, the
 * slow-client limit (a request must arrive whole within `requestTimeoutMs`, so a
 * client that trickles its headers or body cannot hold a socket open), and a
 * drain that lets go of every connection that carries no request.
 */
import type { Server, ServerOptions, ServerResponse } from "node:http";
import type { Socket } from "node:net";
import { Server as TlsServer } from "node:tls";
import type { FastifyHttpOptions, FastifyInstance } from "fastify";

type HttpListenerOptions = Partial<FastifyHttpOptions<Server>>;

export interface ListenerOptions {
  /** PEM certificate and key: both listeners speak HTTPS. */
  readonly https?: { readonly cert: Buffer; readonly key: Buffer } | undefined;
  /** Time for a client to send a whole request (default 30 s). */
  readonly requestTimeoutMs?: number | undefined;
}

export const DEFAULT_REQUEST_TIMEOUT_MS = 30_000;

/** How often a drain looks again for connections left without a request. */
const SWEEP_MS = 250;

export function requestTimeoutOf(options: ListenerOptions): number {
  return options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
}

/** Fastify options for one listener; `http` holds Node server options such as maxHeaderSize. */
export function listenerServerOptions(
  options: ListenerOptions,
  http: ServerOptions = {},
): HttpListenerOptions {
  const requestTimeout = requestTimeoutOf(options);
  // Node enforces requestTimeout when it checks connections, every 30 s by default.
  // Given at construction too: Fastify sets it on the server afterwards, which
  // Node 20 applies to a request's headers but not to a body that stops coming.
  const server = {
    ...http,
    requestTimeout,
    connectionsCheckingInterval: Math.min(1000, requestTimeout),
  };
  const tls = options.https;
  if (tls === undefined) return { requestTimeout, http: server };
  // Fastify builds an https.Server from `https`; its typings tie that to another
  // instance type, while the app is used exactly like an HTTP one. A TLS
  // handshake is part of sending the request: the same cut-off, not TLS's 120 s.
  return {
    requestTimeout,
    https: { ...server, cert: tls.cert, key: tls.key, handshakeTimeout: requestTimeout },
  } as HttpListenerOptions;
}

/**
 * A listener's open connections, tracked per connection (never per request),
 * so that a drain can close those that carry no request.
 */
export class Connections {
  /** Every TCP connection, TLS handshakes in progress included. */
  readonly #sockets = new Set<Socket>();
  /** The sockets HTTP is spoken on: the TCP ones, or the TLS ones over them. */
  readonly #http = new Set<Socket>();
  /** HTTPS: TCP connections whose TLS handshake is not done, by their client's address. */
  readonly #handshaking = new Map<string, Socket>();

  constructor(server: Server) {
    const tls = server instanceof TlsServer;
    server.on("connection", (socket: Socket) => {
      track(this.#sockets, socket);
      if (!tls) track(this.#http, socket);
      else this.#trackHandshake(socket);
    });
    server.on("secureConnection", (socket: Socket) => {
      this.#handshaking.delete(clientOf(socket));
      track(this.#http, socket);
    });
  }

  #trackHandshake(socket: Socket): void {
    const client = clientOf(socket);
    this.#handshaking.set(client, socket);
    socket.once("close", () => {
      if (this.#handshaking.get(client) === socket) this.#handshaking.delete(client);
    });
  }

  /**
   * Closes every connection with no request in progress: idle keep-alive
   * ones, ones that sent nothing (TLS handshakes in progress included), and
   * ones whose request has not arrived whole. Node itself stops cutting off slow requests once its server is
   * closing, so these would otherwise hold the drain forever.
   */
  closeIdle(): void {
    // Still in its TLS handshake (a balancer's pre-opened connection, a probe):
    // no request yet, and it would hold the drain until the handshake timeout.
    for (const socket of this.#handshaking.values()) socket.destroy();
    for (const socket of this.#http) {
      // Node's own closeIdleConnections reads the same field: the response
      // being written on the socket, set once a request's headers arrived and
      // cleared when its answer is sent.
      const response = (socket as { _httpMessage?: ServerResponse | null })._httpMessage;
      if (response === undefined || response === null) socket.destroy();
    }
  }

  /** Closes every connection, requests in progress or not; returns how many were open. */
  closeAll(): number {
    const open = this.#sockets.size;
    for (const socket of this.#sockets) socket.destroy();
    for (const socket of this.#http) socket.destroy();
    return open;
  }
}

/** A TCP connection and the TLS socket over it share the client's address and port. */
function clientOf(socket: Socket): string {
  return `${socket.remoteAddress}|${socket.remotePort}`;
}

function track(sockets: Set<Socket>, socket: Socket): void {
  sockets.add(socket);
  socket.once("close", () => sockets.delete(socket));
}

/**
 * Closes a listener: it stops accepting, connections without a request in
 * progress are closed at once (and again as more become idle), requests in
 * progress may finish within `graceMs`, after which the rest are cut.
 * Resolves with the number of connections cut (0 after a clean drain).
 */
export async function drainListener(
  app: FastifyInstance,
  connections: Connections,
  graceMs: number,
): Promise<number> {
  const closed = app.close();
  connections.closeIdle();
  // Also catches a connection accepted before the listening socket closed.
  const sweep = setInterval(() => connections.closeIdle(), SWEEP_MS);
  let cut = 0;
  const deadline = setTimeout(() => {
    cut = connections.closeAll();
  }, graceMs);
  try {
    await closed;
  } finally {
    clearInterval(sweep);
    clearTimeout(deadline);
  }
  return cut;
}
