/**
 * routes.yaml as text. Node's lenient "utf8" decoding turns bytes that are not
 * UTF-8 (a Latin-1 `é` saved by an old editor) into U+FFFD: a subject or a
 * header name would then be served as something nobody wrote. The file is
 * decoded strictly instead, and the first bad byte is named with its place.
 */

export type Decoded =
  | { readonly ok: true; readonly text: string }
  | { readonly ok: false; readonly problem: string; readonly line: number; readonly col: number };

/** The file's text (a leading BOM dropped, as it is no character of the document) or its first invalid byte. */
export function decodeUtf8(bytes: Uint8Array): Decoded {
  try {
    return { ok: true, text: new TextDecoder("utf-8", { fatal: true }).decode(bytes) };
  } catch {
    return invalidByte(bytes, firstInvalidByte(bytes));
  }
}

function invalidByte(bytes: Uint8Array, offset: number): Decoded {
  // Counted like the YAML parser counts: in characters of the text before it, BOM left out.
  const before = new TextDecoder("utf-8").decode(bytes.subarray(0, offset)).split("\n");
  const line = before.length;
  const col = (before.at(-1)?.length ?? 0) + 1;
  const byte = (bytes[offset] ?? 0).toString(16).toUpperCase().padStart(2, "0");
  const problem = `is not valid UTF-8: byte 0x${byte} at byte offset ${offset} does not belong to a UTF-8 character (is the file saved as Latin-1?); save it as UTF-8`;
  return { ok: false, problem, line, col };
}

/**
 * Where the lenient decoder first had to replace bytes: up to there every
 * character decoded as written, so their encoded lengths add up to the offset.
 * A U+FFFD written in the file (bytes EF BF BD) is a character like any other.
 */
function firstInvalidByte(bytes: Uint8Array): number {
  const text = new TextDecoder("utf-8", { ignoreBOM: true }).decode(bytes);
  let offset = 0;
  for (const char of text) {
    if (char === "\uFFFD" && !isWrittenReplacement(bytes, offset)) return offset;
    offset += Buffer.byteLength(char, "utf8");
  }
  return offset;
}

function isWrittenReplacement(bytes: Uint8Array, offset: number): boolean {
  return bytes[offset] === 0xef && bytes[offset + 1] === 0xbf && bytes[offset + 2] === 0xbd;
}
