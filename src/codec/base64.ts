/**
 * Strict base64 for bytes fields. Node's decoder skips characters it doesn't
 * know, so the text is checked first: the standard or the URL-safe alphabet
 * (not a mix), padding optional but, when present, complete.
 */

/** One alphabet or the other, never both in one text (Go's protojson refuses a mix too). */
const BASE64 = /^(?:[A-Za-z0-9+/]*|[A-Za-z0-9\-_]*)={0,2}$/;

/** Decoded bytes, or undefined when `text` is not base64. */
export function decodeBase64(text: string): Uint8Array | undefined {
  if (!BASE64.test(text)) return undefined;
  const padded = text.endsWith("=");
  const body = padded ? text.replace(/=+$/, "") : text;
  if (padded ? text.length % 4 !== 0 : body.length % 4 === 1) return undefined;
  return Buffer.from(body, "base64");
}

/**
 * Standard base64 with padding. An absent bytes field decodes to protobufjs's
 * shared empty array (a plain `[]`, not a Uint8Array): that is "".
 */
export function encodeBase64(bytes: Uint8Array): string {
  if (bytes.length === 0) return "";
  return (
    Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  ).toString("base64");
}
