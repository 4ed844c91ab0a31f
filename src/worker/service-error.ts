/**
 * The error a worker throws to answer with an HTTP error status. The gateway
 * returns `code` to the HTTP client, with `body` (encoded as the worker's
 * errorType) as the JSON body when the route has an error type.
 */
export class ServiceError extends Error {
  readonly code: number;
  readonly body: object | undefined;

  /** `code` is an HTTP error status, 400-599; the gateway turns any other into a 502. */
  constructor(code: number, message: string, body?: object) {
    if (!Number.isInteger(code) || code < 400 || code > 599) {
      throw new RangeError(`ServiceError code must be an HTTP status 400-599, got ${code}`);
    }
    super(message);
    this.name = "ServiceError";
    this.code = code;
    this.body = body;
  }
}
