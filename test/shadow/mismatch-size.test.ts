/**
 * A kept mismatch is bounded whatever the bodies hold: long keys and deep
 * nesting make long diff paths, and a client makes the request path as long
 * as it likes.
 */
import t from "tap";
import { diffJson, MAX_DIFFS, MAX_PATH_CHARS } from "../../src/shadow/json-diff.js";
import { MismatchLog } from "../../src/shadow/mismatch-log.js";

const LONG_KEY = "k".repeat(100_000);

t.test(
  "a long key is cut in every diff path under it, which still ends with the field",
  async (t) => {
    const body = (value: number) => ({
      [LONG_KEY]: Object.fromEntries(Array.from({ length: MAX_DIFFS }, (_, i) => [`f${i}`, value])),
    });
    const { diffs } = diffJson(body(1), body(2));
    t.equal(diffs.length, MAX_DIFFS);
    for (const [i, diff] of diffs.entries()) {
      t.ok(diff.path.length <= MAX_PATH_CHARS, `path of ${diff.path.length} characters`);
      t.ok(diff.path.startsWith('$["kkk'), diff.path.slice(0, 20));
      t.ok(diff.path.endsWith(`.f${i}`), "names the field");
    }
  },
);

t.test("a deeply nested path keeps its start and its end", async (t) => {
  let a: unknown = 1;
  let b: unknown = 2;
  for (let i = 0; i < 500; i++) {
    a = { [`level${i}`]: a };
    b = { [`level${i}`]: b };
  }
  const [diff] = diffJson(a, b).diffs;
  t.ok(diff !== undefined && diff.path.length <= MAX_PATH_CHARS, `${diff?.path.length} characters`);
  t.match(diff?.path, /^\$\.level499\.level498\..*….*\.level1\.level0$/);
});

t.test("a kept mismatch entry is bounded, its request path included", async (t) => {
  const log = new MismatchLog();
  const body = (value: number) => ({
    [LONG_KEY]: Object.fromEntries(Array.from({ length: 50 }, (_, i) => [`f${i}`, value])),
  });
  const path = `/v1/orders/${"o".repeat(10_000)}`;
  log.record("orders.get", {
    requestId: "r-1",
    method: "GET",
    path,
    primary: "nats",
    diffs: diffJson(body(1), body(2)).diffs,
  });
  const [entry] = log.list("orders.get");
  t.ok(entry !== undefined && entry.path.length <= MAX_PATH_CHARS, "request path cut");
  t.ok(entry?.path.startsWith("/v1/orders/ooo"));
  const size = JSON.stringify(entry).length;
  t.ok(size < 10_000, `entry of ${size} characters for two 100 KB bodies`);
});
