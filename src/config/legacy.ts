/**
 * Legacy upstreams: the `legacy:` map of names to base URLs, and a route's
 * `legacy:` (one of those names, or an absolute URL of its own).
 */
import type { Field } from "./field.js";
import { checkUniqueKeys, readString } from "./read.js";
import { didYouMean } from "./suggest.js";
import { hasCredentials, maskedUrlText } from "./url-credentials.js";

/**
 * Checks an upstream base URL and returns it without a trailing slash, so the
 * proxy can append the request path as is. Throws with the reason when unusable.
 */
export function normalizeLegacyUrl(text: string): string {
  const shown = maskedUrlText(text);
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new Error(`"${shown}" is not an absolute URL such as http://users-legacy:8080`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new Error(`"${shown}" must use http:// or https://`);
  }
  if (hasCredentials(url)) {
    throw new Error(
      `"${shown}" holds credentials, which are not sent upstream; give the legacy service its credentials another way`,
    );
  }
  if (url.port === "0") throw new Error(`"${shown}" has port 0, where no server listens`);
  if (url.search !== "" || url.hash !== "") {
    throw new Error(`"${shown}" is a base URL: it cannot carry a query or a fragment`);
  }
  return text.replace(/\/+$/, "");
}

export interface LegacyUpstreams {
  /** Name -> normalized base URL, for the names whose URL is valid. */
  readonly urls: ReadonlyMap<string, string>;
  /** Every name declared, valid URL or not (a bad URL is reported once, at the map). */
  readonly names: readonly string[];
}

export function readLegacyMap(f: Field): LegacyUpstreams {
  // A Map: a name such as "__proto__" is a name, not a property of Object.prototype.
  const upstreams = { urls: new Map<string, string>(), names: [] as string[] };
  if (!f.present) return upstreams;
  if (!f.isMap) {
    f.problem(`must be a map of names to URLs, got ${f.describe()}`);
    return upstreams;
  }
  checkUniqueKeys(f);
  for (const { key, field } of f.entries()) {
    if (upstreams.names.includes(key)) continue;
    upstreams.names.push(key);
    const url = readUrl(field);
    if (url !== undefined) upstreams.urls.set(key, url);
  }
  return upstreams;
}

/** A route's `legacy:`: an upstream name, or an absolute URL when it holds `://`. */
export function readRouteLegacy(f: Field, upstreams: LegacyUpstreams): string | undefined {
  const value = readString(f);
  if (value === undefined) return undefined;
  if (value.includes("://")) return readUrl(f);
  const { names } = upstreams;
  if (names.includes(value)) return upstreams.urls.get(value);
  const known = names.length === 0 ? "the legacy: map is empty" : `known: ${names.join(", ")}`;
  f.problem(
    `"${value}" is neither a name from legacy: nor an absolute URL${didYouMean(value, names)}; ${known}`,
  );
  return undefined;
}

function readUrl(f: Field): string | undefined {
  const text = readString(f);
  if (text === undefined) return undefined;
  try {
    return normalizeLegacyUrl(text);
  } catch (error) {
    f.problem((error as Error).message);
    return undefined;
  }
}
