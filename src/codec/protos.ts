/**
 * Loads the .proto files named by the route table into one protobufjs Root.
 * Field names are kept as written (keepCase) so both the proto name and the
 * lowerCamel JSON name can be derived; google/protobuf/* imports resolve to the
 * well-known types protobufjs ships.
 */
import { existsSync, readdirSync, statSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import protobuf from "protobufjs";

/** The google/protobuf/*.proto files protobufjs ships beside its bundled ones (descriptor, api, type). */
const SHIPPED_GOOGLE = join(
  dirname(createRequire(import.meta.url).resolve("protobufjs")),
  "google",
  "protobuf",
);
const GOOGLE_PREFIX = "google/protobuf/";

/** Every .proto file under the given files or folders, sorted for stable output. */
export function listProtoFiles(paths: readonly string[]): string[] {
  const files: string[] = [];
  for (const path of paths) {
    if (statSync(path).isDirectory()) {
      for (const entry of readdirSync(path, { recursive: true, encoding: "utf8" })) {
        if (entry.endsWith(".proto")) files.push(join(path, entry));
      }
    } else {
      files.push(path);
    }
  }
  return files.sort();
}

/**
 * The folders imports are looked up in, as protoc's `-I`: each listed folder,
 * and the folder of each listed file.
 */
export function includeDirsOf(paths: readonly string[]): string[] {
  return [...new Set(paths.map((path) => (statSync(path).isDirectory() ? path : dirname(path))))];
}

/**
 * Where `import "target"` in `origin` is: beside the importing file (as
 * protobufjs has it), else under an include folder (`import "common/v1/x.proto"`
 * in a protoc or buf tree), else one of the google/protobuf files protobufjs
 * ships. Undefined when none has it. The bundled well-known types
 * (timestamp, struct...) never get here: protobufjs serves them itself.
 */
export function findImport(
  origin: string,
  target: string,
  includeDirs: readonly string[],
): string | undefined {
  const beside = protobuf.util.path.resolve(origin, target);
  if (existsSync(beside)) return beside;
  for (const dir of includeDirs) {
    const candidate = join(dir, target);
    if (existsSync(candidate)) return candidate;
  }
  if (target.startsWith(GOOGLE_PREFIX)) {
    const shipped = join(SHIPPED_GOOGLE, target.slice(GOOGLE_PREFIX.length));
    if (existsSync(shipped)) return shipped;
  }
  return undefined;
}

/**
 * Parses and resolves every .proto file; throws with the file and line on a
 * syntax error. Imports resolve as `findImport` says.
 */
export function loadProtos(
  paths: readonly string[],
  includeDirs: readonly string[] = includeDirsOf(paths),
): protobuf.Root {
  const root = new protobuf.Root();
  // A listed file is named as protobufjs's own resolver names it (normalized:
  // `./a.proto` is `a.proto`), so that an import reaching it is the same file.
  root.resolvePath = (origin, target) =>
    origin === ""
      ? protobuf.util.path.resolve(origin, target)
      : (findImport(origin, target, includeDirs) ?? protobuf.util.path.resolve(origin, target));
  root.loadSync(listProtoFiles(paths), { keepCase: true });
  root.resolveAll();
  return root;
}

/** The message type named `fullName` (no leading dot), or undefined. */
export function findMessage(root: protobuf.Root, fullName: string): protobuf.Type | undefined {
  try {
    const found = root.lookup(fullName);
    return found instanceof protobuf.Type ? found : undefined;
  } catch {
    return undefined;
  }
}
