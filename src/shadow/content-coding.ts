/**
 * A legacy answer's Content-Encoding, undone for the comparison only (the
 * client gets the bytes as the upstream sent them): compressed bytes never
 * equal NATS's plain JSON, so without this every comparison with an upstream
 * that compresses would be a mismatch. The output is bounded by the
 * comparison cap, so a small compressed body cannot inflate past it.
 */
import { brotliDecompressSync, gunzipSync, inflateRawSync, inflateSync } from "node:zlib";
import { type Answer, bodyBytes } from "./compare.js";

/** Why an encoded answer cannot be compared. */
export type NotDecoded = "body_too_large" | "undecodable";

type Decoder = (body: Buffer, options: { maxOutputLength: number }) => Buffer;

/** HTTP's deflate is zlib-wrapped (RFC 9110 section 8.4.1.2), but some servers send it raw. */
const inflateEither: Decoder = (body, options) => {
  try {
    return inflateSync(body, options);
  } catch (error) {
    if (isOverCap(error)) throw error;
    return inflateRawSync(body, options);
  }
};

const DECODERS: Readonly<Record<string, Decoder | undefined>> = {
  gzip: gunzipSync,
  "x-gzip": gunzipSync,
  deflate: inflateEither,
  br: brotliDecompressSync,
};

/** `answer` with its body decoded (at most `maxBytes` of it), or why it cannot be. */
export function decodedForComparison(answer: Answer, maxBytes: number): Answer | NotDecoded {
  const codings = codingsOf(answer.contentEncoding);
  if (codings.length === 0 || answer.body === undefined || answer.body.length === 0) return answer;
  const decoded = undoCodings(codings, bodyBytes(answer.body), maxBytes);
  if (!Buffer.isBuffer(decoded))
    return decoded.failed === "too_large" ? "body_too_large" : "undecodable";
  return { status: answer.status, contentType: answer.contentType, body: decoded };
}

/** Why a body could not be decoded; `coding` names the one that failed or is unknown. */
export interface DecodeFailure {
  readonly failed: "unknown" | "corrupt" | "too_large";
  readonly coding: string;
}

/**
 * `body` with `codings` (as listed in Content-Encoding, in the order they were
 * applied) undone, at most `maxBytes` of output, or why not.
 */
export function undoCodings(
  codings: readonly string[],
  body: Buffer,
  maxBytes: number,
): Buffer | DecodeFailure {
  for (const coding of [...codings].reverse()) {
    const decode = Object.hasOwn(DECODERS, coding) ? DECODERS[coding] : undefined;
    if (decode === undefined) return { failed: "unknown", coding };
    try {
      body = decode(body, { maxOutputLength: maxBytes });
    } catch (error) {
      return { failed: isOverCap(error) ? "too_large" : "corrupt", coding };
    }
  }
  return body;
}

/** The codings a Content-Encoding header lists, lowercased, `identity` left out. */
export function codingsOf(header: string | undefined): string[] {
  if (header === undefined) return [];
  return header
    .toLowerCase()
    .split(",")
    .map((coding) => coding.trim())
    .filter((coding) => coding !== "" && coding !== "identity");
}

function isOverCap(error: unknown): boolean {
  return (error as { code?: unknown } | null)?.code === "ERR_BUFFER_TOO_LARGE";
}
