/**
 * A legacy answer's Content-Type reaches the client as the upstream sent it,
 * every line of it, whatever the framing: read whole (small, with a
 * Content-Length), chunked, or streamed past 64 KiB. Fastify replaces a value
 * it cannot parse on a Buffer body with application/octet-stream; the
 * streamed path never did. Raw sockets on both sides, to see the header lines.
 */
import net from "node:net";
import t from "tap";
import { listenOnLoopback } from "../helpers/legacy-server.js";
import { type RawReply, rawExchange } from "../helpers/raw-http.js";
import { usersLegacyRoute } from "../helpers/route-yaml.js";
import { startStack, writeRoutes } from "../helpers/stack.js";

/** The Content-Type lines each answer carries, by the id's first part. */
const TYPES: Record<string, string[]> = {
  json: ["json"],
  text: ["text"],
  star: ["*"],
  empty: [""],
  space: ["application/ json"],
  twice: ["application/json", "application/json"],
  valid: ["application/json; charset=utf-8"],
};
const BIG = "x".repeat(70 * 1024);

/** `<type>-<framing>`: `length` (read whole), `chunked`, or `big` (over 64 KiB, streamed). */
function answerFor(id: string): string | undefined {
  const [type = "", framing] = id.split("-");
  const lines = TYPES[type]?.map((value) => `Content-Type: ${value}\r\n`).join("");
  if (lines === undefined) return undefined;
  const head = `HTTP/1.1 200 OK\r\n${lines}`;
  if (framing === "chunked") return `${head}Transfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n`;
  if (framing === "big") return `${head}Content-Length: ${BIG.length}\r\n\r\n${BIG}`;
  return `${head}Content-Length: 2\r\n\r\n{}`;
}

const upstream = net.createServer((socket) => {
  socket.on("error", () => {});
  socket.on("data", (chunk: Buffer) => {
    for (const head of chunk.toString("latin1").split("\r\n\r\n").slice(0, -1)) {
      const target = head.split("\r\n")[0]?.split(" ")[1] ?? "";
      const answer = answerFor(target.split("/").at(-1) ?? "");
      if (answer === undefined) return void socket.destroy();
      socket.write(answer);
    }
  });
});
const upstreamUrl = await listenOnLoopback(t, upstream);
const stack = await startStack(
  t,
  writeRoutes(usersLegacyRoute(), `legacy:\n  users: ${upstreamUrl}\n`),
);
const port = Number(new URL(stack.gateway.url).port);

const get = (id: string) => rawExchange(port, "GET", `/v1/old/eu/users/${id}`);

const contentTypes = (reply: RawReply) =>
  reply.head
    .filter((line) => line.startsWith("content-type:"))
    .map((line) => line.slice(13).trim());

t.test(
  "a Content-Type Fastify cannot parse reaches the client as sent when the answer is read whole, as when streamed",
  async (t) => {
    for (const [type, sent] of Object.entries(TYPES)) {
      for (const framing of ["length", "chunked", "big"]) {
        const reply = await get(`${type}-${framing}`);
        t.equal(reply.head[0], "HTTP/1.1 200 OK", `${type}-${framing}`);
        t.same(contentTypes(reply), sent, `${type}-${framing}: every Content-Type line as sent`);
        if (framing === "length") {
          t.ok(reply.head.includes("content-length: 2"), `${type}: ${reply.head.join(" | ")}`);
          t.equal(reply.body, "{}", `${type}: the body as sent`);
        }
        if (framing === "big") {
          t.ok(reply.head.includes(`content-length: ${BIG.length}`), `${type}-big: its length`);
          t.equal(reply.body.length, BIG.length, `${type}-big: the whole body`);
        }
      }
    }
  },
);
