/**
 * What `turnout contract` prints: one line per sample (`ok` or `FAIL`, with
 * every difference indented under a failure), then a summary; or the same as
 * one JSON object for tools.
 */
import { parse, stringify } from "lossless-json";
import type { FieldDiff } from "../shadow/compare.js";
import type { SampleResult } from "./replay.js";

const INDENT = "     ";

export interface Summary {
  readonly samples: number;
  readonly ok: number;
  readonly failed: number;
}

export function summarize(results: readonly SampleResult[]): Summary {
  const ok = results.filter((r) => r.result === "ok").length;
  return { samples: results.length, ok, failed: results.length - ok };
}

export function textReport(results: readonly SampleResult[]): string {
  const lines = results.flatMap(resultLines);
  const { samples, ok, failed } = summarize(results);
  lines.push(`${samples} samples: ${ok} ok, ${failed} failed`);
  return `${lines.join("\n")}\n`;
}

function resultLines(r: SampleResult): string[] {
  const what = `line ${r.sample.line} ${r.sample.method} ${r.sample.path}`;
  if (r.result === "ok") return [`ok   ${what}`];
  const details =
    r.route === undefined && r.diffs.length === 0
      ? [noRoute(r)]
      : r.diffs.map((diff) => diffLine(diff, r));
  if (r.route === undefined && r.diffs.length > 0) details.unshift(refusedBeforeRouting(r));
  if (r.truncated) details.push(`(more differences not shown: only the first ${r.diffs.length})`);
  return [`FAIL ${what}`, ...details.map((d) => `${INDENT}${d}`)];
}

function noRoute(r: SampleResult): string {
  const code = r.problem === undefined ? "" : ` ${r.problem.code}`;
  return `no route: none in the table matches this method and path (the gateway answered ${r.status}${code})`;
}

/** Heads the differences of a request the router refused before any route ran. */
function refusedBeforeRouting(r: SampleResult): string {
  return `refused before any route ran: the gateway answered ${r.status}${problemText(r)}`;
}

/**
 * `$.email changed: recorded "a", got "b"`; a status change adds the gateway's
 * error code, or the answer's body (a worker's error body says why).
 */
function diffLine(diff: FieldDiff, r: SampleResult): string {
  const recorded = diff.kind === "extra" ? "nothing" : shown(diff.primary, diff.primaryIsJson);
  const got = diff.kind === "missing" ? "nothing" : shown(diff.mirror, diff.mirrorIsJson);
  const why = diff.path === "$status" ? problemText(r) + bodyText(r) : "";
  return `${diff.path} ${diff.kind}: recorded ${recorded}, got ${got}${why}`;
}

function bodyText(r: SampleResult): string {
  return r.answerBody === undefined ? "" : ` with body ${r.answerBody}`;
}

function problemText(r: SampleResult): string {
  if (r.problem === undefined) return "";
  return r.problem.detail === ""
    ? ` ${r.problem.code}`
    : ` ${r.problem.code} (${r.problem.detail})`;
}

/** Strings quoted; JSON text (objects, numbers past 2^53) as it is, so neither passes for the other. */
function shown(value: unknown, isJson: true | undefined): string {
  return typeof value === "string" && isJson === undefined ? JSON.stringify(value) : String(value);
}

/** The value itself in `--json`: JSON text parsed back, big numbers kept exact. */
function reported(value: unknown, isJson: true | undefined): unknown {
  if (isJson === undefined || typeof value !== "string") return value;
  try {
    return parse(value);
  } catch {
    return value; // cut short for the report: left as text
  }
}

/** The whole run as one JSON document (`--json`). */
export function jsonReport(results: readonly SampleResult[]): string {
  const report = {
    ...summarize(results),
    results: results.map((r) => ({
      line: r.sample.line,
      method: r.sample.method,
      path: r.sample.path,
      route: r.route ?? null,
      result: r.result,
      ...(r.route === undefined ? { error: unrouted(r) } : {}),
      recordedStatus: r.sample.status,
      status: r.status,
      ...(r.problem === undefined ? {} : { code: r.problem.code, detail: r.problem.detail }),
      ...(r.answerBody === undefined ? {} : { body: r.answerBody }),
      diffs: r.diffs.map((d) => ({
        path: d.path,
        kind: d.kind,
        recorded: reported(d.primary, d.primaryIsJson),
        got: reported(d.mirror, d.mirrorIsJson),
      })),
      truncated: r.truncated,
    })),
  };
  return `${stringify(report, null, 2)}\n`;
}

function unrouted(r: SampleResult): string {
  return r.diffs.length === 0 ? "no route" : "refused before routing";
}
