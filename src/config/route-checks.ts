/** Checks across routes: a name, and a method + path, may each be used once. */
import type { ReadRoute } from "./route.js";
import { pathShape } from "./route-paths.js";

export function checkDuplicates(routes: readonly ReadRoute[]): void {
  const names = new Map<string, ReadRoute>();
  const endpoints = new Map<string, ReadRoute>();
  for (const route of routes) {
    const { name, method, path } = route.draft;
    if (name !== undefined) {
      const first = claim(names, name, route);
      if (first !== undefined) {
        route.field.child("name").problem(`"${name}" is already used by ${where(first)}`);
      }
    }
    if (method === undefined || path === undefined) continue;
    for (const served of methodsServed(method)) {
      // Param names don't matter to the router: /a/:x and /a/:y take the same requests.
      const first = claim(endpoints, `${served} ${pathShape(path)}`, route);
      if (first === undefined) continue;
      const implied = served !== method || first.draft.method !== served;
      const taken = `${first.draft.method} ${first.draft.path}`;
      route.field
        .child("path")
        .problem(
          `clashes with ${taken} of ${where(first)}${implied ? " (a GET route answers HEAD too)" : ""}`,
        );
      break;
    }
  }
}

/** The router answers HEAD for every GET route: a HEAD route on that path could not be added. */
function methodsServed(method: string): string[] {
  return method === "GET" ? ["GET", "HEAD"] : [method];
}

/** Records `route` under `key`; returns the route that had it first, if any. */
function claim(seen: Map<string, ReadRoute>, key: string, route: ReadRoute): ReadRoute | undefined {
  const first = seen.get(key);
  if (first === undefined) seen.set(key, route);
  return first;
}

function where(route: ReadRoute): string {
  const { field } = route;
  return `the route at line ${field.ctx.problems.lineOf(field.offset)} (${field.route})`;
}
