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

const DECODERS: Readonly<Record<string, Decoder>> = {
  gzip: gunzipSync,
  "x-gzip": gunzipSync,
  deflate: inflateEither,
  br: brotliDecompressSync,
};

/** `answer` with its body decoded (at most `maxBytes` of it), or why it cannot be. */
export function decodedForComparison(answer: Answer, maxBytes: number): Answer | NotDecoded {
  const codings = codingsOf(answer.contentEncoding);
  if (codings.length === 0 || answer.body === undefined || answer.body.length === 0) return answer;
  let body = bodyBytes(answer.body);
  try {
    // Listed in the order they were applied: the last one is undone first.
    for (const coding of codings.reverse()) {
      const decode = DECODERS[coding];
      if (decode === undefined) return "undecodable";
      body = decode(body, { maxOutputLength: maxBytes });
    }
  } catch (error) {
    return isOverCap(error) ? "body_too_large" : "undecodable";
  }
  return { status: answer.status, contentType: answer.contentType, body };
}

function codingsOf(header: string | undefined): string[] {
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
