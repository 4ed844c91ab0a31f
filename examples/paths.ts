/**
 * Where the example files are, whether they run from examples/ (tsx) or from
 * dist/examples/ (built): everything is found from the repository root.
 */
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

/** The nearest folder above this file holding package.json. */
export function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, "package.json"))) {
    const parent = dirname(dir);
    if (parent === dir) throw new Error("cannot find the repository root (package.json)");
    dir = parent;
  }
  return dir;
}

/** A file of the build output, e.g. distFile("examples/worker.js"). */
export function distFile(path: string): string {
  return join(repoRoot(), "dist", path);
}
