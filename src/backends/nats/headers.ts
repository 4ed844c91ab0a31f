/**
 * The headers of a request to a worker (design.md, "Wire conventions on NATS").
 */
import { headers, type MsgHdrs } from "@nats-io/transport-node";

export const ROUTE_HEADER = "Turnout-Route";
export const REQUEST_ID_HEADER = "X-Request-Id";

/**
 * `allowed` holds the HTTP headers the route passes on, as [name, value] pairs;
 * a name given twice keeps both values.
 */
export function buildRequestHeaders(
  routeName: string,
  requestId: string,
  traceparent: string | undefined,
  tracestate: string | undefined,
  allowed: ReadonlyArray<readonly [string, string]>,
): MsgHdrs {
  const h = headers();
  h.set(ROUTE_HEADER, routeName);
  h.set(REQUEST_ID_HEADER, requestId);
  if (traceparent !== undefined && traceparent !== "") h.set("traceparent", traceparent);
  if (tracestate !== undefined && tracestate !== "") h.set("tracestate", tracestate);
  for (const [name, value] of allowed) h.append(name, value);
  return h;
}
