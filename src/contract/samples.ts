/**
 * The samples file of `turnout contract`: one recorded request/response pair
 * per line, as JSON (`method`, `path`, `headers`, `body`, `status`,
 * `response`); blank lines and `#` comments are skipped. Every bad line is
 * reported at once, as `FILE:LINE: field: problem`, so a team fixes its
 * recording in one pass; a file with any bad line replays nothing.
 */
import { readFileSync } from "node:fs";
import { stringify } from "lossless-json";
import { isJsonObject } from "../codec/fields.js";
import { parseJsonBody } from "../codec/index.js";
import { didYouMean } from "../config/suggest.js";
import { HTTP_METHODS, type HttpMethod } from "../config/types.js";
import { TurnoutError } from "../errors.js";

export interface Sample {
  /** 1-based line in the samples file: how the report names the sample. */
  readonly line: number;
  readonly method: HttpMethod;
  /** Path with its query string, as sent to the gateway. */
  readonly path: string;
  readonly headers: Readonly<Record<string, string>>;
  /** The request body as JSON text (numbers kept exact); undefined: no body. */
  readonly body: string | undefined;
  /** The recorded legacy status. */
  readonly status: number;
  /** The recorded body as JSON text (numbers kept exact); undefined: an empty body. */
  readonly response: string | undefined;
}

export interface SampleProblem {
  readonly file: string;
  readonly line: number;
  /** The field at fault; undefined when the line as a whole is (not JSON, not an object). */
  readonly field: string | undefined;
  readonly message: string;
}

/** Every bad line of a samples file; nothing is replayed. */
export class SamplesError extends TurnoutError {
  readonly problems: readonly SampleProblem[];

  constructor(problems: readonly SampleProblem[]) {
    super("TURNOUT_ERR_BAD_SAMPLES", problems.map(formatSampleProblem).join("\n"));
    this.name = "SamplesError";
    this.problems = problems;
  }
}

const FIELDS = ["method", "path", "headers", "body", "status", "response"];
/** RFC 9110 token: what Node accepts as a header name. */
const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
/** A path the gateway can be asked for: absolute, no whitespace nor control characters. */
const REQUEST_PATH = /^\/[^\s\p{Cc}]*$/u;

export function formatSampleProblem(problem: SampleProblem): string {
  const field = problem.field === undefined ? "" : ` ${problem.field}:`;
  return `${problem.file}:${problem.line}:${field} ${problem.message}`;
}

/** Reads and validates `file`; throws SAMPLES_UNREADABLE or a SamplesError. */
export function readSamples(file: string): Sample[] {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (error) {
    const why = error instanceof Error ? error.message : String(error);
    throw new TurnoutError("TURNOUT_ERR_SAMPLES_UNREADABLE", `cannot read ${file}: ${why}`, {
      cause: error,
    });
  }
  return parseSamples(text, file);
}

/** The samples in `text` (named `file` in problems); throws a SamplesError listing every bad line. */
export function parseSamples(text: string, file: string): Sample[] {
  const samples: Sample[] = [];
  const problems: SampleProblem[] = [];
  const lines = text.split(/\r?\n/);
  lines.forEach((content, index) => {
    const trimmed = content.trim();
    if (trimmed === "" || trimmed.startsWith("#")) return;
    const line = index + 1;
    const found: Array<Omit<SampleProblem, "file" | "line">> = [];
    const sample = parseLine(trimmed, line, found);
    for (const p of found) problems.push({ file, line, ...p });
    if (sample !== undefined && found.length === 0) samples.push(sample);
  });
  if (problems.length === 0 && samples.length === 0) {
    problems.push({ file, line: lines.length, field: undefined, message: "holds no sample" });
  }
  if (problems.length > 0) throw new SamplesError(problems);
  return samples;
}

type Found = Array<Omit<SampleProblem, "file" | "line">>;

function parseLine(text: string, line: number, found: Found): Sample | undefined {
  let value: unknown;
  try {
    value = parseJsonBody(text);
  } catch (error) {
    found.push({ field: undefined, message: (error as Error).message });
    return undefined;
  }
  if (!isJsonObject(value)) {
    found.push({ field: undefined, message: "must be a JSON object (one sample a line)" });
    return undefined;
  }
  for (const key of Object.keys(value)) {
    if (!FIELDS.includes(key)) {
      found.push({ field: key, message: `unknown field${didYouMean(key, FIELDS)}` });
    }
  }
  const problem = (field: string, message: string) => found.push({ field, message });
  return {
    line,
    method: readMethod(value.method, problem),
    path: readPath(value.path, problem),
    headers: readHeaders(value.headers, problem),
    body: jsonText(value, "body"),
    status: readStatus(value.status, problem),
    response: jsonText(value, "response"),
  };
}

type Report = (field: string, message: string) => void;

function readMethod(value: unknown, problem: Report): HttpMethod {
  if (value === undefined) problem("method", 'missing (e.g. "GET")');
  else if (typeof value !== "string") problem("method", `must be a string, got ${shown(value)}`);
  else {
    const upper = value.toUpperCase();
    if ((HTTP_METHODS as readonly string[]).includes(upper)) return upper as HttpMethod;
    problem("method", `must be one of ${HTTP_METHODS.join(", ")}, got ${shown(value)}`);
  }
  return "GET";
}

function readPath(value: unknown, problem: Report): string {
  if (value === undefined) problem("path", 'missing (e.g. "/v1/users/42?fields=name")');
  else if (typeof value !== "string") problem("path", `must be a string, got ${shown(value)}`);
  else if (!REQUEST_PATH.test(value)) {
    problem(
      "path",
      `must start with / and hold no spaces or control characters, got ${shown(value)}`,
    );
  } else return value;
  return "/";
}

function readHeaders(value: unknown, problem: Report): Record<string, string> {
  if (value === undefined) return {};
  if (!isJsonObject(value)) {
    problem("headers", `must be an object of header names to strings, got ${shown(value)}`);
    return {};
  }
  const headers: Record<string, string> = {};
  for (const [name, text] of Object.entries(value)) {
    if (!HEADER_NAME.test(name)) problem(`headers.${name}`, "is not a valid header name");
    else if (typeof text !== "string") {
      problem(`headers.${name}`, `must be a string, got ${shown(text)}`);
    } else headers[name.toLowerCase()] = text;
  }
  return headers;
}

function readStatus(value: unknown, problem: Report): number {
  if (value === undefined) problem("status", "missing (the recorded HTTP status, e.g. 200)");
  else if (typeof value !== "number" || !Number.isInteger(value) || value < 100 || value > 599) {
    problem(
      "status",
      `must be an HTTP status, a whole number from 100 to 599, got ${shown(value)}`,
    );
  } else return value;
  return 0;
}

/** A field's JSON text, numbers past 2^53 as they were written; undefined when absent. */
function jsonText(sample: Record<string, unknown>, field: string): string | undefined {
  return Object.hasOwn(sample, field) ? stringify(sample[field]) : undefined;
}

function shown(value: unknown): string {
  const text = stringify(value) ?? String(value);
  return text.length <= 60 ? text : `${text.slice(0, 60)}…`;
}
