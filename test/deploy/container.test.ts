/**
 * Dockerfile, .dockerignore and deploy/compose.yaml, checked without a container
 * engine: every path they name exists in the repository, the services reference
 * each other consistently, and the image runs the build output that
 * `npm run build` really produces.
 */
import { existsSync, readFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import t from "tap";
import { parse } from "yaml";
import { tempDir } from "../helpers/temp-dir.js";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const DEPLOY = resolve(ROOT, "deploy");

interface Build {
  context?: string;
  dockerfile?: string;
}
interface Service {
  image?: string;
  build?: string | Build;
  command?: string[] | string;
  entrypoint?: string[] | string;
  environment?: Record<string, string> | string[];
  volumes?: string[];
  ports?: string[];
  depends_on?: string[] | Record<string, unknown>;
  healthcheck?: { disable?: boolean };
}
interface Compose {
  services: Record<string, Service>;
  volumes?: Record<string, unknown>;
}

const compose = parse(readFileSync(resolve(DEPLOY, "compose.yaml"), "utf8"), {
  merge: true,
}) as Compose;
const services = compose.services;
const dockerfile = readFileSync(resolve(ROOT, "Dockerfile"), "utf8");
// Continuation lines joined: one instruction per entry.
const instructions = dockerfile
  .replace(/\\\n/g, " ")
  .split("\n")
  .map((line) => line.trim())
  .filter((line) => line !== "" && !line.startsWith("#"));

function envOf(service: Service): Record<string, string> {
  const env = service.environment ?? {};
  if (!Array.isArray(env)) return env;
  return Object.fromEntries(env.map((kv) => kv.split(/=(.*)/s, 2) as [string, string]));
}
function dependsOn(service: Service): string[] {
  const deps = service.depends_on ?? [];
  return Array.isArray(deps) ? deps : Object.keys(deps);
}
function stages(): Array<{ from: string; name: string | undefined; body: string[] }> {
  const out: Array<{ from: string; name: string | undefined; body: string[] }> = [];
  for (const line of instructions) {
    const from = /^FROM\s+(\S+)(?:\s+AS\s+(\S+))?/i.exec(line);
    if (from) out.push({ from: from[1] as string, name: from[2], body: [] });
    else out.at(-1)?.body.push(line);
  }
  return out;
}

t.test(
  "the Dockerfile: two stages, non-root, health check, entrypoint, a table TURNOUT_CONFIG can replace",
  async (t) => {
    const [build, runtime, ...more] = stages();
    t.equal(more.length, 0, "exactly two stages");
    t.equal(build?.from, "node:20-bookworm-slim");
    t.equal(build?.name, "build");
    t.equal(runtime?.from, "node:20-bookworm-slim");
    const runs = (build?.body ?? []).filter((line) => line.startsWith("RUN "));
    t.same(runs, ["RUN npm ci", "RUN npm run build", "RUN npm prune --omit=dev"]);

    const body = runtime?.body ?? [];
    const user = body.filter((line) => line.startsWith("USER "));
    t.equal(user.length, 1, "one USER");
    t.notMatch(user[0], /^USER\s+(root|0)(:|$)/, "the runtime user is not root");
    t.ok(
      body.some((line) => line.startsWith("RUN ") && line.includes("useradd")),
      "the user is created",
    );
    t.ok(body.includes("EXPOSE 8080 9090"));
    const health = body.find((line) => line.startsWith("HEALTHCHECK "));
    // `turnout healthcheck` reads the same TURNOUT_* settings as serve: port, host, HTTPS.
    t.match(health, /CMD \["node", "dist\/src\/cli\/main\.js", "healthcheck"\]$/);
    t.ok(body.includes('ENTRYPOINT ["node", "dist/src/cli/main.js"]'));
    // A --config in CMD would beat TURNOUT_CONFIG (flags beat the environment), silently.
    t.ok(body.includes('CMD ["serve"]'), "serve without --config");
    t.ok(body.includes("ENV NODE_ENV=production TURNOUT_CONFIG=/app/routes.yaml"));

    // The runtime stage holds only the build output, production modules, protos,
    // the route table and package.json.
    const copies = body.filter((line) => line.startsWith("COPY "));
    const targets = copies.map((line) => line.split(/\s+/).at(-1)?.replace(/^\.\//, ""));
    t.same(targets.sort(), ["dist", "node_modules", "package.json", "proto", "routes.yaml"]);
    t.same(
      copies.filter((line) => line.includes("--chown")),
      [],
      "the code stays root's: the gateway's user cannot rewrite what it runs",
    );
  },
);

t.test("every file the Dockerfile copies from the context exists", async (t) => {
  const ignored = readFileSync(resolve(ROOT, ".dockerignore"), "utf8")
    .split("\n")
    .map((line) => line.trim())
    .filter((line) => line !== "" && !line.startsWith("#"));
  const copies = instructions.filter((line) => line.startsWith("COPY ") && !/--from=/.test(line));
  t.ok(copies.length >= 5);
  for (const line of copies) {
    const args = line
      .split(/\s+/)
      .slice(1)
      .filter((arg) => !arg.startsWith("--"));
    for (const source of args.slice(0, -1)) {
      t.ok(existsSync(resolve(ROOT, source)), `COPY source ${source} exists`);
      t.notOk(ignored.includes(source), `${source} is not in .dockerignore`);
    }
  }
  for (const needed of ["node_modules", "dist", ".git"]) {
    t.ok(ignored.includes(needed), `.dockerignore leaves out ${needed}`);
  }
});

t.test("the build output the image runs exists after `npm run build`", async (t) => {
  // `npm test` builds first (pretest); the entrypoint and the example commands
  // of compose.yaml must name files of that build.
  const entry = /ENTRYPOINT \["node", "([^"]+)"\]/.exec(dockerfile)?.[1];
  t.equal(entry, "dist/src/cli/main.js");
  const paths = [entry as string];
  for (const service of Object.values(services)) {
    const entrypoint = service.entrypoint;
    if (Array.isArray(entrypoint) && entrypoint[0] === "node") paths.push(entrypoint[1] as string);
  }
  t.same(paths.slice(1).sort(), ["dist/examples/legacy.js", "dist/examples/worker.js"]);
  const built = existsSync(resolve(ROOT, "dist/src/cli/main.js"));
  if (!built) t.comment("dist/ is missing: run `npm run build` (npm test does it first)");
  for (const path of paths) t.ok(existsSync(resolve(ROOT, path)), `${path} exists`);
});

t.test("compose.yaml: paths exist and services reference each other", async (t) => {
  const names = Object.keys(services);
  const nats = names.filter((name) => /^nats-\d$/.test(name));
  t.same(nats, ["nats-1", "nats-2", "nats-3"], "a 3-node NATS cluster");
  const natsUrls = nats.map((name) => `nats://${name}:4222`).join(",");

  for (const name of nats) {
    const service = services[name] as Service;
    t.equal(service.image, "nats:2.9");
    const args = service.command as string[];
    t.ok(args.includes("--jetstream"), `${name}: JetStream on`);
    t.ok(args.includes(`--name=${name}`));
    t.ok(args.includes("--cluster_name=turnout"));
    t.ok(args.includes("--cluster=nats://0.0.0.0:6222"));
    const routes = args.find((arg) => arg.startsWith("--routes="))?.slice("--routes=".length);
    const peers = nats.filter((peer) => peer !== name).map((peer) => `nats://${peer}:6222`);
    t.same(routes?.split(",").sort(), peers, `${name}: routes to both peers`);
  }

  const gateways = names.filter((name) => name.startsWith("gateway-"));
  t.equal(gateways.length, 2, "two gateway replicas");
  const hostPorts = new Set<string>();
  for (const name of gateways) {
    const service = services[name] as Service;
    t.equal(envOf(service).TURNOUT_NATS_URL, natsUrls, `${name}: every NATS node`);
    t.match(envOf(service).TURNOUT_ADMIN_TOKEN, /^\$\{TURNOUT_ADMIN_TOKEN[:?}]/);
    t.notOk(service.command, `${name}: the image's serve command`);
    for (const port of service.ports ?? []) {
      const host = port.split(":")[0] as string;
      t.notOk(hostPorts.has(host), `host port ${host} used once`);
      hostPorts.add(host);
    }
    t.same(
      (service.ports ?? []).map((port) => port.split(":")[1]).sort(),
      ["8080", "9090"],
      `${name}: both listeners published`,
    );
  }

  // The cluster has no auth: the KV bucket and the workers' subjects stay off the network.
  for (const name of names.filter((n) => n.startsWith("nats-"))) {
    for (const port of (services[name] as Service).ports ?? []) {
      t.match(port, /^127\.0\.0\.1:/, `${name}: ${port} published on loopback only`);
    }
  }

  for (const [name, service] of Object.entries(services)) {
    for (const dep of dependsOn(service)) {
      t.ok(names.includes(dep), `${name} depends on ${dep}, a service`);
    }
    if (service.build !== undefined) {
      const build = typeof service.build === "string" ? { context: service.build } : service.build;
      const context = resolve(DEPLOY, build.context ?? ".");
      t.equal(context, ROOT, `${name}: builds the repository`);
      t.ok(existsSync(resolve(context, build.dockerfile ?? "Dockerfile")), `${name}: Dockerfile`);
      t.equal(service.image, "turnout:local", `${name}: one image for every built service`);
    }
    for (const volume of service.volumes ?? []) {
      const source = volume.split(":")[0] as string;
      if (source.startsWith(".") || source.startsWith("/")) {
        t.ok(existsSync(resolve(DEPLOY, source)), `${name}: volume ${source} exists`);
      } else {
        t.ok(source in (compose.volumes ?? {}), `${name}: named volume ${source} declared`);
      }
    }
  }

  const worker = services.worker as Service;
  t.equal(envOf(worker).TURNOUT_NATS_URL, natsUrls, "the worker reaches every NATS node");
  t.same(worker.entrypoint, ["node", "dist/examples/worker.js"]);
  const legacy = services.legacy as Service;
  t.same(legacy.entrypoint, ["node", "dist/examples/legacy.js"]);
  const legacyArgs = legacy.command as string[];
  t.equal(legacyArgs[legacyArgs.indexOf("--host") + 1], "0.0.0.0", "legacy listens off loopback");

  // The route table mounted into the gateways points at those services.
  const routes = parse(readFileSync(resolve(DEPLOY, "routes.compose.yaml"), "utf8")) as {
    nats: { servers: string[] };
    legacy: Record<string, string>;
    protos: string[];
  };
  t.equal(routes.nats.servers.join(","), natsUrls);
  const usersPort = legacyArgs[legacyArgs.indexOf("--users-port") + 1];
  const ordersPort = legacyArgs[legacyArgs.indexOf("--orders-port") + 1];
  t.same(routes.legacy, {
    users: `http://legacy:${usersPort}`,
    orders: `http://legacy:${ordersPort}`,
  });
  t.same(routes.protos, ["./proto"], "the image's /app/proto");
});

t.test("deploy/routes.compose.yaml is a valid route table", async (t) => {
  const { loadConfigAndProtos } = await import("../../src/config/load.js");
  // Mounted at /app/routes.yaml in the image, next to /app/proto: check it the
  // same way from a copy beside the repository's proto/.
  const { writeFileSync, symlinkSync } = await import("node:fs");
  const dir = tempDir("turnout-compose");
  symlinkSync(resolve(ROOT, "proto"), resolve(dir, "proto"));
  const file = resolve(dir, "routes.yaml");
  writeFileSync(file, readFileSync(resolve(DEPLOY, "routes.compose.yaml")));
  const { config } = loadConfigAndProtos(file);
  t.equal(config.routes.length, 5);
});
