/**
 * A real node:http server standing in for a legacy service: it records every
 * request it gets and answers with whatever the test's handler says. The tests
 * of the legacy backend on its own build odder servers, and share the parts
 * below: the loopback listener, a plain request and the failure of a forward.
 */
import { once } from "node:events";
import { createServer, type IncomingHttpHeaders, type ServerResponse } from "node:http";
import type { AddressInfo, Server, Socket } from "node:net";
import type { Test } from "tap";
import type { LegacyRequest } from "../../src/backends/legacy/forward.js";
import { TurnoutError } from "../../src/errors.js";

export interface SeenByLegacy {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  body: string;
}

/**
 * A loopback port nothing listens on, for an upstream that is down until the
 * test starts a server there. Taken below the kernel's ephemeral range
 * (32768-60999 here), where no `listen(0)` of a test running beside this one,
 * and no outgoing connection's source port, can land on it meanwhile; a port
 * from freePort() could be handed out again within seconds.
 */
export async function downPort(): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const port = 20000 + Math.floor(Math.random() * 12000);
    const server = createServer();
    const free = await new Promise<boolean>((resolve) => {
      server.once("error", () => resolve(false));
      server.listen(port, "127.0.0.1", () => resolve(true));
    });
    if (free) {
      await new Promise((resolve) => server.close(resolve));
      return port;
    }
  }
  throw new Error("no free port between 20000 and 32000");
}

export type LegacyHandler = (request: SeenByLegacy, res: ServerResponse) => void;

export interface LegacyServer {
  readonly url: string;
  readonly seen: SeenByLegacy[];
  close(): Promise<void>;
}

/** On 127.0.0.1, a free port unless `port` is given. */
export async function startLegacyServer(handler: LegacyHandler, port = 0): Promise<LegacyServer> {
  const seen: SeenByLegacy[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.on("end", () => {
      const request = {
        method: req.method ?? "",
        url: req.url ?? "",
        headers: req.headers,
        body: Buffer.concat(chunks).toString(),
      };
      seen.push(request);
      handler(request, res);
    });
  });
  await new Promise<void>((resolve) => server.listen(port, "127.0.0.1", resolve));
  const address = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${address.port}`,
    seen,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** Answers JSON with the given status and extra headers. */
export function sendJson(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    "content-type": "application/json",
    "content-length": Buffer.byteLength(text),
    ...headers,
  });
  res.end(text);
}

/** Listens on 127.0.0.1 port 0; the teardown destroys every socket, so nothing hangs. */
export async function listenOnLoopback(t: Test, server: Server): Promise<string> {
  const sockets = new Set<Socket>();
  server.on("connection", (socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  t.teardown(() => {
    for (const socket of sockets) socket.destroy();
    server.close();
  });
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

/** A bodiless GET of `/`, for tests about the upstream's side rather than what is sent. */
export const PLAIN_GET: LegacyRequest = {
  method: "GET",
  url: "/",
  headers: {},
  body: undefined,
  remoteAddress: "127.0.0.1",
  protocol: "http",
  host: "gateway.example",
};

/** The TurnoutError a forward fails with; succeeding or failing otherwise fails the test. */
export async function forwardFailure(promise: Promise<unknown>): Promise<TurnoutError> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof TurnoutError) return error;
    throw error;
  }
  throw new Error("expected the forward to fail");
}
