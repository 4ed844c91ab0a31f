/**
 * Legacy answers reach the client as the upstream sent them, through the
 * whole gateway: bodiless answers keep their headers, Fastify adds no header
 * of its own, header bytes are not re-encoded; and the upstream only ever
 * gets an origin-form path. Raw sockets on both sides, to see the bytes.
 */
import net from "node:net";
import t from "tap";
import { listenOnLoopback } from "../helpers/legacy-server.js";
import { rawExchange } from "../helpers/raw-http.js";
import { usersLegacyRoute } from "../helpers/route-yaml.js";
import { startStack, writeRoutes } from "../helpers/stack.js";

const UTF8_NAME = Buffer.from('attachment; filename="naïve.txt"', "utf8");

/** Each answer's head and body by the last path segment; a HEAD gets the head only. */
const ANSWERS: Record<string, [string | Buffer, string]> = {
  s304: ['HTTP/1.1 304 Not Modified\r\nETag: "v1"\r\nContent-Length: 100000\r\n', ""],
  s304small: ['HTTP/1.1 304 Not Modified\r\nETag: "v1"\r\nContent-Length: 10\r\n', ""],
  text: [
    "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5000\r\n",
    "a".repeat(5000),
  ],
  redirect: ["HTTP/1.1 302 Found\r\nLocation: /elsewhere\r\nContent-Length: 0\r\n", ""],
  created: ["HTTP/1.1 201 Created\r\nLocation: /v1/x\r\nContent-Length: 0\r\n", ""],
  untyped: ["HTTP/1.1 200 OK\r\nContent-Length: 2\r\n", "hi"],
  attachment: [
    Buffer.concat([
      Buffer.from("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n"),
      Buffer.from("Content-Disposition: "),
      UTF8_NAME,
      Buffer.from("\r\n"),
    ]),
    "ok",
  ],
  plain: ["HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n", "{}"],
};

const requestLines: string[] = [];
const upstream = net.createServer((socket) => {
  socket.on("error", () => {});
  socket.on("data", (chunk: Buffer) => {
    // GETs and HEADs only: a request is its head.
    for (const head of chunk.toString("latin1").split("\r\n\r\n").slice(0, -1)) {
      const line = head.split("\r\n")[0] ?? "";
      requestLines.push(line);
      const id = line.split(" ")[1]?.split("?")[0]?.split("/").at(-1) ?? "";
      const [answerHead, body] = ANSWERS[id] ?? [];
      if (answerHead === undefined) return void socket.destroy();
      socket.write(answerHead);
      socket.write(line.startsWith("HEAD ") ? "\r\n" : `\r\n${body}`);
    }
  });
});
const upstreamUrl = await listenOnLoopback(t, upstream);

// A base path on the upstream URL: the client's path goes after it.
const legacy = `legacy:\n  users: ${upstreamUrl}/base\n`;
const stack = await startStack(t, writeRoutes(usersLegacyRoute(), legacy));
const port = Number(new URL(stack.gateway.url).port);

/** Sends `method target`; the gateway closes the connection after its answer. */
const exchange = (method: string, target: string) => rawExchange(port, method, target);

const path = (id: string) => `/v1/old/eu/users/${id}`;

t.test("a 304 with a Content-Length passes through unchanged: its headers, no body", async (t) => {
  const cases = [
    ["s304", "100000"],
    ["s304small", "10"],
  ] as const;
  for (const [id, length] of cases) {
    const reply = await exchange("GET", path(id));
    t.equal(reply.head[0], "HTTP/1.1 304 Not Modified", id);
    t.ok(reply.head.includes('etag: "v1"'), `${id}: etag`);
    t.ok(reply.head.includes(`content-length: ${length}`), `${id}: the upstream's length`);
    t.ok(reply.raw.toString("latin1").endsWith("\r\n\r\n"), `${id}: no body`);
  }
});

t.test("a HEAD answer keeps the upstream's Content-Length", async (t) => {
  const reply = await exchange("HEAD", path("text"));
  t.equal(reply.head[0], "HTTP/1.1 200 OK");
  t.ok(reply.head.includes("content-length: 5000"), reply.head.join(" | "));
  t.ok(reply.raw.toString("latin1").endsWith("\r\n\r\n"), "no body");
});

t.test("no Content-Type is added to an answer that has none", async (t) => {
  for (const id of ["redirect", "created", "untyped"]) {
    const reply = await exchange("GET", path(id));
    t.match(reply.head[0], /^HTTP\/1\.1 (302|201|200) /, id);
    t.notOk(
      reply.head.some((line) => line.startsWith("content-type:")),
      `${id}: ${reply.head.join(" | ")}`,
    );
  }
  const untyped = await exchange("GET", path("untyped"));
  t.ok(untyped.raw.toString("latin1").endsWith("\r\n\r\nhi"), "the body as sent");
});

t.test("UTF-8 bytes in a Content-Disposition reach the client unchanged", async (t) => {
  const reply = await exchange("GET", path("attachment"));
  t.equal(reply.head[0], "HTTP/1.1 200 OK");
  const sent = Buffer.concat([
    Buffer.from("content-disposition: "),
    UTF8_NAME,
    Buffer.from("\r\n"),
  ]);
  t.ok(reply.raw.includes(sent), "byte for byte");
});

t.test("an absolute-form request reaches legacy as its path and query only", async (t) => {
  const reply = await exchange("GET", `http://attacker.example${path("plain")}?q=1`);
  t.equal(reply.head[0], "HTTP/1.1 200 OK");
  t.equal(requestLines.at(-1), `GET /base${path("plain")}?q=1 HTTP/1.1`);
});
