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
