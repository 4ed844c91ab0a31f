/**
 * Syntax of a route's `path` and `subject`. Both are given to other parts as
 * written (Fastify registers the path, routing/subject.ts fills the subject), so
 * anything those would read differently than the user meant is refused here.
 */

/**
 * A param is a whole segment and a plain identifier: Fastify (find-my-way) ends a
 * param name at `.` or `-`, so `:user.id` would silently become `:user` + ".id".
 */
const PARAM_SEGMENT = /^:([A-Za-z_][A-Za-z0-9_]*)$/;
/** Unreserved and sub-delim characters; `*`, `(`, `)`, `:` mean something to Fastify. */
const STATIC_SEGMENT = /^[A-Za-z0-9\-._~!$&'+,;=@]+$/;

export type Parsed<T> =
  | { readonly ok: true; readonly value: T }
  | { readonly ok: false; readonly problem: string };

/** The names of the path's params, in order, or what is wrong with the path. */
export function parsePath(path: string): Parsed<string[]> {
  if (!path.startsWith("/")) return fail('must start with "/", e.g. /v1/users/:id');
  if (path === "/") return { ok: true, value: [] };
  const params: string[] = [];
  for (const segment of path.slice(1).split("/")) {
    const problem = segmentProblem(segment, params);
    if (problem !== undefined) return fail(problem);
  }
  return { ok: true, value: params };
}

function segmentProblem(segment: string, params: string[]): string | undefined {
  if (segment === "") return 'has an empty segment ("//" or a trailing "/")';
  const param = PARAM_SEGMENT.exec(segment)?.[1];
  if (param !== undefined) {
    if (params.includes(param)) return `names the param ":${param}" twice`;
    params.push(param);
    return undefined;
  }
  // RFC 3986 5.2.4: URL libraries (curl, browsers, WHATWG URL) and proxies remove them.
  if (segment === "." || segment === "..") {
    return `segment "${segment}": clients and proxies resolve "." and ".." segments away before sending (/v1/./a is sent as /v1/a), so no request would reach this route`;
  }
  if (segment.startsWith(":")) {
    return `segment "${segment}": a param is a whole segment named like an identifier, e.g. /:user_id`;
  }
  if (!STATIC_SEGMENT.test(segment)) {
    return `segment "${segment}" holds characters a path segment can't (wildcards, regexps and ":" are not supported)`;
  }
  return undefined;
}

/**
 * The path in URI-template form, `/users/:id` -> `/users/{id}`: how OpenAPI
 * paths and span names show a route (never a raw path holding ids).
 */
export function pathTemplate(path: string): string {
  return path.replace(/\/:([A-Za-z_][A-Za-z0-9_]*)/g, "/{$1}");
}

/** The path with param names erased: `/a/:x` and `/a/:y` match the same requests. */
export function pathShape(path: string): string {
  return path.replace(/\/:[^/]+/g, "/:");
}

const SUBJECT_PARAM = /^\{([^{}]*)\}$/;
/** Characters that would change a subject's shape or break the protocol line. */
const UNSAFE_SUBJECT_CHARS = /[*>\s\p{Cc}{}]/u;

/**
 * Checks a subject template against the path params. Only path params may fill a
 * `{token}`: query params are optional, and an empty token is a 400 at run time.
 */
export function subjectProblems(
  subject: string,
  /** Undefined when the path is itself invalid: then only the syntax is checked. */
  pathParams: readonly string[] | undefined,
): string[] {
  const tokens = subject.split(".");
  const reserved = reservedProblem(tokens[0] ?? "");
  const problems = reserved === undefined ? [] : [reserved];
  for (const token of tokens) {
    const param = SUBJECT_PARAM.exec(token)?.[1];
    if (param !== undefined) {
      if (pathParams !== undefined && !pathParams.includes(param)) {
        problems.push(missingParam(param, pathParams));
      }
    } else if (token === "") {
      problems.push(`"${subject}" has an empty token (leading, trailing or double ".")`);
    } else if (UNSAFE_SUBJECT_CHARS.test(token)) {
      problems.push(
        `token "${token}" may not hold wildcards (* >), whitespace or braces; a {param} is a whole token`,
      );
    }
  }
  return problems;
}

/**
 * Subjects no HTTP client may reach through a route. NATS keeps `$` subjects for
 * itself ($JS.API.> drives JetStream, $KV.turnout_cutover.> holds the live
 * cutover, $SYS.> the server) and `_INBOX.>` for replies to other requests;
 * `turnout.>` is the gateway's own (turnout.stats in control/plan-stats.ts,
 * turnout.dlq.> in backends/nats/dead-letters.ts). A {param} first token is
 * refused too: a client would choose it, `$JS` included.
 */
function reservedProblem(first: string): string | undefined {
  if (SUBJECT_PARAM.test(first)) {
    return `the first token cannot be a {param}: a client could fill it with $JS, $KV or _INBOX and drive NATS itself`;
  }
  if (first.startsWith("$")) {
    return `"${first}" subjects belong to NATS ($JS.API drives JetStream, $KV.turnout_cutover holds the live cutover, $SYS the server): an HTTP client must not reach them`;
  }
  if (first === "_INBOX") {
    return "_INBOX subjects carry the replies to other requests: a route must not publish into them";
  }
  if (first === "turnout") {
    return `"turnout" subjects are the gateway's own (turnout.stats carries the cutover plans' figures, turnout.dlq.> the dead letters): a route must not publish into them`;
  }
  return undefined;
}

function missingParam(param: string, pathParams: readonly string[]): string {
  const known =
    pathParams.length === 0 ? "the path has none" : `path params: ${pathParams.join(", ")}`;
  return `{${param}} names no path param (only path params can fill a subject token); ${known}`;
}

function fail(problem: string): Parsed<never> {
  return { ok: false, problem };
}
