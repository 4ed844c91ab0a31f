/**
 * Loads routes.yaml (schema v1) into the frozen GatewayConfig. Every problem in the
 * file, the protos and the overrides is collected, then all are thrown at once as
 * one ConfigError, each with file:line:col, route and key path.
 */
import { dirname, resolve } from "node:path";
import type protobuf from "protobufjs";
import { ConfigError, type ConfigProblem } from "../errors.js";
import { BUILT_IN_TUNABLES, readTunables } from "./defaults.js";
import type { Field } from "./field.js";
import { deepFreeze } from "./freeze.js";
import { readLegacyMap } from "./legacy.js";
import { readNats, serverListProblem, serverUrlProblem, splitServers } from "./nats.js";
import { Problems } from "./problems.js";
import { checkRouteProtos } from "./proto-checks.js";
import { countMessageTypes, loadListedProtos } from "./protos-load.js";
import { checkKeys, readList } from "./read.js";
import { type ReadRoute, readRoute, toRouteConfig } from "./route.js";
import { checkDuplicates } from "./route-checks.js";
import { TOP_KEYS, TUNABLE_KEYS } from "./schema.js";
import type { GatewayConfig, NatsConfig } from "./types.js";
import { readYaml } from "./yaml-source.js";

export interface ConfigOverrides {
  /** Comma-separated NATS servers (`--nats-url`): replaces `nats.servers`. */
  readonly natsUrl?: string | undefined;
  /**
   * `serve`'s own checks of the nats section: whether the secrets and files it
   * names can be used now (`check` leaves them alone: CI has none). Each problem
   * is placed at its key (`nats.auth.token`) among the file's other problems.
   */
  readonly checkNats?: ((nats: NatsConfig) => readonly ConfigProblem[]) | undefined;
}

export interface LoadedConfig {
  readonly config: GatewayConfig;
  /** The compiled protos the routes were checked against, to reuse rather than compile twice. */
  readonly root: protobuf.Root;
  /** How many message types the listed .proto files define. */
  readonly messageTypes: number;
}

/** Throws ConfigError listing every problem; otherwise returns the deeply frozen config. */
export function loadConfig(file: string, overrides: ConfigOverrides = {}): GatewayConfig {
  return loadConfigAndProtos(file, overrides).config;
}

export function loadConfigAndProtos(file: string, overrides: ConfigOverrides = {}): LoadedConfig {
  const problems = new Problems(file);
  const servers = overrideServers(overrides.natsUrl, problems);
  const doc = readYaml(file, problems);
  // Unreadable or not YAML: nothing further can be checked (readYaml said why).
  if (doc === undefined) throw new ConfigError(problems.list());
  const dir = dirname(resolve(file));
  checkKeys(doc, TOP_KEYS);
  checkVersion(doc.child("version"));
  const protos = loadListedProtos(doc.child("protos"), dir);
  const nats = readNats(doc.child("nats"), { dir, servers });
  checkNatsNow(doc, nats, overrides.checkNats);
  const legacy = readLegacyMap(doc.child("legacy"));
  const defaultsField = doc.child("defaults");
  checkKeys(defaultsField, TUNABLE_KEYS);
  const defaults = readTunables(defaultsField, BUILT_IN_TUNABLES);
  const routes = readRoutes(doc.child("routes"), (item) => readRoute(item, { legacy, defaults }));
  checkDuplicates(routes);
  const { root, complete } = protos;
  if (root !== undefined) for (const route of routes) checkRouteProtos(route, { root, complete });
  problems.throwIfAny();
  const config: GatewayConfig = {
    file: resolve(file),
    protos: protos.paths,
    nats,
    legacy: Object.fromEntries(legacy.urls),
    routes: routes.map((route) => toRouteConfig(route.draft)),
  };
  return {
    config: deepFreeze(config),
    root: root!,
    messageTypes: countMessageTypes(root!, protos.files),
  };
}

function checkNatsNow(doc: Field, nats: NatsConfig, check: ConfigOverrides["checkNats"]): void {
  for (const problem of check?.(nats) ?? []) fieldAt(doc, problem.key).problem(problem.message);
}

/** The field at a dotted key path; a missing key is located at its nearest present parent. */
function fieldAt(root: Field, key: string): Field {
  return key.split(".").reduce((f, part) => f.child(part), root);
}

function checkVersion(f: Field): void {
  if (!f.present) f.problem("is required: write version: 1 at the top of the file");
  else if (f.scalar !== 1) f.problem(`must be 1 (the only schema version), got ${f.describe()}`);
}

function readRoutes(f: Field, read: (item: Field) => ReadRoute): ReadRoute[] {
  if (!f.present) {
    f.problem("is required: the list of routes");
    return [];
  }
  const routes = readList(f, read) ?? [];
  if (f.isList && routes.length === 0) f.problem("must list at least one route");
  return routes;
}

function overrideServers(natsUrl: string | undefined, problems: Problems): string[] | undefined {
  if (natsUrl === undefined) return undefined;
  const servers = splitServers(natsUrl);
  if (servers.length === 0) problems.addAt("--nats-url", "nats.servers", "lists no server");
  for (const server of servers) {
    const problem = serverUrlProblem(server);
    if (problem !== undefined) problems.addAt("--nats-url", "nats.servers", problem);
  }
  const mixed = serverListProblem(servers);
  if (mixed !== undefined) problems.addAt("--nats-url", "nats.servers", mixed);
  return servers;
}
