/**
 * Request headers whose values are credentials: never logged, never shown by
 * the admin API (dead letters keep them for their replay). Lower case, as Node
 * and the gateway's forwarded NATS headers name them.
 */
export const CREDENTIAL_HEADERS: readonly string[] = [
  "authorization",
  "proxy-authorization",
  "cookie",
  "turnout-token",
];

/** The pino redaction path of header `name` under `parent` (`req.headers["turnout-token"]`). */
export function headerPath(parent: string, name: string): string {
  return /^[a-z]+$/.test(name) ? `${parent}.${name}` : `${parent}["${name}"]`;
}
