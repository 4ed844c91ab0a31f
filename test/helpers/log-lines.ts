/** A gateway logger at info whose JSON lines the test reads back, one string each. */
import { Writable } from "node:stream";
import { loggerOptions } from "../../src/cli/serve.js";

export function infoLogLines() {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString().split("\n")) if (line !== "") lines.push(line);
      done();
    },
  });
  return { logger: { ...loggerOptions("info"), stream }, lines };
}
