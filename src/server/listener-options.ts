/**
 * What both listeners share: HTTPS when a certificate is given, and the
 * slow-client limit (a request must arrive whole within `requestTimeoutMs`, so a
 * client that trickles its headers or body cannot hold a socket open).
 */
import type { Server, ServerOptions } from "node:http";
import type { FastifyHttpOptions } from "fastify";

type HttpListenerOptions = Partial<FastifyHttpOptions<Server>>;

export interface ListenerOptions {
  /** PEM certificate and key: both listeners speak HTTPS. */
  readonly https?: { readonly cert: Buffer; readonly key: Buffer } | undefined;
  /** Time for a client to send a whole request (default 30 s). */
  readonly requestTimeoutMs?: number | undefined;
}

export const DEFAULT_REQUEST_TIMEOUT_MS = 30_000;

/** Fastify options for one listener; `http` holds Node server options such as maxHeaderSize. */
export function listenerServerOptions(
  options: ListenerOptions,
  http: ServerOptions = {},
): HttpListenerOptions {
  const requestTimeout = options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
  // Node enforces requestTimeout when it checks connections, every 30 s by default.
  const server = { ...http, connectionsCheckingInterval: Math.min(1000, requestTimeout) };
  const tls = options.https;
  if (tls === undefined) return { requestTimeout, http: server };
  // Fastify builds an https.Server from `https`; its typings tie that to another
  // instance type, while the app is used exactly like an HTTP one.
  return {
    requestTimeout,
    https: { ...server, cert: tls.cert, key: tls.key },
  } as HttpListenerOptions;
}
