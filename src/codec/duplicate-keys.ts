/**
 * Duplicate keys in a JSON body (`{"a":1,"a":2}`). JSON.parse keeps the last
 * one and drops the other without a word, which a strict gateway must not do
 * (protobuf's own JSON parsers refuse them). The check compares the members
 * written in the text (colons outside strings) with the keys the parsed value
 * holds: equal means none was dropped. Only when they differ is the text
 * scanned again, object by object, to name the key. About 1 µs for a
 * 300-byte body, most of it the character loop over the text.
 */
import { LosslessNumber } from "lossless-json";

const QUOTE = 34;
const BACKSLASH = 92;
const COLON = 58;

/** The key given twice in one object of `text`, parsed as `value`; undefined when none is. */
export function duplicateKey(text: string, value: unknown): string | undefined {
  if (typeof value !== "object" || value === null) return undefined;
  if (memberCount(text) === keyCount(value)) return undefined;
  return firstDuplicate(text);
}

/** "key": value pairs written in `text`: one colon each, outside strings. */
function memberCount(text: string): number {
  let count = 0;
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code === COLON) count++;
    else if (code === QUOTE) i = stringEnd(text, i);
  }
  return count;
}

/** The index of the quote closing the string that opens at `start`. */
function stringEnd(text: string, start: number): number {
  let i = start + 1;
  for (; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code === BACKSLASH) i++;
    else if (code === QUOTE) break;
  }
  return i;
}

/**
 * Keys held by every object inside `value`, or -1 past MAX_DEPTH levels (the
 * caller then scans the text; the codec refuses such a body anyway).
 */
function keyCount(value: unknown, depth = 0): number {
  if (typeof value !== "object" || value === null || value instanceof LosslessNumber) return 0;
  if (depth > MAX_DEPTH) return -1;
  let count = 0;
  if (Array.isArray(value)) {
    for (const item of value) {
      const inner = keyCount(item, depth + 1);
      if (inner < 0) return -1;
      count += inner;
    }
    return count;
  }
  const object = value as Record<string, unknown>;
  for (const key in object) {
    const inner = keyCount(object[key], depth + 1);
    if (inner < 0) return -1;
    count += 1 + inner;
  }
  return count;
}

/** Far below the JS stack's limit, above protobuf's 100 message levels. */
const MAX_DEPTH = 200;

/** The first key given twice in one object; the text is valid JSON (it parsed). */
function firstDuplicate(text: string): string | undefined {
  // One set of keys per open object; null for an open array.
  const open: (Set<string> | null)[] = [];
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code === 123) open.push(new Set());
    else if (code === 91) open.push(null);
    else if (code === 125 || code === 93) open.pop();
    else if (code === QUOTE) {
      const end = stringEnd(text, i);
      const keys = open[open.length - 1];
      if (keys != null && isKey(text, end + 1)) {
        const key = JSON.parse(text.slice(i, end + 1)) as string;
        if (keys.has(key)) return key;
        keys.add(key);
      }
      i = end;
    }
  }
  return undefined;
}

/** Whether a colon follows at `from`, after whitespace: the string before it was a key. */
function isKey(text: string, from: number): boolean {
  let i = from;
  while (i < text.length && /\s/.test(text[i]!)) i++;
  return text.charCodeAt(i) === COLON;
}
