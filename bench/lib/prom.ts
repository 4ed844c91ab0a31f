/**
 * A reader of the Prometheus text format, as much as the bench needs to check
 * what the gateway did during a scenario (which side served, how many mirrors
 * matched): samples with their labels, and sums over them.
 */

export interface Sample {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

const SAMPLE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+-?\d+)?$/;
const LABEL = /\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"\s*,?/y;

function unescapeLabel(value: string): string {
  return value.replace(/\\(.)/g, (_, c: string) => (c === "n" ? "\n" : c));
}

function parseLabels(text: string, line: string): Record<string, string> {
  const labels: Record<string, string> = {};
  LABEL.lastIndex = 0;
  while (LABEL.lastIndex < text.length) {
    const at = LABEL.lastIndex;
    const match = LABEL.exec(text);
    if (match === null) {
      if (text.slice(at).trim() === "") break;
      throw new Error(`bad labels in metrics line: ${line}`);
    }
    labels[match[1]!] = unescapeLabel(match[2]!);
  }
  return labels;
}

/** Every sample of `text`; comments and blank lines skipped. Throws on a malformed line. */
export function parsePrometheus(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) continue;
    const match = SAMPLE.exec(line);
    if (match === null) throw new Error(`not a metrics line: ${line}`);
    const text = match[3]!;
    const value = text === "+Inf" ? Infinity : text === "-Inf" ? -Infinity : Number(text);
    if (Number.isNaN(value) && text !== "NaN") throw new Error(`bad value in: ${line}`);
    samples.push({ name: match[1]!, labels: parseLabels(match[2] ?? "", line), value });
  }
  return samples;
}

/** The sum of the samples named `name` whose labels include every pair of `where`. */
export function sumSamples(
  samples: readonly Sample[],
  name: string,
  where: Readonly<Record<string, string>> = {},
): number {
  let total = 0;
  for (const s of samples) {
    if (s.name !== name) continue;
    if (Object.entries(where).every(([k, v]) => s.labels[k] === v)) total += s.value;
  }
  return total;
}

/** `sumSamples` grouped by the value of `label` (samples without it are left out). */
export function sumBy(
  samples: readonly Sample[],
  name: string,
  label: string,
  where: Readonly<Record<string, string>> = {},
): Record<string, number> {
  const groups: Record<string, number> = {};
  for (const s of samples) {
    const key = s.labels[label];
    if (s.name !== name || key === undefined) continue;
    if (Object.entries(where).every(([k, v]) => s.labels[k] === v)) {
      groups[key] = (groups[key] ?? 0) + s.value;
    }
  }
  return groups;
}
