/**
 * Compares the primary's answer with the mirror's, off the request path.
 * Status first: answers with different statuses are a mismatch on `$status`
 * alone (their bodies are of different types, a body diff would be noise).
 * Then bodies: both empty, or the same bytes, is equal. Otherwise JSON
 * (application/json, +json) is parsed, stripped of `compare.ignore`,
 * normalized through the route's type (plain JSON when either side does not
 * fit it, so both sides are compared alike) and diffed field by field;
 * anything else is a mismatch on `$body`.
 */
import { parseJsonBody } from "../codec/index.js";
import {
  compileIgnorePaths,
  type IgnorePaths,
  removeIgnored,
  removeIgnoredKeys,
} from "./ignore.js";
import { diffJson, type FieldDiff, MAX_DIFFS, preview } from "./json-diff.js";
import type { Normalizer } from "./normalize.js";

export { compileIgnorePaths, type IgnorePaths } from "./ignore.js";
export type { FieldDiff } from "./json-diff.js";
export { compileNormalizer, type Normalizer, PLAIN_JSON } from "./normalize.js";

export interface Answer {
  readonly status: number;
  readonly body: string | Uint8Array | undefined;
  readonly contentType: string | undefined;
  /** A legacy answer's Content-Encoding: its body is decoded before it is compared. */
  readonly contentEncoding?: string;
}

export type Comparison =
  | { readonly result: "match" }
  | { readonly result: "mismatch"; readonly diffs: FieldDiff[]; readonly truncated: boolean };

const MATCH: Comparison = Object.freeze({ result: "match" });

/**
 * What names the request, not the answer: the request id every problem+json
 * of the gateway carries, which a legacy error body lacks, prints as its own
 * or echoes. Ignored on both sides of an error answer (status 400 and up)
 * alike, so it never decides a comparison; every other field the client sees
 * still counts.
 */
const PER_REQUEST_ERROR_FIELDS = compileIgnorePaths(["$.requestId"]);

export function compareAnswers(
  primary: Answer,
  mirror: Answer,
  normalizer: Normalizer,
  ignore: IgnorePaths,
): Comparison {
  if (primary.status !== mirror.status) {
    return mismatch([
      { path: "$status", kind: "changed", ...values(primary.status, mirror.status) },
    ]);
  }
  const a = bodyBytes(primary.body);
  const b = bodyBytes(mirror.body);
  if (a.length === 0 || b.length === 0) {
    if (a.length === b.length) return MATCH;
    if (a.length === 0) return mismatch([{ path: "$body", kind: "extra", mirror: shown(b) }]);
    return mismatch([{ path: "$body", kind: "missing", primary: shown(a) }]);
  }
  const json = isJson(primary.contentType);
  if (json !== isJson(mirror.contentType)) {
    const diff = values(primary.contentType ?? null, mirror.contentType ?? null);
    return mismatch([{ path: "$contentType", kind: "changed", ...diff }]);
  }
  // The goal state of a migration, so the common case under shadow: the same
  // bytes normalize and filter to the same value, no need to parse them.
  if (a.equals(b)) return MATCH;
  const parsed = json ? parseBoth(a, b) : undefined;
  if (parsed === undefined) {
    return mismatch([{ path: "$body", kind: "changed", primary: shown(a), mirror: shown(b) }]);
  }
  const ignored = primary.status >= 400 ? [...ignore, ...PER_REQUEST_ERROR_FIELDS] : ignore;
  return compareJson(primary.status, parsed[0], parsed[1], normalizer, ignored);
}

function compareJson(
  status: number,
  a: unknown,
  b: unknown,
  normalizer: Normalizer,
  ignore: IgnorePaths,
): Comparison {
  // Ignored fields go first: the usual one is a field only the legacy side
  // prints, which the type lacks, and which would make the normalizer refuse
  // that side and leave both to a plain JSON compare.
  removeIgnoredKeys(a, ignore);
  removeIgnoredKeys(b, ignore);
  const normalA = normalizer.normalize(status, a);
  const normalB = normalizer.normalize(status, b);
  let spelled: FieldDiff[] = [];
  if (normalA !== undefined && normalB !== undefined) {
    // What normalizing hides: "1" for 1, null for []. The raw bodies are
    // normalized already, so ignored array elements can be marked in them now.
    removeIgnored(a, ignore);
    removeIgnored(b, ignore);
    spelled = normalizer.spellingDiffs(status, a, b, MAX_DIFFS + 1);
    a = normalA;
    b = normalB;
  }
  // Again on the normalized copies: ignored array elements, and defaults the
  // normalizer printed back in place of removed fields.
  removeIgnored(a, ignore);
  removeIgnored(b, ignore);
  const found = diffJson(a, b);
  // A null against a message is also a canonical diff at that path: shown once.
  const seen = new Set(found.diffs.map((diff) => diff.path));
  const diffs = [...found.diffs, ...spelled.filter((diff) => !seen.has(diff.path))];
  if (diffs.length === 0) return MATCH;
  const truncated = found.truncated || diffs.length > MAX_DIFFS;
  return { result: "mismatch", diffs: diffs.slice(0, MAX_DIFFS), truncated };
}

/** Both bodies parsed, or undefined when either is not valid JSON (then bytes are compared). */
function parseBoth(a: Buffer, b: Buffer): [unknown, unknown] | undefined {
  try {
    return [parseJsonBody(text(a)), parseJsonBody(text(b))];
  } catch {
    return undefined;
  }
}

function isJson(contentType: string | undefined): boolean {
  if (contentType === undefined) return false;
  const semi = contentType.indexOf(";");
  const media = (semi === -1 ? contentType : contentType.slice(0, semi)).trim().toLowerCase();
  return (
    media === "application/json" || (media.startsWith("application/") && media.endsWith("+json"))
  );
}

/** The body as a Buffer, copying nothing that is one already. */
export function bodyBytes(body: string | Uint8Array | undefined): Buffer {
  if (body === undefined) return Buffer.alloc(0);
  if (typeof body === "string") return Buffer.from(body, "utf8");
  return Buffer.isBuffer(body) ? body : Buffer.from(body.buffer, body.byteOffset, body.byteLength);
}

function text(body: Buffer): string {
  return body.toString("utf8");
}

/** The start of a body, as a diff shows it (decoding only what can be shown). */
function shown(body: Buffer): unknown {
  return preview(text(body.subarray(0, 1024)));
}

function values(primary: unknown, mirror: unknown): { primary: unknown; mirror: unknown } {
  return { primary: preview(primary), mirror: preview(mirror) };
}

function mismatch(diffs: FieldDiff[]): Comparison {
  return { result: "mismatch", diffs, truncated: false };
}
