/**
 * Fastify answers an unknown method on a known path with 404. A gateway in front
 * of existing clients should say 405 with `Allow`, as most HTTP services do; this
 * matcher (used only on the not-found path, never on served requests) knows which
 * methods each path pattern serves.
 */
import type { RouteConfig } from "../config/types.js";

export class AllowedMethods {
  readonly #patterns: { regex: RegExp; methods: Set<string> }[] = [];

  constructor(routes: readonly RouteConfig[]) {
    const byPattern = new Map<string, Set<string>>();
    for (const route of routes) {
      const source = patternSource(route.path);
      const methods = byPattern.get(source) ?? new Set<string>();
      methods.add(route.method);
      if (route.method === "GET") methods.add("HEAD"); // Fastify serves HEAD for GET routes
      byPattern.set(source, methods);
    }
    for (const [source, methods] of byPattern) {
      this.#patterns.push({ regex: new RegExp(source), methods });
    }
  }

  /** The methods served on this URL path, empty when no route has the path. */
  allowed(urlPath: string): string[] {
    const methods = new Set<string>();
    for (const pattern of this.#patterns) {
      if (pattern.regex.test(urlPath)) for (const method of pattern.methods) methods.add(method);
    }
    return [...methods].sort();
  }
}

function patternSource(path: string): string {
  const segments = path
    .split("/")
    .map((segment) =>
      segment.startsWith(":") ? "[^/]+" : segment.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"),
    );
  // No optional trailing slash: the router does not ignore it either.
  return `^${segments.join("/")}$`;
}
