import { spawn } from "node:child_process";
import { once } from "node:events";
import { connect, Empty } from "@nats-io/transport-node";
import protobuf from "protobufjs";
import t from "tap";
import { startNatsServer } from "../../src/devtools/nats-server.js";

const Req = protobuf
  .parse(
    `syntax = "proto3"; package t.v1; message Req { string id = 1; } message Res { string id = 1; }`,
  )
  .root.lookupType("t.v1.Req");

t.test(
  "on SIGTERM a worker answers the request in progress, drains and exits by itself",
  async (t) => {
    const server = await startNatsServer();
    t.teardown(() => server.stop());
    const nc = await connect({ servers: server.url });
    t.teardown(() => nc.close());

    const child = spawn(
      process.execPath,
      [
        "--import",
        "tsx",
        "test/worker/fixtures/draining-worker.ts",
        "--nats-url",
        server.url,
        "--subject",
        "t.drain",
      ],
      { stdio: ["ignore", "pipe", "inherit"] },
    );
    t.teardown(() => child.kill("SIGKILL"));
    let out = "";
    child.stdout.on("data", (chunk) => (out += chunk));
    while (!out.includes("ready\n")) await once(child.stdout, "data");

    const inProgress = nc.request("t.drain", Req.encode({ id: "r-1" }).finish(), {
      timeout: 3000,
    });
    await new Promise((resolve) => setTimeout(resolve, 100)); // the handler is running
    child.kill("SIGTERM");

    const reply = await inProgress;
    t.same(Req.decode(reply.data).toJSON(), { id: "r-1" }, "answered after the signal");
    const [code] = await once(child, "exit");
    t.equal(code, 0, "exited by itself");
    t.match(out, /SIGTERM received\ndrained after SIGTERM, connection closed: true\n/);
    const after = await nc.request("t.drain", Empty, { timeout: 500 }).then(
      () => "answered",
      (error: Error) => error.message,
    );
    t.match(after, /no responders/i, "nobody takes requests any more");
  },
);
