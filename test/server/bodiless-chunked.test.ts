/**
 * A GET or HEAD takes no body; an empty one is no body, however it is framed:
 * `Content-Length: 0`, or a chunked body that ends without a byte
 * (`0\r\n\r\n`). A chunked body with bytes is still a 400. The chunked body is
 * read to its end either way, so the connection serves its next request, and
 * one that never ends is cut by the listener's request timeout (408, closing
 * the connection), not held.
 */
import { once } from "node:events";
import { connect as tcpConnect } from "node:net";
import t from "tap";
import { usersGetRoute } from "../helpers/route-yaml.js";
import { usersGetWorker } from "../helpers/routes-and-workers.js";
import { waitUntil } from "../helpers/serve-process.js";
import { startStack, writeRoutes } from "../helpers/stack.js";

const stack = await startStack(t, writeRoutes(usersGetRoute()), {
  listener: { requestTimeoutMs: 1000 },
});
const worker = usersGetWorker(stack.nc, stack.root, (req: { id: string }) => ({ id: req.id }));
t.teardown(() => worker.stop());
await stack.nc.flush();
const port = Number(new URL(stack.gateway.url).port);

const CHUNKED = "Transfer-Encoding: chunked\r\n";

/** One keep-alive connection: `send` writes bytes, `answers` are the statuses read so far. */
async function connection() {
  const socket = tcpConnect(port, "127.0.0.1");
  t.teardown(() => socket.destroy());
  socket.on("error", () => {});
  let text = "";
  socket.on("data", (chunk: Buffer) => (text += chunk.toString("latin1")));
  await once(socket, "connect");
  return {
    socket,
    send: (bytes: string) => socket.write(bytes),
    statuses: () => [...text.matchAll(/HTTP\/1\.1 (\d{3}) /g)].map((m) => Number(m[1])),
    text: () => text,
  };
}

const head = (method: string, id: string, extra = "") =>
  `${method} /v1/regions/eu/users/${id} HTTP/1.1\r\nHost: x\r\n${extra}\r\n`;

t.test(
  "a GET or HEAD whose chunked body is empty is served, and so is the next request",
  async (t) => {
    const c = await connection();
    c.send(`${head("GET", "u1", CHUNKED)}0\r\n\r\n`);
    await waitUntil(() => c.statuses().length === 1, 5000);
    c.send(`${head("HEAD", "u2", CHUNKED)}0\r\n\r\n`);
    await waitUntil(() => c.statuses().length === 2, 5000);
    c.send(head("GET", "u3"));
    await waitUntil(() => c.statuses().length === 3, 5000);
    t.same(c.statuses(), [200, 200, 200]);
    t.match(c.text(), /"id":"u1"/);
    t.match(c.text(), /"id":"u3"/);
  },
);

t.test("an empty chunked body sent after the head, in its own packet, is served too", async (t) => {
  const c = await connection();
  c.send(head("GET", "u4", CHUNKED));
  await new Promise((resolve) => setTimeout(resolve, 100));
  t.same(c.statuses(), [], "no answer before the body's end");
  c.send("0\r\n\r\n");
  await waitUntil(() => c.statuses().length === 1, 5000);
  t.same(c.statuses(), [200]);
});

t.test(
  "a chunked body with bytes is still a 400, and the connection serves its next request",
  async (t) => {
    const c = await connection();
    c.send(`${head("GET", "u5", CHUNKED)}f\r\n{"page_size":3}\r\n0\r\n\r\n`);
    await waitUntil(() => c.statuses().length === 1, 5000);
    t.match(c.text(), /a GET request takes no body/);
    c.send(head("GET", "u6"));
    await waitUntil(() => c.statuses().length === 2, 5000);
    t.same(c.statuses(), [400, 200]);
    t.match(c.text(), /"id":"u6"/);
  },
);

t.test(
  "a chunked body that never ends is answered 408 by the request timeout, and closed",
  async (t) => {
    const c = await connection();
    c.send(head("GET", "u7", CHUNKED));
    const closed = await Promise.race([
      once(c.socket, "close").then(() => true),
      new Promise<false>((resolve) => setTimeout(() => resolve(false), 10_000)),
    ]);
    t.ok(closed, "answered and closed well within 10 s");
    t.same(c.statuses(), [408]);
    t.match(c.text(), /\r\nconnection: close\r\n/i, "saying the connection closes");
    t.match(c.text(), /TURNOUT_ERR_REQUEST_TIMEOUT/);
  },
);

t.test("a client that leaves in the middle of a chunked body is recorded as gone", async (t) => {
  const gone = () => stack.gateway.metrics.requests.cell("users.get", "gateway", "499").value;
  const before = gone();
  const c = await connection();
  c.send(head("GET", "u8", CHUNKED));
  await new Promise((resolve) => setTimeout(resolve, 100));
  c.socket.destroy();
  await waitUntil(() => gone() === before + 1, 5000);
  t.equal(gone(), before + 1);
});
