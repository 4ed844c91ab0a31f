/** Credentials inside a URL (`scheme://user:pass@host`), refused wherever a URL is configured. */

export function hasCredentials(url: URL): boolean {
  return url.username !== "" || url.password !== "";
}

/**
 * A URL as written, for a message about it: credentials (`user:pass@`,
 * `TOKEN@`) and any query or fragment masked. Textual, so it also serves text
 * that does not parse, or parses another way than it was meant (a password
 * holding "/" or "@" moves the host).
 */
export function maskedUrlText(text: string): string {
  // Up to the last "@": a password may hold "@", "/", "?" or "#" (masking a
  // path's "@" too is the safe side).
  const masked = text.replace(
    /^((?:[^:/?#@]*:)?\/\/)?(.*)@/s,
    (_all, scheme: string | undefined, userinfo: string) =>
      `${scheme ?? ""}${userinfo.includes(":") ? "***:***" : "***"}@`,
  );
  return masked.replace(/([?#]).+$/s, "$1***");
}
