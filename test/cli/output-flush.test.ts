/**
 * A command's output reaches a slow reader whole: the process may end itself
 * once done (a lingering NATS socket must not keep it up), but only after its
 * output has been handed to the OS, not 2 s after it returned.
 */
import { spawn } from "node:child_process";
import { once } from "node:events";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import t from "tap";
import { PROTO_DIR, writeRoutes } from "../helpers/stack.js";

/** A table with many problems: `check` prints far more than a pipe buffer holds (64 KiB). */
function tableWithManyProblems(): string {
  let routes = "";
  for (let i = 0; i < 1000; i++) {
    routes += `  - name: bad.route.${i}\n    method: FROB\n    path: /x${i}\n    legacy: nope\n`;
  }
  const file = join(writeRoutes(""), "..", "many-problems.yaml");
  writeFileSync(file, `version: 1\nprotos: [${JSON.stringify(PROTO_DIR)}]\nroutes:\n${routes}`);
  return file;
}

t.test("check's long report reaches a reader that starts reading 6 s late, whole", async (t) => {
  const file = tableWithManyProblems();
  const command = `${JSON.stringify(process.execPath)} --import tsx src/cli/main.ts check --config ${JSON.stringify(file)} 2>&1`;
  // A shell pipe, as `turnout check | less` makes: the reader sleeps before reading.
  const late = spawn("sh", ["-c", `${command} | (sleep 6; cat)`], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  t.teardown(() => late.kill("SIGKILL"));
  let text = "";
  late.stdout.on("data", (chunk: Buffer) => (text += chunk));
  await once(late, "close");
  t.ok(text.length > 200_000, `far more than a pipe buffer holds (${text.length} bytes)`);
  t.match(text, /bad\.route\.999\b/, "the last route's problems included");
  t.match(text, /problem\(s\) in .*many-problems\.yaml\n$/, "down to the summary line");
});
