/**
 * What the image's runtime stage holds, run for real without a container
 * engine: a folder with package.json, production dependencies only (`npm ci
 * --omit=dev`, what the build stage's `npm prune --omit=dev` leaves), the built
 * `dist/`, `proto/` and `routes.yaml`. The three roles compose.yaml gives the
 * image (gateway, example worker, example legacy service) start from it, and a
 * request goes through the gateway to the worker. A runtime import of a
 * devDependency would fail here, not in production.
 */
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { once } from "node:events";
import { copyFileSync, cpSync, existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import t, { type Test } from "tap";
import { freePort, startNatsServer } from "../../src/devtools/nats-server.js";
import { waitUntil } from "../helpers/serve-process.js";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../..");

/** The runtime stage's files, in a fresh folder; undefined (with a failure) when npm fails. */
function runtimeFolder(t: Test): string | undefined {
  const dir = mkdtempSync(join(tmpdir(), "turnout-image-"));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  for (const file of ["package.json", "package-lock.json", "routes.yaml"]) {
    copyFileSync(join(ROOT, file), join(dir, file));
  }
  cpSync(join(ROOT, "proto"), join(dir, "proto"), { recursive: true });
  cpSync(join(ROOT, "dist"), join(dir, "dist"), { recursive: true });
  const install = spawnSync(
    "npm",
    ["ci", "--omit=dev", "--ignore-scripts", "--no-audit", "--no-fund", "--prefer-offline"],
    { cwd: dir, encoding: "utf8", timeout: 100_000 },
  );
  if (install.status !== 0) {
    t.fail(`npm ci --omit=dev failed:\n${install.stdout}${install.stderr}`);
    return undefined;
  }
  return dir;
}

/** A process from the runtime folder, as the image would start it; output kept. */
function start(t: Test, dir: string, args: string[], env: Record<string, string> = {}) {
  const child = spawn(process.execPath, args, {
    cwd: dir,
    env: { PATH: process.env.PATH ?? "", NODE_ENV: "production", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const output = { text: "" };
  child.stdout?.on("data", (chunk) => (output.text += chunk));
  child.stderr?.on("data", (chunk) => (output.text += chunk));
  t.teardown(() => {
    if (child.exitCode === null) child.kill("SIGKILL");
  });
  return { child, output };
}

async function answers(url: string): Promise<boolean> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(1000) });
    await res.arrayBuffer();
    return res.ok;
  } catch {
    return false;
  }
}

async function stopped(child: ChildProcess): Promise<number | null> {
  const exit = once(child, "exit");
  child.kill("SIGTERM");
  const [code] = await exit;
  return code as number | null;
}

t.test("the runtime stage's files run the gateway, worker and legacy service", async (t) => {
  t.ok(existsSync(join(ROOT, "dist/src/cli/main.js")), "built (npm test builds first)");
  const dir = runtimeFolder(t);
  if (dir === undefined) return;
  t.notOk(existsSync(join(dir, "node_modules/typescript")), "no devDependency installed");

  const nats = await startNatsServer({ jetstream: true });
  t.teardown(() => nats.stop());
  const [port, adminPort, usersPort, ordersPort] = await Promise.all([
    freePort(),
    freePort(),
    freePort(),
    freePort(),
  ]);
  const legacy = start(t, dir, [
    "dist/examples/legacy.js",
    "--host",
    "127.0.0.1",
    "--users-port",
    String(usersPort),
    "--orders-port",
    String(ordersPort),
  ]);
  const worker = start(t, dir, ["dist/examples/worker.js"], { TURNOUT_NATS_URL: nats.url });
  const gateway = start(t, dir, [
    "dist/src/cli/main.js",
    "serve",
    "--config",
    "routes.yaml",
    "--nats-url",
    nats.url,
    "--host",
    "127.0.0.1",
    "--port",
    String(port),
    "--admin-port",
    String(adminPort),
  ]);

  const admin = `http://127.0.0.1:${adminPort}`;
  await waitUntil(() => answers(`${admin}/readyz`), 20_000).catch(() => {});
  t.ok(await answers(`${admin}/readyz`), `gateway ready; its output:\n${gateway.output.text}`);
  t.ok(await answers(`${admin}/openapi.json`), "serves /openapi.json");
  t.ok(await answers(`http://127.0.0.1:${usersPort}/v1/regions/eu-west/users/u-1001`), "legacy");

  // users.list is cut over (nats: 100): the answer comes from the example worker.
  let listed: Response | undefined;
  await waitUntil(async () => {
    listed = await fetch(`http://127.0.0.1:${port}/v1/regions/eu-west/users`);
    return listed.status === 200;
  }, 10_000).catch(() => {});
  t.equal(listed?.status, 200, `through NATS; worker output:\n${worker.output.text}`);
  const body = (await listed?.json()) as { users?: unknown[] } | undefined;
  t.ok(Array.isArray(body?.users) && body.users.length > 0, "the worker's users");

  t.equal(await stopped(gateway.child), 0, "the gateway drains and exits 0");
  await stopped(worker.child);
  await stopped(legacy.child);
});
