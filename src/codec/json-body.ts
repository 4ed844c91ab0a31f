/**
 * Parses a request body. `JSON.parse` rounds numbers before any codec sees
 * them: integers past 2^53, but also a fraction that rounds to an integer
 * (`99999999.999999999`) or an exponent that underflows (`1e-400` is 0), which
 * an integer field would then take as integral. A text that may hold such a
 * number is parsed again with lossless-json, which keeps every number that a
 * JS number cannot hold exactly as a `LosslessNumber` (its decimal text).
 */
import {
  isSafeNumber,
  LosslessNumber,
  type ParseOptions,
  parse as parseLossless,
} from "lossless-json";
import { TurnoutError } from "../errors.js";
import { duplicateKey } from "./duplicate-keys.js";

export { isLosslessNumber, LosslessNumber } from "lossless-json";

/** Whether JSON.parse might round a number in `text`; cheap, and never wrong when false. */
export function mayRoundNumbers(text: string): boolean {
  return hasLongNumberRun(text) || hasExponentNumber(text);
}

/**
 * Whether `text` holds 16 digits or dots in a row: the cheap sign of a number
 * with more digits than a double keeps. Any such run covers one index i with
 * i % 16 === 15, so only every 16th character is looked at until one is a
 * digit or dot (3x faster than /[\d.]{16}/ on a typical body).
 */
export function hasLongNumberRun(text: string): boolean {
  const length = text.length;
  for (let i = 15; i < length; i += 16) {
    if (!isNumberChar(text.charCodeAt(i))) continue;
    let first = i;
    while (first > 0 && isNumberChar(text.charCodeAt(first - 1))) first--;
    let last = i;
    while (last + 1 < length && isNumberChar(text.charCodeAt(last + 1))) last++;
    if (last - first >= 15) return true;
    i = last; // the next run starts at last + 2 at the earliest and spans last + 16
  }
  return false;
}

function isNumberChar(code: number): boolean {
  return (code >= 48 && code <= 57) || code === 46;
}

/** A digit, e or E, then a digit or sign: an exponent, or text inside a string ("3e4" in a UUID). */
const EXPONENT_HINT = /\d[eE][-+]?\d/;
/** Strings whole (so their content is skipped), or an exponent outside any string. */
const STRING_OR_EXPONENT = /"(?:[^"\\]|\\.)*"|\d[eE][-+]?\d/g;

/** Whether a number outside the strings of `text` has an exponent. */
export function hasExponentNumber(text: string): boolean {
  if (!EXPONENT_HINT.test(text)) return false;
  STRING_OR_EXPONENT.lastIndex = 0;
  for (let m = STRING_OR_EXPONENT.exec(text); m !== null; m = STRING_OR_EXPONENT.exec(text)) {
    if (m[0].charCodeAt(0) !== 34) return true; // not a string: an exponent
  }
  return false;
}

function parseNumber(text: string): number | LosslessNumber {
  return isSafeNumber(text) ? Number(text) : new LosslessNumber(text);
}

/**
 * lossless-json throws on a key given twice (unless both values are equal) and
 * its error has no JSON path. Keeping the first value instead lets the check
 * that follows every parse (duplicateKey) name it as on the JSON.parse path.
 */
const LOSSLESS: ParseOptions = { parseNumber, onDuplicateKey: () => undefined };

/**
 * JSON.parse, except that numbers a JS number would round come back as
 * `LosslessNumber`. Invalid JSON is a TURNOUT_ERR_BAD_JSON with the position;
 * so is a key given twice in one object (JSON.parse would keep the last one).
 */
export function parseJsonBody(text: string): unknown {
  const value = parseWhole(text);
  const twice = duplicateKey(text, value);
  if (twice !== undefined) {
    throw new TurnoutError(
      "TURNOUT_ERR_BAD_JSON",
      `invalid JSON: key ${JSON.stringify(twice.key)} is given twice in one object (${twice.path})`,
      { field: twice.path },
    );
  }
  return value;
}

function parseWhole(text: string): unknown {
  try {
    return mayRoundNumbers(text) ? parseLossless(text, null, LOSSLESS) : JSON.parse(text);
  } catch (error) {
    throw badJson(text, error);
  }
}

/**
 * V8's messages don't always carry the position ("Unexpected token '}', ... is
 * not valid JSON"); lossless-json's always do, so it words the error when it
 * agrees the text is invalid.
 */
function badJson(text: string, error: unknown): TurnoutError {
  let message = error instanceof Error ? error.message : String(error);
  if (!/at position \d+/.test(message)) {
    try {
      parseLossless(text, null, LOSSLESS);
    } catch (lossless) {
      if (lossless instanceof Error) message = lossless.message;
    }
  }
  return new TurnoutError("TURNOUT_ERR_BAD_JSON", `invalid JSON: ${message}`, { cause: error });
}
