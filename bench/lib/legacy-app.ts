/**
 * The benchmark's legacy service: plain node:http (no framework, as the
 * services Turnout replaces), one route, `POST /v1/regions/:region/users`,
 * which parses the JSON body (a user record) and answers the record as the
 * bench worker does (id filled in when empty, region from the path), printed
 * as the gateway prints the worker's reply on the bench routes: proto field
 * names in declaration order, defaults emitted. So the shadow scenario's
 * comparison of the two answers finds them equal.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";

/** Largest body accepted, as bench/routes*.yaml's `bodyLimit` (1 MiB). */
export const BODY_LIMIT = 1024 * 1024;

const PATH = /^\/v1\/regions\/([^/?]+)\/users(?:\?.*)?$/;
const JSON_TYPE = "application/json; charset=utf-8";

/**
 * The answer to a create: `user` (the parsed body) as a users.v1.User, in the
 * field order of proto/users/v1/users.proto, with the implicit-presence
 * fields at their defaults when absent (the routes set `emitDefaults: true`);
 * message fields (`address`, `created_at`, `nickname`) only when present.
 */
export function userAnswer(region: string, user: Record<string, unknown>): string {
  const id = typeof user["id"] === "string" && user["id"] !== "" ? user["id"] : "u-new";
  return JSON.stringify({
    id,
    region,
    display_name: user["display_name"] ?? "",
    email: user["email"] ?? "",
    tier: user["tier"] ?? "TIER_UNSPECIFIED",
    balance_cents: user["balance_cents"] ?? "0",
    tags: user["tags"] ?? [],
    address: user["address"],
    created_at: user["created_at"],
    nickname: user["nickname"],
    verified: user["verified"] ?? false,
    labels: user["labels"] ?? {},
  });
}

function send(res: ServerResponse, status: number, body: string, extra?: [string, string]): void {
  const headers: Record<string, string | number> = {
    "content-type": JSON_TYPE,
    "content-length": Buffer.byteLength(body),
  };
  if (extra !== undefined) headers[extra[0]] = extra[1];
  res.writeHead(status, headers);
  res.end(body);
}

function error(res: ServerResponse, status: number, code: string, message: string): void {
  send(res, status, JSON.stringify({ error: code, message }));
}

function handle(req: IncomingMessage, res: ServerResponse): void {
  const match = PATH.exec(req.url ?? "");
  if (match === null) {
    req.resume();
    error(res, 404, "not_found", `no route for ${req.url}`);
    return;
  }
  if (req.method !== "POST") {
    req.resume();
    const body = JSON.stringify({ error: "method_not_allowed", message: "use POST" });
    send(res, 405, body, ["allow", "POST"]);
    return;
  }
  let region: string;
  try {
    region = decodeURIComponent(match[1]!);
  } catch {
    req.resume();
    error(res, 400, "bad_request", "the region is not valid URL encoding");
    return;
  }
  const chunks: Buffer[] = [];
  let size = 0;
  req.on("data", (chunk: Buffer) => {
    size += chunk.length;
    if (size <= BODY_LIMIT) chunks.push(chunk);
  });
  req.on("end", () => {
    if (size > BODY_LIMIT) {
      error(res, 413, "too_large", `the body is over ${BODY_LIMIT} bytes`);
      return;
    }
    let body: unknown;
    try {
      body = JSON.parse(Buffer.concat(chunks).toString("utf8"));
    } catch {
      error(res, 400, "bad_request", "the body is not JSON");
      return;
    }
    if (typeof body !== "object" || body === null || Array.isArray(body)) {
      error(res, 400, "bad_request", "the body is not a JSON object");
      return;
    }
    send(res, 200, userAnswer(region, body as Record<string, unknown>));
  });
  req.on("error", () => res.destroy());
}

/** The server, not listening yet. */
export function createLegacyServer(): Server {
  return createServer(handle);
}
