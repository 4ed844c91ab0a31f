/**
 * What package.json promises a user resolves once built: the `turnout` binary
 * and every module it exports (the worker kit).
 */
import { existsSync, readFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import t from "tap";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const pkg = JSON.parse(readFileSync(resolve(ROOT, "package.json"), "utf8")) as {
  bin: Record<string, string>;
  exports: Record<string, string>;
};

t.test("every export and the binary exist after the build, and the exports load", async (t) => {
  for (const [name, target] of Object.entries(pkg.bin)) {
    t.ok(existsSync(resolve(ROOT, target)), `bin ${name}: ${target}`);
  }
  for (const [subpath, target] of Object.entries(pkg.exports)) {
    const file = resolve(ROOT, target);
    t.ok(existsSync(file), `export ${subpath}: ${target}`);
    const module = (await import(file)) as Record<string, unknown>;
    t.ok(Object.keys(module).length > 0, `export ${subpath} has exports`);
  }
  t.ok("./worker" in pkg.exports, "the worker kit is exported as turnout/worker");
});
