/**
 * The gateway's query string parser (the router's `querystringParser`): what
 * Fastify's default gives (repeated keys -> an array, `+` -> space, `?a` ->
 * ""), plus the keys whose value is not valid percent-encoded UTF-8. Those
 * values stay raw, as before, for whatever reads them loosely (a sticky key);
 * binding one to a field is a 400, where the raw text used to reach the worker
 * as if it were the value (`?name=caf%E9` became "caf%E9").
 */
export const UNDECODABLE: unique symbol = Symbol("undecodable query keys");

export type ParsedQuery = Record<string, string | string[]> & {
  [UNDECODABLE]?: ReadonlySet<string>;
};

export function parseQueryString(text: string): ParsedQuery {
  // No prototype: `?__proto__=x` is a key like any other.
  const query: ParsedQuery = Object.create(null);
  if (text === "") return query;
  let undecodable: Set<string> | undefined;
  for (const pair of text.split("&")) {
    if (pair === "") continue;
    const eq = pair.indexOf("=");
    const rawKey = eq === -1 ? pair : pair.slice(0, eq);
    const rawValue = eq === -1 ? "" : pair.slice(eq + 1);
    // An undecodable key names no field; it stays raw and is ignored like any unknown key.
    const key = decodeComponent(rawKey) ?? rawKey;
    let value = decodeComponent(rawValue);
    if (value === undefined) {
      undecodable ??= new Set();
      undecodable.add(key);
      value = rawValue;
    }
    const seen = query[key];
    if (seen === undefined) query[key] = value;
    else if (typeof seen === "string") query[key] = [seen, value];
    else seen.push(value);
  }
  if (undecodable !== undefined) query[UNDECODABLE] = undecodable;
  return query;
}

/** `+` is a space; undefined when the percent-encoding is bad or not UTF-8. */
function decodeComponent(text: string): string | undefined {
  const spaced = text.includes("+") ? text.replaceAll("+", " ") : text;
  if (!spaced.includes("%")) return spaced;
  try {
    return decodeURIComponent(spaced);
  } catch {
    return undefined;
  }
}
