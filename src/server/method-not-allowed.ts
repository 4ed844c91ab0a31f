/**
 * Fastify answers an unknown method on a known path with 404. A gateway in front
 * of existing clients should say 405 with `Allow`, as most HTTP services do; this
 * matcher (used only on the not-found path, never on served requests) knows which
 * methods each path pattern serves.
 */
import type { RouteConfig } from "../config/types.js";

/** A path pattern as segments: a literal, or PARAM for a `:name` segment. */
const PARAM = Symbol("param");
type Segment = string | typeof PARAM;

export class AllowedMethods {
  readonly #patterns: { segments: Segment[]; methods: Set<string> }[] = [];

  constructor(routes: readonly RouteConfig[]) {
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
