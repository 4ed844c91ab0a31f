/**
 * Loads the .proto files named by the route table into one protobufjs Root.
 * Field names are kept as written (keepCase) so both the proto name and the
 * lowerCamel JSON name can be derived; google/protobuf/* imports resolve to the
 * well-known types protobufjs ships.
 */
import { readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import protobuf from "protobufjs";

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

/** Parses and resolves every .proto file; throws with the file and line on a syntax error. */
export function loadProtos(paths: readonly string[]): protobuf.Root {
  const root = new protobuf.Root();
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
