import t from "tap";
import { type DeadlineEntry, DeadlineQueues } from "../../../src/backends/nats/deadlines.js";

interface Entry extends DeadlineEntry {
  name: string;
}

function entry(name: string): Entry {
  return { name, deadline: 0, dlPrev: undefined, dlNext: undefined, dlList: undefined };
}

function collect(): {
  expired: Array<{ name: string; at: number }>;
  queues: DeadlineQueues<Entry>;
} {
  const t0 = performance.now();
  const expired: Array<{ name: string; at: number }> = [];
  const queues = new DeadlineQueues<Entry>((e) =>
    expired.push({ name: e.name, at: performance.now() - t0 }),
  );
  return { expired, queues };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

t.test("a shorter timeout added after a longer one still expires first, on time", async (t) => {
  const { expired, queues } = collect();
  queues.add(entry("long"), 400);
  queues.add(entry("short"), 30);
  await sleep(500);
  t.same(
    expired.map((e) => e.name),
    ["short", "long"],
  );
  t.ok(expired[0]!.at >= 29 && expired[0]!.at < 400, `short expired at ${expired[0]?.at}`);
  t.ok(expired[1]!.at >= 399, `long expired at ${expired[1]?.at}`);
});

t.test("removed entries never expire, wherever they sit in their list", async (t) => {
  const { expired, queues } = collect();
  const [a, b, c, d] = ["a", "b", "c", "d"].map(entry) as [Entry, Entry, Entry, Entry];
  for (const e of [a, b, c, d]) queues.add(e, 40);
  queues.remove(a); // head
  queues.remove(c); // middle
  queues.remove(d); // tail
  queues.remove(d); // twice: harmless
  await sleep(100);
  t.same(
    expired.map((e) => e.name),
    ["b"],
  );
});

t.test("a list emptied by removals takes new entries again", async (t) => {
  const { expired, queues } = collect();
  const first = entry("first");
  queues.add(first, 30);
  queues.remove(first);
  queues.add(entry("second"), 30);
  await sleep(90);
  t.same(
    expired.map((e) => e.name),
    ["second"],
  );
});

t.test("entries of one timeout expire in the order they were added", async (t) => {
  const { expired, queues } = collect();
  for (let i = 0; i < 50; i++) queues.add(entry(String(i)), 20);
  await sleep(80);
  t.same(
    expired.map((e) => e.name),
    Array.from({ length: 50 }, (_, i) => String(i)),
  );
});

t.test("clear() forgets every entry: nothing expires afterwards", async (t) => {
  const { expired, queues } = collect();
  queues.add(entry("x"), 20);
  queues.clear();
  await sleep(60);
  t.same(expired, []);
});
