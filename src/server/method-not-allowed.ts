/**
 * Fastify answers an unknown method on a known path with 404. A gateway in front
 * of existing clients should say 405 with `Allow`, as most HTTP services do; this
 * matcher (used only on the not-found path, never on served requests) knows which
 * methods each path pattern serves. It also names the route and the path param
 * of a request the router refused before routing (a param that is not valid
 * percent-encoding, or too long), so that 400 names them as every other one does.
 */
import type { RouteConfig } from "../config/types.js";

/** A path pattern as segments: a literal, or PARAM for a `:name` segment. */
const PARAM = Symbol("param");
type Segment = string | typeof PARAM;

/** The route a refused request was for, and its param the router could not take. */
export interface RefusedParam {
  readonly route: string;
  readonly param: string;
  readonly why: string;
}

export class AllowedMethods {
  readonly #patterns: { segments: Segment[]; methods: Set<string> }[] = [];
  readonly #routes: readonly RouteConfig[];

  constructor(routes: readonly RouteConfig[]) {
    this.#routes = routes;
    const byPath = new Map<string, { segments: Segment[]; methods: Set<string> }>();
    for (const route of routes) {
      const segments = route.path
        .split("/")
        .map((segment): Segment => (segment.startsWith(":") ? PARAM : segment));
      // `/users/:id` and `/users/:name` are one path to a client.
      const key = route.path.replace(/:[^/]+/g, ":");
      const pattern = byPath.get(key) ?? { segments, methods: new Set<string>() };
      pattern.methods.add(route.method);
      if (route.method === "GET") pattern.methods.add("HEAD"); // Fastify serves HEAD for GET routes
      byPath.set(key, pattern);
    }
    this.#patterns = [...byPath.values()];
  }

  /**
   * The methods served on this raw URL path, empty when no route has the path.
   * Segments are compared decoded, as the router does (`/%74/a` is `/t/a`); no
   * optional trailing slash, which the router does not ignore either.
   */
  allowed(urlPath: string): string[] {
    const segments = urlPath.split("/").map(decodeSegment);
    const methods = new Set<string>();
    for (const pattern of this.#patterns) {
      if (matches(pattern.segments, segments)) {
        for (const method of pattern.methods) methods.add(method);
      }
    }
    return [...methods].sort();
  }

  /**
   * For a request the router refused: the route whose pattern its path fits
   * once refused segments count as params, and the first param segment that
   * is not valid percent-encoding or is longer than `maxParamLength`.
   */
  refusedParam(method: string, urlPath: string, maxParamLength: number): RefusedParam | undefined {
    const raw = urlPath.split("/");
    const routed = method === "HEAD" ? "GET" : method;
    for (const route of this.#routes) {
      const pattern = route.path.split("/");
      if (route.method !== routed || pattern.length !== raw.length) continue;
      let refused: RefusedParam | undefined;
      const fits = pattern.every((expected, i) => {
        const segment = raw[i] ?? "";
        if (!expected.startsWith(":")) return decodeSegment(segment) === expected;
        const why = paramRefusal(segment, maxParamLength);
        if (why !== undefined) refused ??= { route: route.name, param: expected.slice(1), why };
        return segment !== "";
      });
      if (fits && refused !== undefined) return refused;
    }
    return undefined;
  }
}

function paramRefusal(segment: string, maxParamLength: number): string | undefined {
  const decoded = decodeSegment(segment);
  if (decoded === undefined) return "is not valid percent-encoding (UTF-8 bytes as %XX)";
  if (decoded.length > maxParamLength) return `is longer than ${maxParamLength} characters`;
  return undefined;
}

function matches(pattern: readonly Segment[], segments: readonly (string | undefined)[]): boolean {
  if (pattern.length !== segments.length) return false;
  return pattern.every((expected, i) => {
    const actual = segments[i];
    return expected === PARAM ? actual !== undefined && actual !== "" : expected === actual;
  });
}

/** undefined for a segment that is not valid percent-encoding: it matches no pattern. */
function decodeSegment(segment: string): string | undefined {
  if (!segment.includes("%")) return segment;
  try {
    return decodeURIComponent(segment);
  } catch {
    return undefined;
  }
}
