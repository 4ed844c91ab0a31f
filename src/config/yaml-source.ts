/**
 * Reads routes.yaml keeping every node's position (LineCounter), so each problem
 * can name file:line:col. Syntax errors are problems like any other, and so are
 * the parser's warnings (an unknown tag, an unsupported %YAML version) and a
 * byte that is not UTF-8: a file read other than as written must not pass.
 */
import { readFileSync } from "node:fs";
import { type Document, LineCounter, parseDocument, type YAMLWarning } from "yaml";
import { Field } from "./field.js";
import type { Problems } from "./problems.js";
import { decodeUtf8 } from "./utf8-text.js";

/** The document's root as a Field, or undefined when the file can't be read or parsed. */
export function readYaml(file: string, problems: Problems): Field | undefined {
  const text = readText(file, problems);
  if (text === undefined) return undefined;
  const lines = new LineCounter();
  // prettyErrors off: the message stays one line; the location is added by Problems.
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false });
  problems.lines = lines;
  for (const error of doc.errors) problems.add(error.pos[0], "(yaml)", error.message);
  if (doc.errors.length > 0) return undefined;
  if (!isYaml12(doc, text, problems)) return undefined;
  for (const warning of doc.warnings) problems.add(warning.pos[0], "(yaml)", warningText(warning));
  const root = new Field({ doc, problems }, doc.contents ?? undefined, "", 0);
  if (!root.isMap) {
    const message = `the file must be a YAML map with "version: 1", got ${root.describe()}`;
    problems.add(0, "(document)", message);
    return undefined;
  }
  return root;
}

/** The file's text, or undefined when it can't be read or is not UTF-8 (reported). */
function readText(file: string, problems: Problems): string | undefined {
  let bytes: Buffer;
  try {
    bytes = readFileSync(file);
  } catch (error) {
    problems.addAt(file, "(file)", `cannot read the file: ${(error as Error).message}`);
    return undefined;
  }
  const decoded = decodeUtf8(bytes);
  if (decoded.ok) return decoded.text;
  problems.addAt(`${file}:${decoded.line}:${decoded.col}`, "(file)", decoded.problem);
  return undefined;
}

/**
 * `%YAML 1.1` would bring back 1.1's implicit types: `yes` read as true, `010` as 8,
 * `1:30` as 90, `<<` as a merge. Every value would then mean something other than
 * what the rest of the file (and the README) says, so the directive is refused.
 */
function isYaml12(doc: Document, text: string, problems: Problems): boolean {
  const version = doc.directives?.yaml.version;
  if (version === undefined || version === "1.2") return true;
  const offset = Math.max(text.search(/^%YAML\b/m), 0);
  const message = `%YAML ${version}: only YAML 1.2 is read (1.1 turns yes into true, 010 into 8 and 1:30 into 90); remove the directive`;
  problems.add(offset, "(yaml)", message);
  return false;
}

/** The parser's warning, with the fix when it is an unknown tag (the value was read without it). */
function warningText(warning: YAMLWarning): string {
  if (warning.code !== "TAG_RESOLVE_FAILED") return warning.message;
  return `${warning.message}: routes.yaml uses no custom tags; write the value without it`;
}
