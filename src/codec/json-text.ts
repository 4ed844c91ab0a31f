/**
 * A JSON request body's bytes as text. JSON is UTF-8 (RFC 8259): a body
 * declared in another charset is a 415, bytes that are not UTF-8 a 400 (a
 * string decoder would turn them into U+FFFD, silently), and a leading byte
 * order mark, no part of JSON, is dropped as RFC 8259 section 8.1 allows.
 */
import { isUtf8 } from "node:buffer";
import { TurnoutError } from "../errors.js";

const CHARSET = /;\s*charset\s*=\s*"?([^";\s]*)/i;

export function jsonText(contentType: string | undefined, body: Buffer): string | TurnoutError {
  const refused = charsetRefusal(contentType);
  if (refused !== undefined) return refused;
  if (!isUtf8(body)) {
    return new TurnoutError(
      "TURNOUT_ERR_BAD_JSON",
      "the request body is not valid UTF-8 (RFC 8259)",
    );
  }
  // Some clients (.NET's UTF8Encoding(true)) send one.
  return body.toString("utf8", hasByteOrderMark(body) ? 3 : 0);
}

/** A 415 for a declared charset other than UTF-8; checked before the body is decoded. */
export function charsetRefusal(contentType: string | undefined): TurnoutError | undefined {
  if (contentType === undefined || !contentType.includes(";")) return undefined;
  const charset = CHARSET.exec(contentType)?.[1]?.toLowerCase();
  if (charset === undefined || charset === "utf-8" || charset === "utf8") return undefined;
  return new TurnoutError(
    "TURNOUT_ERR_UNSUPPORTED_MEDIA_TYPE",
    `charset "${charset}" is not supported: JSON bodies are UTF-8 (RFC 8259)`,
  );
}

function hasByteOrderMark(body: Buffer): boolean {
  return body.length >= 3 && body[0] === 0xef && body[1] === 0xbb && body[2] === 0xbf;
}
