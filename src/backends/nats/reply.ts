/**
 * Reads a worker's reply Msg into a plain outcome. Errors travel as the NATS
 * services (micro) headers `Nats-Service-Error-Code` (an HTTP status) and
 * `Nats-Service-Error` (the message); a success may carry `Http-Status`.
 *
 * - Error code 400-599: kept. Anything else (not a number, 2xx, 600...): 502, as a
 *   worker that sends it is broken; the body is dropped then, as its type is unknown.
 * - `Http-Status` 200-299 overrides 200. 3xx is refused (502) too: a redirect needs a
 *   Location header and a 304 a conditional request, neither of which the NATS path has.
 * - `Nats-Service-Error` without a code: 502. The worker meant an error; served as
 *   a success it would reach the client as an empty 200, past breaker and metrics.
 * - Absent or empty headers: 200.
 */
import { Match, type Msg, type MsgHdrs } from "@nats-io/transport-node";

export type ReplyOutcome =
  | { readonly kind: "ok"; readonly status: number; readonly data: Uint8Array }
  | {
      readonly kind: "error";
      readonly status: number;
      readonly message: string;
      readonly data: Uint8Array;
    };

export const SERVICE_ERROR_CODE = "Nats-Service-Error-Code";
export const SERVICE_ERROR = "Nats-Service-Error";
export const HTTP_STATUS = "Http-Status";

const EMPTY = new Uint8Array(0);

export function interpretReply(msg: Pick<Msg, "headers" | "data">): ReplyOutcome {
  const h = msg.headers;
  if (h === undefined) return { kind: "ok", status: 200, data: msg.data };
  const code = header(h, SERVICE_ERROR_CODE);
  const message = header(h, SERVICE_ERROR);
  if (code !== "" || message !== "") return serviceError(code, message, msg.data);
  const status = header(h, HTTP_STATUS);
  if (status === "") return { kind: "ok", status: 200, data: msg.data };
  const n = parseStatus(status);
  if (n >= 200 && n <= 299) return { kind: "ok", status: n, data: msg.data };
  return badWorker(`worker sent an invalid ${HTTP_STATUS} "${status}" (only 200-299 allowed)`);
}

function serviceError(code: string, message: string, data: Uint8Array): ReplyOutcome {
  const n = parseStatus(code);
  if (n >= 400 && n <= 599) {
    return { kind: "error", status: n, message: message || `worker error ${n}`, data };
  }
  const detail = message === "" ? "" : `: ${message}`;
  return badWorker(`worker sent an invalid ${SERVICE_ERROR_CODE} "${code}"${detail}`);
}

function badWorker(message: string): ReplyOutcome {
  return { kind: "error", status: 502, message, data: EMPTY };
}

/** Three digits exactly; -1 otherwise (`parseInt` would accept "404abc" or "4e2"). */
function parseStatus(text: string): number {
  return /^\d{3}$/.test(text.trim()) ? Number(text.trim()) : -1;
}

/** Workers in other languages may spell the names in another case. */
function header(h: MsgHdrs, name: string): string {
  return h.get(name, Match.IgnoreCase);
}
