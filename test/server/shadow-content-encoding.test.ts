/**
 * A legacy upstream that compresses its answers: the client gets the bytes as
 * sent, while the comparison holds the decoded body against NATS's JSON (and
 * a legacy mirror asks for an uncompressed one).
 */
import type { ServerResponse } from "node:http";
import { brotliCompressSync, deflateRawSync, gunzipSync, gzipSync } from "node:zlib";
import t, { type Test } from "tap";
import { request } from "undici";
import { type SeenByLegacy, startLegacyServer } from "../helpers/legacy-server.js";
import { usersGetRoute, usersLegacyRoute } from "../helpers/route-yaml.js";
import { usersGetWorker } from "../helpers/routes-and-workers.js";
import { startStack, writeRoutes } from "../helpers/stack.js";

const USER = JSON.stringify({ id: "u1", region: "eu" });

const ENCODERS: Record<string, (body: Buffer) => Buffer> = {
  gzip: gzipSync,
  br: brotliCompressSync,
  // Raw deflate, as some servers send it in place of the zlib format HTTP names.
  deflate: deflateRawSync,
};

/** What legacy sends, before its coding; a test may swap in a whole answer of its own. */
let legacyBody = Buffer.from(USER);
let corrupt = false;

/** Compresses with the first coding the request accepts, as a typical upstream does. */
function answerCompressed(request: SeenByLegacy, res: ServerResponse): void {
  const accepted = String(request.headers["accept-encoding"] ?? "").split(/\s*,\s*/);
  const coding = accepted.find((name) => name in ENCODERS);
  const body = corrupt
    ? Buffer.from("not gzip at all")
    : coding
      ? ENCODERS[coding]!(legacyBody)
      : legacyBody;
  const headers: Record<string, string | number> = {
    "content-type": "application/json",
    "content-length": body.length,
  };
  if (coding) headers["content-encoding"] = coding;
  res.writeHead(200, headers);
  res.end(body);
}

const legacy = await startLegacyServer(answerCompressed);
t.teardown(() => legacy.close());

const ROUTES =
  usersGetRoute({ legacy: "users", cutover: "{ nats: 0, shadow: 0 }" }) +
  usersLegacyRoute({ cutover: "{ nats: 0, shadow: 0 }" });
const stack = await startStack(t, writeRoutes(ROUTES, `legacy:\n  users: ${legacy.url}\n`));
const worker = usersGetWorker(stack.nc, stack.root, () => ({ id: "u1", region: "eu" }));
t.teardown(() => worker.stop());
await stack.nc.flush();

function shadow(t: Test, route: string, nats: number): void {
  stack.gateway.cutover.set(route, { nats, shadow: 100 });
  t.teardown(() => {
    stack.gateway.cutover.set(route, { nats: 0, shadow: 0 });
    legacyBody = Buffer.from(USER);
    corrupt = false;
  });
}

async function counter(name: string, route: string, label: string): Promise<number> {
  const text = await stack.gateway.metrics.registry.metrics();
  const line = new RegExp(`^${name}\\{route="${route}",${label}\\} (\\d+)$`, "m");
  return Number(line.exec(text)?.[1] ?? 0);
}

/** GET without decoding, accepting `coding`; resolves once the mirror is compared or skipped. */
async function get(path: string, coding: string) {
  const res = await request(`${stack.gateway.url}${path}`, {
    headers: { "accept-encoding": coding },
  });
  const body = Buffer.from(await res.body.arrayBuffer());
  const until = Date.now() + 5000;
  while (stack.gateway.mirrors.inFlight > 0 && Date.now() < until) {
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  return { status: res.statusCode, encoding: res.headers["content-encoding"], body };
}

t.test("a legacy mirror asks for an uncompressed answer, which matches NATS's JSON", async (t) => {
  shadow(t, "users.get", 100);
  const before = await counter("turnout_shadow_total", "users.get", 'result="match"');
  const seen = legacy.seen.length;
  const res = await get("/v1/regions/eu/users/u1", "gzip, deflate, br");
  t.equal(res.status, 200);
  t.equal(legacy.seen.length, seen + 1, "the mirror reached legacy");
  t.equal(legacy.seen.at(-1)?.headers["accept-encoding"], "identity");
  t.equal(await counter("turnout_shadow_total", "users.get", 'result="match"'), before + 1);
});

for (const coding of Object.keys(ENCODERS)) {
  t.test(
    `a ${coding} legacy answer reaches the client as sent and is compared decoded`,
    async (t) => {
      shadow(t, "users.legacy", 0);
      const before = await counter("turnout_shadow_total", "users.legacy", 'result="match"');
      const res = await get("/v1/old/eu/users/u1", coding);
      t.equal(res.status, 200);
      t.equal(res.encoding, coding, "the client gets the upstream's coding");
      t.same(res.body, ENCODERS[coding]!(Buffer.from(USER)), "byte for byte");
      t.equal(await counter("turnout_shadow_total", "users.legacy", 'result="match"'), before + 1);
    },
  );
}

t.test("a legacy answer whose coding cannot be undone is skipped as undecodable", async (t) => {
  shadow(t, "users.legacy", 0);
  corrupt = true;
  const skipped = () =>
    counter("turnout_shadow_skipped_total", "users.legacy", 'reason="undecodable"');
  const mismatches = () => counter("turnout_shadow_total", "users.legacy", 'result="mismatch"');
  const before = { skipped: await skipped(), mismatches: await mismatches() };
  const res = await get("/v1/old/eu/users/u1", "gzip");
  t.equal(res.body.toString(), "not gzip at all", "the client still gets what was sent");
  t.equal(await skipped(), before.skipped + 1);
  t.equal(await mismatches(), before.mismatches, "not compared");
});

t.test(
  "a compressed legacy answer that inflates past the comparison cap is skipped as body_too_large",
  async (t) => {
    shadow(t, "users.legacy", 0);
    // About 1 KiB gzipped, 1 MiB once inflated.
    legacyBody = Buffer.from(JSON.stringify({ id: "u1", display_name: "x".repeat(1024 * 1024) }));
    const skipped = () =>
      counter("turnout_shadow_skipped_total", "users.legacy", 'reason="body_too_large"');
    const before = await skipped();
    const res = await get("/v1/old/eu/users/u1", "gzip");
    t.equal(gunzipSync(res.body).length, legacyBody.length, "the client gets it whole");
    t.equal(await skipped(), before + 1);
  },
);
