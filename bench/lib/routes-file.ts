/**
 * The bench route tables with a legacy upstream (bench/routes-*.yaml) name it
 * by a placeholder URL: the legacy backend listens on a free port known only
 * at run time. The runner writes a copy of the file, with the real URL and the
 * `protos` paths made absolute (the copy lives in a temporary folder), and
 * starts the gateway on that copy. Everything else stays as in the file.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { basename, dirname, isAbsolute, join, resolve } from "node:path";
import { isMap, isSeq, parseDocument } from "yaml";

/**
 * `text` (a routes.yaml read from `baseDir`) with `protos` entries resolved
 * against `baseDir` and each named legacy upstream set to its URL. Throws when
 * the YAML does not parse, or an upstream name is not in its `legacy:` map.
 */
export function rewriteRoutes(
  text: string,
  baseDir: string,
  legacy: Readonly<Record<string, string>>,
): string {
  const doc = parseDocument(text);
  if (doc.errors.length > 0) throw new Error(`not YAML: ${doc.errors[0]!.message}`);
  const protos = doc.get("protos");
  if (isSeq(protos)) {
    const absolute = protos.items.map((item) => {
      const value = (item as { value?: unknown }).value;
      if (typeof value !== "string") throw new Error("protos: every entry must be a string");
      return isAbsolute(value) ? value : resolve(baseDir, value);
    });
    doc.set("protos", absolute);
  }
  const map = doc.get("legacy");
  for (const [name, url] of Object.entries(legacy)) {
    if (!isMap(map) || !map.has(name)) {
      throw new Error(`legacy upstream "${name}" is not in the file's legacy: map`);
    }
    map.set(name, url);
  }
  return doc.toString();
}

/**
 * Writes `file` (relative to `root`) rewritten for `legacy` into `outDir`
 * under the same name, and returns the copy's path.
 */
export function writeRoutesFor(
  root: string,
  file: string,
  legacy: Readonly<Record<string, string>>,
  outDir: string,
): string {
  const source = join(root, file);
  const copy = join(outDir, basename(file));
  writeFileSync(copy, rewriteRoutes(readFileSync(source, "utf8"), dirname(source), legacy));
  return copy;
}
