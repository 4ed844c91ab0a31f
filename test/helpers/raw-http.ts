/**
 * One HTTP/1.1 exchange over a raw socket, for tests that look at the answer
 * exactly as sent: repeated header lines, their order and bytes, framing.
 */
import net from "node:net";

export interface RawReply {
  readonly raw: Buffer;
  /** The status line and header lines, names lowercased. */
  readonly head: string[];
  /** What follows the head, as latin1 text. */
  readonly body: string;
}

/** Sends `method target` on a new connection; the server closes it after its answer. */
export function rawExchange(port: number, method: string, target: string): Promise<RawReply> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, "127.0.0.1", () =>
      socket.write(`${method} ${target} HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n`),
    );
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => socket.destroy(new Error("no answer within 5 s")), 5000);
    socket.on("data", (chunk: Buffer) => chunks.push(chunk));
    socket.once("error", reject);
    socket.once("close", () => {
      clearTimeout(timer);
      const raw = Buffer.concat(chunks);
      const text = raw.toString("latin1");
      const end = text.indexOf("\r\n\r\n");
      const lines = text.slice(0, end).split("\r\n");
      resolve({
        raw,
        head: lines.map((line, i) => (i === 0 ? line : lowerName(line))),
        body: text.slice(end + 4),
      });
    });
  });
}

function lowerName(line: string): string {
  const colon = line.indexOf(":");
  return line.slice(0, colon).toLowerCase() + line.slice(colon);
}
