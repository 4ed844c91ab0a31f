/**
 * The `protos:` list: files or folders relative to routes.yaml, compiled with the
 * codec's loadProtos. protobufjs stops at the first error and its messages don't
 * name the file, so on the way each file is parsed alone: every broken file is
 * reported with its own name and line. An entry that fails leaves the others
 * compiled, so the routes are still checked against them (see `complete`).
 */
import { existsSync, readFileSync } from "node:fs";
import { dirname, isAbsolute, relative, resolve } from "node:path";
import protobuf from "protobufjs";
import { findImport, includeDirsOf, listProtoFiles, loadProtos } from "../codec/protos.js";
import type { Field } from "./field.js";
import { readList, readString, required } from "./read.js";

export interface LoadedProtos {
  /** Absolute paths of the listed files and folders that exist. */
  readonly paths: string[];
  /** The compiled types of the files that parse; undefined when none do or they don't compile. */
  readonly root: protobuf.Root | undefined;
  /**
   * Whether every entry loaded. When not, a type missing from `root` may be in
   * the entry or file that failed, so route types are looked up but never reported missing.
   */
  readonly complete: boolean;
  /** Absolute paths of the .proto files found under `paths`. */
  readonly files: string[];
}

/** Ends the message of each problem that leaves a file out, as route types then go unreported. */
const TYPES_WAIT = "; routes' missing types are reported once every protos entry loads";

export function loadListedProtos(f: Field, dir: string): LoadedProtos {
  const before = f.ctx.problems.count;
  required(f);
  const paths = readList(f, (item) => readProtoPath(item, dir)) ?? [];
  if (f.isList && f.items().length === 0) f.problem("must list at least one .proto file or folder");
  const files = listProtoFiles(paths);
  if (paths.length > 0 && files.length === 0) f.problem("holds no .proto files");
  const includeDirs = includeDirsOf(paths);
  const parsed = new Map(files.map((file) => [file, parseAlone(f, file, includeDirs)]));
  const complete = f.ctx.problems.count === before;
  const usable = files.filter((file) => parsed.get(file) !== undefined);
  return { paths, root: compile(f, usable, includeDirs, parsed, complete), complete, files };
}

/** The files that parse, compiled; a resolve error is reported only when no entry failed. */
function compile(
  f: Field,
  files: readonly string[],
  includeDirs: readonly string[],
  parsed: ReadonlyMap<string, protobuf.Root | undefined>,
  complete: boolean,
): protobuf.Root | undefined {
  if (files.length === 0) return undefined;
  try {
    return loadProtos(files, includeDirs);
  } catch (error) {
    // Without every entry, a type may not resolve for want of one that failed.
    if (complete) reportLoadError(f, error as Error, parsed);
    return undefined;
  }
}

/** How many message types the listed files define (imports of google/protobuf aside). */
export function countMessageTypes(root: protobuf.Root, files: readonly string[]): number {
  const own = new Set(files);
  let count = 0;
  const visit = (ns: protobuf.NamespaceBase): void => {
    for (const child of ns.nestedArray) {
      if (child instanceof protobuf.Type && own.has(child.filename ?? "")) count++;
      if (child instanceof protobuf.Namespace) visit(child);
    }
  };
  visit(root);
  return count;
}

function readProtoPath(item: Field, dir: string): string | undefined {
  const entry = readString(item);
  if (entry === undefined) return undefined;
  const path = resolve(dir, entry);
  if (existsSync(path)) return path;
  item.problem(`"${entry}" does not exist (looked for ${path})${TYPES_WAIT}`);
  return undefined;
}

/** Parses one file on its own; reports a syntax error or a missing import (then: undefined). */
function parseAlone(
  f: Field,
  file: string,
  includeDirs: readonly string[],
): protobuf.Root | undefined {
  try {
    const result = protobuf.parse(readFileSync(file, "utf8"), new protobuf.Root(), {
      keepCase: true,
    });
    const imports = [...(result.imports ?? []), ...(result.weakImports ?? [])];
    const found = imports.map((target) => checkImport(f, file, target, includeDirs));
    return found.includes(false) ? undefined : result.root;
  } catch (error) {
    const message = (error as Error).message;
    const line = /line (\d+)\)$/.exec(message)?.[1];
    const location = line === undefined ? display(file) : `${display(file)}:${line}`;
    const problem = message.replace(/ \([^()]*line \d+\)$/, "");
    f.ctx.problems.addAt(location, f.path, `${problem}${TYPES_WAIT}`);
    return undefined;
  }
}

/** The well-known types protobufjs bundles (no file: it serves them itself). */
const BUNDLED = new Set(
  ["any", "duration", "empty", "field_mask", "struct", "timestamp", "wrappers"].map(
    (name) => `google/protobuf/${name}.proto`,
  ),
);

/** An import is found beside the file, under a protos folder, or among the google/protobuf files protobufjs has. */
function checkImport(
  f: Field,
  file: string,
  target: string,
  includeDirs: readonly string[],
): boolean {
  if (BUNDLED.has(target) || findImport(file, target, includeDirs) !== undefined) return true;
  const looked = [dirname(file), ...includeDirs.filter((dir) => dir !== dirname(file))];
  f.ctx.problems.addAt(
    display(file),
    f.path,
    `imports "${target}", which is in none of ${looked.map(display).join(", ")}: list its folder (or the folder its import path starts from) under protos${TYPES_WAIT}`,
  );
  return false;
}

/** A resolve error names a type (`in Type .a.B`): report it in the file defining that type. */
function reportLoadError(
  f: Field,
  error: Error,
  parsed: ReadonlyMap<string, protobuf.Root | undefined>,
): void {
  if (reportDuplicate(f, error, parsed)) return;
  const typeName = /in \w+ \.(\S+)/.exec(error.message)?.[1];
  for (const [file, root] of parsed) {
    if (typeName !== undefined && root?.lookup(typeName)) {
      f.ctx.problems.addAt(display(file), f.path, error.message);
      return;
    }
  }
  f.problem(`the protos don't compile: ${error.message}`);
}

/**
 * protobufjs names the namespace of a name defined twice, not the files: each
 * file defining it again is reported, naming the first.
 */
function reportDuplicate(
  f: Field,
  error: Error,
  parsed: ReadonlyMap<string, protobuf.Root | undefined>,
): boolean {
  // `in Namespace .a.b`, or `in Root` for a file without a package.
  const duplicate = /^duplicate name '([^']+)' in \w+(?: \.(\S+))?$/.exec(error.message);
  if (duplicate === null) return false;
  const name = duplicate[2] === undefined ? duplicate[1]! : `${duplicate[2]}.${duplicate[1]}`;
  const files = [...parsed].filter(([, root]) => defines(root, name)).map(([file]) => file);
  if (files.length < 2) return false;
  for (const file of files.slice(1)) {
    f.ctx.problems.addAt(
      display(file),
      f.path,
      `defines ${name}, which ${display(files[0]!)} defines already`,
    );
  }
  return true;
}

function defines(root: protobuf.Root | undefined, name: string): boolean {
  try {
    return root?.lookup(name) != null;
  } catch {
    return false;
  }
}

/** Relative to the working directory when below it, as a compiler would print it. */
function display(file: string): string {
  const rel = relative(process.cwd(), file);
  return rel.startsWith("..") || isAbsolute(rel) ? file : rel;
}
