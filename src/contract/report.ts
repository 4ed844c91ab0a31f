/**
 * What `turnout contract` prints: one line per sample (`ok` or `FAIL`, with
 * every difference indented under a failure), then a summary; or the same as
 * one JSON object for tools.
 */
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

/** `$.email changed: recorded "a", got "b"`; a status change adds the gateway's error code. */
function diffLine(diff: FieldDiff, r: SampleResult): string {
  const recorded = diff.kind === "extra" ? "nothing" : shown(diff.primary);
  const got = diff.kind === "missing" ? "nothing" : shown(diff.mirror);
  const code = diff.path === "$status" ? problemText(r) : "";
  return `${diff.path} ${diff.kind}: recorded ${recorded}, got ${got}${code}`;
}

function problemText(r: SampleResult): string {
  if (r.problem === undefined) return "";
  return r.problem.detail === ""
    ? ` ${r.problem.code}`
    : ` ${r.problem.code} (${r.problem.detail})`;
}

function shown(value: unknown): string {
  return typeof value === "string" ? JSON.stringify(value) : String(value);
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
      ...(r.route === undefined ? { error: "no route" } : {}),
      recordedStatus: r.sample.status,
      status: r.status,
      ...(r.problem === undefined ? {} : { code: r.problem.code, detail: r.problem.detail }),
      diffs: r.diffs.map((d) => ({
        path: d.path,
        kind: d.kind,
        recorded: d.primary,
        got: d.mirror,
      })),
      truncated: r.truncated,
    })),
  };
  return `${JSON.stringify(report, null, 2)}\n`;
}
