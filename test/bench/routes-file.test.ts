import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import t from "tap";
import { repoRoot } from "../../bench/lib/processes.js";
import { rewriteRoutes, writeRoutesFor } from "../../bench/lib/routes-file.js";
import { loadConfig } from "../../src/config/load.js";

const root = repoRoot();

t.test("rewriteRoutes resolves protos and sets the upstream, keeping the rest", async (t) => {
  const text = [
    "# a comment that stays",
    "version: 1",
    "protos: [../proto, /abs/protos]",
    "legacy:",
    "  users: http://127.0.0.1:8081 # placeholder",
    "routes: []",
    "",
  ].join("\n");
  const out = rewriteRoutes(text, "/repo/bench", { users: "http://127.0.0.1:40000" });
  t.match(out, /# a comment that stays/);
  t.match(out, /- \/repo\/proto\n/);
  t.match(out, /- \/abs\/protos\n/);
  t.match(out, /users: http:\/\/127\.0\.0\.1:40000/);
  t.notMatch(out, /8081/);
  t.throws(
    () => rewriteRoutes(text, "/repo/bench", { orders: "http://x" }),
    /legacy upstream "orders" is not in the file's legacy: map/,
  );
  t.throws(() => rewriteRoutes("legacy: [", "/", {}), /not YAML/);
});

t.test("every bench route table loads, copied for a real upstream", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "turnout-bench-routes-"));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const url = "http://127.0.0.1:45678";
  const expected = {
    "bench/routes-legacy.yaml": { nats: 0, shadow: 0, sticky: "random" },
    "bench/routes-split.yaml": { nats: 100, shadow: 0, sticky: "header" },
    "bench/routes-shadow.yaml": { nats: 100, shadow: 100, sticky: "header" },
  };
  for (const [file, cutover] of Object.entries(expected)) {
    const config = loadConfig(writeRoutesFor(root, file, { users: url }, dir));
    const route = config.routes[0]!;
    t.equal(config.routes.length, 1, file);
    t.equal(route.legacy, url, `${file}: upstream replaced`);
    t.equal(route.path, "/v1/regions/:region/users", `${file}: same path as routes.yaml`);
    t.equal(route.subject, "bench.users.create", file);
    t.equal(route.cutover.nats, cutover.nats, `${file}: nats`);
    t.equal(route.cutover.shadow, cutover.shadow, `${file}: shadow`);
    t.equal(route.cutover.sticky.kind, cutover.sticky, `${file}: sticky`);
  }
  const plain = loadConfig(join(root, "bench/routes.yaml")).routes[0]!;
  t.equal(plain.legacy, undefined, "gateway-nats's route has no legacy upstream");
  t.equal(plain.cutover.nats, 100);
});
