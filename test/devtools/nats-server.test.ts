import { spawn } from "node:child_process";
import { once } from "node:events";
import { readFileSync } from "node:fs";
import { connect } from "@nats-io/transport-node";
import t from "tap";
import { startNatsServer } from "../../src/devtools/nats-server.js";

t.test("startNatsServer runs a real server that accepts clients and stops cleanly", async (t) => {
  const server = await startNatsServer();
  const nc = await connect({ servers: server.url });
  const sub = nc.subscribe("ping", { max: 1 });
  nc.publish("ping", "hello");
  for await (const msg of sub) t.equal(msg.string(), "hello");
  await nc.close();
  await server.stop();
  t.not(server.process.exitCode ?? server.process.signalCode, null, "process has exited");
});

t.test("a process that dies with its servers still running takes them down with it", async (t) => {
  // A child that starts a server, prints its pid, then throws: as a test file failing at import does.
  const script = `
    import { startNatsServer } from "./src/devtools/nats-server.ts";
    const server = await startNatsServer();
    process.stdout.write(String(server.process.pid) + "\\n");
    throw new Error("crash with the server running");
  `;
  const child = spawn(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script], {
    stdio: ["ignore", "pipe", "ignore"],
  });
  let out = "";
  child.stdout.on("data", (chunk: Buffer) => (out += chunk));
  const [code] = await once(child, "exit");
  t.not(code, 0, "the child crashed");
  const pid = Number(out.trim());
  t.ok(pid > 0, "it had started a server");
  await new Promise((resolve) => setTimeout(resolve, 200));
  t.notOk(alive(pid), "the server is gone too");
  if (alive(pid)) process.kill(pid, "SIGKILL");
});

/** Whether a process runs (a zombie waiting for its parent counts as gone). */
function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return !/^\d+ \(.*\) Z/.test(stat);
  } catch {
    return false;
  }
}
