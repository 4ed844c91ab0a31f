/** Credentials inside a URL (`scheme://user:pass@host`), refused wherever a URL is configured. */

export function hasCredentials(url: URL): boolean {
  return url.username !== "" || url.password !== "";
}

/**
 * The URL with its credentials masked, for a problem message that ends up in
 * CI logs; a user alone is masked too, as it may be a token (nats://TOKEN@host).
 */
export function maskedUrl(url: URL): string {
  const masked = new URL(url.href);
  masked.username = "***";
  if (masked.password !== "") masked.password = "***";
  return masked.href;
}

/**
 * A URL as written, for a message about it: credentials (`user:pass@`,
 * `TOKEN@`) and any query or fragment masked. Textual, so it also serves text
 * that does not parse as a URL, where maskedUrl cannot run.
 */
export function maskedUrlText(text: string): string {
  return text.replace(/^((?:[^:/?#@]*:)?\/\/)?[^/?#@]*@/, "$1***@").replace(/([?#]).+$/s, "$1***");
}
