import t from "tap";
import { DEFAULT_MISMATCHES_KEPT, MismatchLog } from "../../src/shadow/mismatch-log.js";

const entry = (requestId: string) => ({
  requestId,
  method: "GET",
  path: "/v1/users/1",
  primary: "legacy" as const,
  diffs: [{ path: "$.email", kind: "changed" as const, primary: "a", mirror: "b" }],
});

t.test("list returns a route's mismatches newest first", async (t) => {
  const log = new MismatchLog();
  for (const id of ["r1", "r2", "r3"]) log.record("users.get", entry(id));
  t.same(
    log.list("users.get").map((e) => e.requestId),
    ["r3", "r2", "r1"],
  );
});

t.test("the ring keeps only the last N, dropping the oldest", async (t) => {
  const log = new MismatchLog(3);
  for (let i = 1; i <= 8; i++) log.record("users.get", entry(`r${i}`));
  t.same(
    log.list("users.get").map((e) => e.requestId),
    ["r8", "r7", "r6"],
  );
});

t.test("the default keeps 50 per route", async (t) => {
  const log = new MismatchLog();
  for (let i = 0; i < 120; i++) log.record("users.get", entry(`r${i}`));
  t.equal(DEFAULT_MISMATCHES_KEPT, 50);
  t.equal(log.list("users.get").length, 50);
  t.equal(log.list("users.get")[0]?.requestId, "r119");
  t.equal(log.list("users.get")[49]?.requestId, "r70");
});

t.test("routes are kept apart, and an unknown route lists nothing", async (t) => {
  const log = new MismatchLog(2);
  log.record("users.get", entry("u1"));
  log.record("orders.get", entry("o1"));
  log.record("orders.get", entry("o2"));
  log.record("orders.get", entry("o3"));
  t.same(
    log.list("users.get").map((e) => e.requestId),
    ["u1"],
  );
  t.same(
    log.list("orders.get").map((e) => e.requestId),
    ["o3", "o2"],
  );
  t.same(log.list("nope"), []);
});

t.test("an entry carries its time as ISO 8601 and the caller's fields", async (t) => {
  const log = new MismatchLog();
  log.record("users.get", entry("r1"), new Date(Date.UTC(2025, 0, 2, 3, 4, 5)));
  t.same(log.list("users.get"), [{ at: "2025-01-02T03:04:05.000Z", ...entry("r1") }]);
});

t.test("clear forgets one route or all", async (t) => {
  const log = new MismatchLog();
  log.record("a", entry("1"));
  log.record("b", entry("2"));
  log.clear("a");
  t.same(log.list("a"), []);
  t.equal(log.list("b").length, 1);
  log.clear();
  t.same(log.list("b"), []);
});

t.test("a capacity below 1 is refused", async (t) => {
  t.throws(() => new MismatchLog(0), RangeError);
  t.throws(() => new MismatchLog(1.5), RangeError);
});
