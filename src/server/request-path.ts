/**
 * The request target without its query string: what logs, the mismatch log and
 * route matching show of a URL. Queries may carry personal data or secrets.
 */
export function pathOf(url: string): string {
  const query = url.indexOf("?");
  return query === -1 ? url : url.slice(0, query);
}
