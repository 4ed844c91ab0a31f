/**
 * The one place that turns an error into an HTTP answer: RFC 9457
 * `application/problem+json` with the error code, the field at fault, the route
 * and the request id. Fastify's own errors (body too large, bad content type,
 * malformed URL) keep their status and get the same shape.
 */
import { type ErrorCode, TurnoutError } from "../errors.js";

export const PROBLEM_CONTENT_TYPE = "application/problem+json";

export interface Problem {
  type: string;
  title: string;
  status: number;
  detail: string;
  code: string;
  field?: string;
  route?: string;
  requestId: string;
}

/** Fastify's codes that are the client's fault, mapped to ours. */
const FASTIFY_CODES: Readonly<Record<string, ErrorCode>> = {
  FST_ERR_CTP_BODY_TOO_LARGE: "TURNOUT_ERR_BODY_TOO_LARGE",
  FST_ERR_CTP_INVALID_MEDIA_TYPE: "TURNOUT_ERR_UNSUPPORTED_MEDIA_TYPE",
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: "TURNOUT_ERR_BAD_JSON",
  FST_ERR_CTP_EMPTY_JSON_BODY: "TURNOUT_ERR_BAD_JSON",
  FST_ERR_BAD_URL: "TURNOUT_ERR_BAD_PARAM",
  /** A path parameter longer than the router's maxParamLength (Fastify's own answer is 414). */
  FST_ERR_MAX_PARAM_LENGTH: "TURNOUT_ERR_BAD_PARAM",
  FST_ERR_ASYNC_CONSTRAINT: "TURNOUT_ERR_BAD_PARAM",
};

export function toProblem(error: unknown, requestId: string, route?: string): Problem {
  const known = asTurnoutError(error);
  const problem: Problem = {
    type: `urn:turnout:error:${known.code}`,
    title: known.title,
    status: known.status,
    detail: known.message,
    code: known.code,
    requestId,
  };
  if (known.field !== undefined) problem.field = known.field;
  if (route !== undefined) problem.route = route;
  return problem;
}

/** Fastify's messages that name too little for a client to act on. */
const FASTIFY_DETAILS: Readonly<Record<string, string>> = {
  FST_ERR_CTP_INVALID_MEDIA_TYPE: "the Content-Type header is not a valid media type",
};

function asTurnoutError(error: unknown): TurnoutError {
  if (error instanceof TurnoutError) return error;
  const fastifyCode = (error as { code?: unknown } | null)?.code;
  if (typeof fastifyCode === "string" && fastifyCode in FASTIFY_CODES) {
    const code = FASTIFY_CODES[fastifyCode]!;
    const message =
      FASTIFY_DETAILS[fastifyCode] ?? (error instanceof Error ? error.message : String(error));
    return new TurnoutError(code, message, { cause: error });
  }
  return new TurnoutError("TURNOUT_ERR_INTERNAL", "unexpected error; see the gateway's log", {
    cause: error,
  });
}

/** True for the 5xx problems the gateway itself caused (worth an error log line). */
export function isInternal(problem: Problem): boolean {
  return problem.code === "TURNOUT_ERR_INTERNAL";
}
