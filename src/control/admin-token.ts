/**
 * The admin token (TURNOUT_ADMIN_TOKEN) guards `/admin` and the forced-backend
 * header. Compared in constant time over SHA-256 digests, so neither the
 * content nor the length of the token leaks through timing.
 */
import { createHash, timingSafeEqual } from "node:crypto";

export type TokenCheck = "ok" | "missing" | "wrong" | "unconfigured";

export class AdminToken {
  readonly #digest: Buffer | undefined;

  constructor(token: string | undefined) {
    this.#digest = token === undefined || token === "" ? undefined : digest(token);
  }

  get configured(): boolean {
    return this.#digest !== undefined;
  }

  /** Checks a presented token (undefined when the request carried none). */
  check(presented: string | undefined): TokenCheck {
    if (this.#digest === undefined) return "unconfigured";
    if (presented === undefined || presented === "") return "missing";
    return timingSafeEqual(digest(presented), this.#digest) ? "ok" : "wrong";
  }

  /** Checks an `Authorization: Bearer <token>` header value. */
  checkBearer(authorization: string | undefined): TokenCheck {
    const match = authorization === undefined ? null : /^Bearer\s+(\S+)\s*$/i.exec(authorization);
    return this.check(match?.[1]);
  }
}

function digest(text: string): Buffer {
  return createHash("sha256").update(text).digest();
}
