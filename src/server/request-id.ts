import { randomUUID } from "node:crypto";
import type { IncomingMessage } from "node:http";

// A client's id is echoed into headers and logs: keep it short and printable.
const SAFE_REQUEST_ID = /^[\x21-\x7e]{1,128}$/;

/** The client's `X-Request-Id` when it is safe to reuse, else a fresh UUID. */
export function requestIdOf(req: IncomingMessage): string {
  const given = req.headers["x-request-id"];
  return typeof given === "string" && SAFE_REQUEST_ID.test(given) ? given : randomUUID();
}
