/**
 * `compare.ignore` paths: `$` then `.name`, `.*`, `[n]` or `[*]` steps (the
 * grammar config/route-options.ts accepts). Compiled once per route; applied
 * by removing the matches from both answers before they are diffed.
 */
import protobuf from "protobufjs";
import { isJsonObject } from "../codec/fields.js";
import { TurnoutError } from "../errors.js";

/** Left in an array where an ignored element was, so later indexes keep their meaning. */
export const IGNORED: unique symbol = Symbol("ignored");

/**
 * `names` holds the name as written plus its lowerCamel and snake_case twins:
 * normalized answers carry lowerCamel names while the operator may have written
 * the proto name, and a body that fell back to plain JSON has whatever names
 * the service printed.
 */
type Step = { readonly names: ReadonlySet<string> } | { readonly index: number } | "*";

export type IgnorePaths = readonly (readonly Step[])[];

const STEP = /\.(\*|[A-Za-z0-9_-]+)|\[(\*|\d+)\]/y;

export function compileIgnorePaths(paths: readonly string[]): IgnorePaths {
  return paths.map(compilePath);
}

function compilePath(path: string): Step[] {
  const steps: Step[] = [];
  STEP.lastIndex = 1;
  while (path[0] === "$" && STEP.lastIndex < path.length) {
    const match = STEP.exec(path);
    if (match === null) break;
    const [, name, index] = match;
    if (name === "*" || index === "*") steps.push("*");
    else if (index !== undefined) steps.push({ index: Number(index) });
    else steps.push({ names: nameVariants(name!) });
  }
  if (steps.length === 0 || STEP.lastIndex !== path.length) {
    throw new TurnoutError("TURNOUT_ERR_CONFIG", `compare.ignore: "${path}" is not a JSON path`);
  }
  return steps;
}

function nameVariants(name: string): Set<string> {
  const snake = name.replace(/[A-Z]/g, (upper) => `_${upper.toLowerCase()}`);
  return new Set([name, protobuf.util.jsonName(name), snake]);
}

/** Removes every match of `ignore` from `value`, in place (the value is the caller's own copy). */
export function removeIgnored(value: unknown, ignore: IgnorePaths): void {
  for (const steps of ignore) remove(value, steps, 0, true);
}

/**
 * Removes only the ignored object keys, leaving ignored array elements in
 * place: what can go before an answer is normalized, since a field the type
 * lacks (a legacy-only one, say) would make the normalizer refuse the body,
 * while an IGNORED marker in an array would make it refuse it too.
 */
export function removeIgnoredKeys(value: unknown, ignore: IgnorePaths): void {
  for (const steps of ignore) remove(value, steps, 0, false);
}

function remove(value: unknown, steps: readonly Step[], at: number, elements: boolean): void {
  const step = steps[at]!;
  const last = at === steps.length - 1;
  if (Array.isArray(value)) {
    if ((typeof step === "object" && "names" in step) || (last && !elements)) return;
    const from = step === "*" ? 0 : step.index;
    const to = step === "*" ? value.length : Math.min(step.index + 1, value.length);
    for (let i = from; i < to; i++) {
      if (last) value[i] = IGNORED;
      else remove(value[i], steps, at + 1, elements);
    }
  } else if (isJsonObject(value)) {
    if (typeof step === "object" && "index" in step) return;
    const keys =
      step === "*" ? Object.keys(value) : [...step.names].filter((k) => Object.hasOwn(value, k));
    for (const key of keys) {
      if (last) delete value[key];
      else remove(value[key], steps, at + 1, elements);
    }
  }
}
