/**
 * Which answers have a body, and when a streamed one counts as begun: answers
 * without a body are never read (whatever their Content-Length says), and a
 * streamed body that fails before its first byte fails the forward itself.
 */
import net from "node:net";
import type { Readable } from "node:stream";
import t, { type Test } from "tap";
import { LegacyUpstreams } from "../../../src/backends/legacy/upstreams.js";
import { forwardFailure, listenOnLoopback, PLAIN_GET } from "../../helpers/legacy-server.js";

/** An upstream that answers each request's head with `answer(path)`, raw bytes, then does `after`. */
async function rawUpstream(
  t: Test,
  answer: (path: string) => string,
  after: (socket: net.Socket) => void = () => {},
): Promise<string> {
  const server = net.createServer((socket) => {
    socket.on("error", () => {});
    let buffered = "";
    socket.on("data", (chunk: Buffer) => {
      buffered += chunk.toString("latin1");
      for (let end = buffered.indexOf("\r\n\r\n"); end !== -1; end = buffered.indexOf("\r\n\r\n")) {
        const path = buffered.slice(0, end).split(" ")[1] ?? "/";
        buffered = buffered.slice(end + 4);
        socket.write(answer(path));
        after(socket);
      }
    });
  });
  return listenOnLoopback(t, server);
}

function legacy(t: Test, base: string, timeoutMs = 2000) {
  const route = { name: "things", legacy: base, timeoutMs };
  const upstreams = new LegacyUpstreams([route]);
  t.teardown(() => upstreams.close());
  return { route, upstreams };
}

const BUFFER = { mode: "buffer", maxBodyBytes: 1 << 20 } as const;
const RELAY = { mode: "relay" } as const;

t.test(
  "a 304 or 204 with a Content-Length is an answer without a body, its headers kept, in both modes",
  async (t) => {
    // RFC 9110 section 8.6: a 304's Content-Length is the selected representation's.
    const base = await rawUpstream(t, (path) => {
      const [status, length] = path.slice(1).split("-");
      const reason = status === "304" ? "Not Modified" : "No Content";
      return `HTTP/1.1 ${status} ${reason}\r\nETag: "v1"\r\nContent-Length: ${length}\r\n\r\n`;
    });
    const { route, upstreams } = legacy(t, base);
    for (const path of ["/304-10", "/304-100000", "/204-5"]) {
      const request = { ...PLAIN_GET, url: path };
      const relayed = await upstreams.forward(route, request, RELAY);
      const buffered = await upstreams.forward(route, request, BUFFER);
      for (const [mode, answer] of [
        ["relay", relayed],
        ["buffer", buffered],
      ] as const) {
        const what = `${path} ${mode}`;
        t.equal(answer.status, Number(path.slice(1, 4)), what);
        t.equal(answer.headers.etag, '"v1"', `${what}: etag kept`);
        t.equal(answer.headers["content-length"], path.split("-")[1], `${what}: length kept`);
        t.ok(Buffer.isBuffer(answer.body) && answer.body.length === 0, `${what}: no body`);
      }
    }
  },
);

t.test(
  "a relayed HEAD answer of any declared length is handed on unread, as an empty stream",
  async (t) => {
    const base = await rawUpstream(
      t,
      (path) =>
        `HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: ${path.slice(1)}\r\n\r\n`,
    );
    const { route, upstreams } = legacy(t, base);
    for (const length of ["5000", "100000"]) {
      const head = { ...PLAIN_GET, method: "HEAD", url: `/${length}` };
      const answer = await upstreams.forward(route, head, RELAY);
      t.equal(answer.headers["content-length"], length, "the upstream's length");
      // A stream: Fastify sends a Buffer's own length (0) as a HEAD answer's Content-Length.
      const body = answer.body as Readable;
      t.equal(Buffer.isBuffer(body), false, `${length}: a stream`);
      const chunks: Buffer[] = [];
      for await (const chunk of body) chunks.push(chunk as Buffer);
      t.same(chunks, [], `${length}: with nothing in it`);
    }
  },
);

t.test(
  "a streamed body that fails before its first byte fails the forward: 504 stalled, 502 reset",
  async (t) => {
    const head =
      "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nSet-Cookie: s=1\r\n" +
      "Transfer-Encoding: chunked\r\n\r\n";
    // First the head, then nothing; then the head, then the connection is gone.
    let resetNext = false;
    const base = await rawUpstream(
      t,
      () => head,
      (socket) => {
        if (resetNext) setTimeout(() => socket.destroy(), 20);
      },
    );
    const { route, upstreams } = legacy(t, base, 200);
    const stalled = await forwardFailure(upstreams.forward(route, PLAIN_GET, RELAY));
    t.equal(stalled.code, "TURNOUT_ERR_UPSTREAM_TIMEOUT");
    t.equal(stalled.status, 504);
    resetNext = true;
    const reset = await forwardFailure(upstreams.forward(route, PLAIN_GET, RELAY));
    t.equal(reset.code, "TURNOUT_ERR_UPSTREAM_RESET");
    t.equal(reset.status, 502);
  },
);

t.test(
  "a streamed body is handed on once its first chunk is in, or as no body when it ends empty",
  async (t) => {
    const base = await rawUpstream(
      t,
      (path) =>
        `HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n${path === "/empty" ? "0\r\n\r\n" : "5\r\n[1,2,\r\n"}`,
      (socket) => setTimeout(() => socket.write("3\r\n3]\n\r\n0\r\n\r\n"), 50),
    );
    const { route, upstreams } = legacy(t, base);
    const begun = await upstreams.forward(route, PLAIN_GET, RELAY);
    const chunks: Buffer[] = [];
    for await (const chunk of begun.body as Readable) chunks.push(chunk as Buffer);
    t.equal(Buffer.concat(chunks).toString(), "[1,2,3]\n", "no byte lost to the wait");
    const empty = await upstreams.forward(route, { ...PLAIN_GET, url: "/empty" }, RELAY);
    t.equal(empty.status, 200);
    t.ok(Buffer.isBuffer(empty.body) && empty.body.length === 0, "no body");
  },
);
