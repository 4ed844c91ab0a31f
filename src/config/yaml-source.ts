/**
 * Reads routes.yaml keeping every node's position (LineCounter), so each problem
 * can name file:line:col. Syntax errors are problems like any other.
 */
import { readFileSync } from "node:fs";
import { LineCounter, parseDocument } from "yaml";
import { Field } from "./field.js";
import type { Problems } from "./problems.js";

/** The document's root as a Field, or undefined when the file can't be read or parsed. */
export function readYaml(file: string, problems: Problems): Field | undefined {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (error) {
    problems.addAt(file, "(file)", `cannot read the file: ${(error as Error).message}`);
    return undefined;
  }
  const lines = new LineCounter();
  // prettyErrors off: the message stays one line; the location is added by Problems.
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false });
  problems.lines = lines;
  for (const error of doc.errors) problems.add(error.pos[0], "(yaml)", error.message);
  if (doc.errors.length > 0) return undefined;
  const root = new Field({ doc, problems }, doc.contents ?? undefined, "", 0);
  if (!root.isMap) {
    const message = `the file must be a YAML map with "version: 1", got ${root.describe()}`;
    problems.add(0, "(document)", message);
    return undefined;
  }
  return root;
}
