/** Module hooks of register.mjs; they run on Node's hooks thread, where blocking is fine. */
import { existsSync, writeFileSync } from "node:fs";
import { join } from "node:path";

let hold = { suffix: undefined, dir: undefined };

export function initialize(data) {
  hold = data;
}

export async function load(url, context, nextLoad) {
  if (hold.suffix !== undefined && hold.dir !== undefined && url.endsWith(hold.suffix)) {
    writeFileSync(join(hold.dir, "held"), url);
    const wait = new Int32Array(new SharedArrayBuffer(4));
    const deadline = Date.now() + 20_000;
    while (!existsSync(join(hold.dir, "release")) && Date.now() < deadline) {
      Atomics.wait(wait, 0, 0, 10);
    }
  }
  return nextLoad(url, context);
}
