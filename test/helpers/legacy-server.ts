/**
 * A real node:http server standing in for a legacy service: it records every
 * request it gets and answers with whatever the test's handler says.
 */
import { createServer, type IncomingHttpHeaders, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

export interface SeenByLegacy {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  body: string;
}

export type LegacyHandler = (request: SeenByLegacy, res: ServerResponse) => void;

export interface LegacyServer {
  readonly url: string;
  readonly seen: SeenByLegacy[];
  close(): Promise<void>;
}

export async function startLegacyServer(handler: LegacyHandler): Promise<LegacyServer> {
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
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
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
