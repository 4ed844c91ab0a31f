/**
 * deploy/prometheus/alerts.yml and deploy/grafana/turnout.json only reference
 * metrics a real gateway exports: every `turnout_*` name in either file (with
 * histogram _bucket/_sum/_count suffixes stripped) must have a `# TYPE` line in
 * the /metrics of a running gateway. `promtool check rules` accepts the rules and
 * `promtool test rules` runs their unit tests (deploy/prometheus/alerts.test.yml);
 * without promtool (Debian package prometheus) those tests fail, they never skip.
 */
import { type SpawnSyncReturns, spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import t, { type Test } from "tap";
import { parse } from "yaml";
import { sendJson, startLegacyServer } from "../helpers/legacy-server.js";
import { startStack, writeRoutes } from "../helpers/stack.js";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const ALERTS = resolve(ROOT, "deploy/prometheus/alerts.yml");
const ALERT_TESTS = resolve(ROOT, "deploy/prometheus/alerts.test.yml");
const DASHBOARD = resolve(ROOT, "deploy/grafana/turnout.json");

interface Rule {
  alert?: string;
  record?: string;
  expr?: string;
  for?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}
interface Target {
  expr?: string;
}
interface Panel {
  title?: string;
  targets?: Target[];
  panels?: Panel[];
}
interface TemplateVar {
  name: string;
  query?: string | { query?: string };
  definition?: string;
}
interface Dashboard {
  panels: Panel[];
  templating: { list: TemplateVar[] };
}

const alerts = parse(readFileSync(ALERTS, "utf8")) as { groups: Array<{ rules: Rule[] }> };
const dashboard = JSON.parse(readFileSync(DASHBOARD, "utf8")) as Dashboard;

const rules = alerts.groups.flatMap((group) => group.rules);
const alertExprs = rules.map((rule) => rule.expr ?? "");

function panelsOf(panels: Panel[]): Panel[] {
  return panels.flatMap((panel) => [panel, ...panelsOf(panel.panels ?? [])]);
}
const panels = panelsOf(dashboard.panels);
const dashboardExprs = [
  ...panels.flatMap((panel) => (panel.targets ?? []).map((target) => target.expr ?? "")),
  ...dashboard.templating.list.map((v) =>
    typeof v.query === "string" ? v.query : (v.query?.query ?? ""),
  ),
];

/** The base metric names (histogram suffixes stripped) referenced by `exprs`. */
function metricNames(exprs: string[]): Set<string> {
  const names = new Set<string>();
  for (const expr of exprs) {
    for (const [name] of expr.matchAll(/\bturnout_[a-z0-9_]+/g)) {
      names.add(name.replace(/_(bucket|sum|count)$/, ""));
    }
  }
  return names;
}

t.test("the alert rules are well formed", async (t) => {
  t.ok(rules.length >= 6, "several rules");
  for (const rule of rules) {
    t.ok(rule.alert, "every rule is an alert");
    t.ok(rule.expr && rule.expr.trim() !== "", `${rule.alert}: has an expr`);
    t.ok(rule.labels?.severity, `${rule.alert}: has a severity`);
    t.ok(rule.annotations?.summary, `${rule.alert}: has a summary`);
  }
  const byName = new Map(rules.map((rule) => [rule.alert, rule.expr ?? ""]));
  t.match(byName.get("TurnoutHighErrorRate"), /turnout_requests_total\{code=~"5\.\."\}\[5m\]/);
  t.match(byName.get("TurnoutHighP99Latency"), /histogram_quantile\(0\.99,/);
  t.match(byName.get("TurnoutHighP99Latency"), /by \(route, backend, le\)/);
  t.match(byName.get("TurnoutShadowMismatchRate"), /result="mismatch"/);
  t.match(byName.get("TurnoutBreakerOpen"), /turnout_breaker_state\) == 2/);
  t.match(byName.get("TurnoutNatsNotConnected"), /turnout_nats_connected\) == 0/);
  t.match(byName.get("TurnoutDeadLettersGrowing"), /increase\(turnout_dead_letters_total\[/);
});

t.test("the dashboard has a route variable and the expected panels", async (t) => {
  const route = dashboard.templating.list.find((v) => v.name === "route");
  t.ok(route, "route variable");
  t.equal(
    typeof route?.query === "string" ? route.query : route?.query?.query,
    "label_values(turnout_requests_total, route)",
  );
  const ids = dashboard.panels.map((panel) => (panel as { id?: number }).id);
  t.equal(new Set(ids).size, ids.length, "panel ids are unique");
  const names = metricNames(dashboardExprs);
  for (const name of [
    "turnout_requests_total",
    "turnout_cutover_percent",
    "turnout_request_duration_seconds",
    "turnout_shadow_total",
    "turnout_fallbacks_total",
    "turnout_breaker_state",
    "turnout_payload_bytes",
    "turnout_rate_limited_total",
  ]) {
    t.ok(names.has(name), `the dashboard shows ${name}`);
  }
  for (const panel of panels) {
    for (const target of panel.targets ?? []) {
      t.match(target.expr, /route=~"\$route"/, `${panel.title}: filtered by $route`);
    }
  }
});

t.test(
  "the cutover panel shows the highest and the lowest replica; the match-rate panel keeps req/s off its percent axis",
  async (t) => {
    const byTitle = (title: string) =>
      panels.find((panel) => panel.title === title) as Panel & {
        fieldConfig?: { overrides?: Array<{ matcher: { options: string }; properties: object[] }> };
      };
    const cutover = byTitle("Cutover percentages");
    const exprs = (cutover.targets ?? []).map((target) => target.expr ?? "");
    t.ok(
      exprs.some((e) => e.startsWith("max by (route, kind)")),
      "the highest replica",
    );
    t.ok(
      exprs.some((e) => e.startsWith("min by (route, kind)")),
      "and the lowest: one that disagrees shows",
    );
    const match = byTitle("Shadow match rate");
    const skipped = match.fieldConfig?.overrides?.find((o) => o.matcher.options === "B");
    t.match(skipped?.properties, [{ id: "unit", value: "reqps" }], "skipped mirrors in req/s");
  },
);

t.test("every referenced turnout_* metric is exported by a running gateway", async (t) => {
  const legacy = await startLegacyServer((_request, res) =>
    sendJson(res, 200, { id: "o-1", status: "STATUS_UNSPECIFIED" }),
  );
  t.teardown(() => legacy.close());
  const routes = `  - name: orders.get
    method: GET
    path: /v1/orders/:id
    subject: svc.orders.nobody
    request: orders.v1.GetOrderRequest
    response: orders.v1.Order
    legacy: orders
    cutover: { nats: 50, shadow: 100 }
`;
  const stack = await startStack(t, writeRoutes(routes, `legacy:\n  orders: ${legacy.url}\n`));
  for (let i = 0; i < 4; i++) {
    const res = await fetch(`${stack.gateway.url}/v1/orders/o-${i}`);
    await res.arrayBuffer();
  }
  await (await fetch(`${stack.gateway.url}/nowhere`)).arrayBuffer();

  const text = await (await fetch(`${stack.gateway.adminUrl}/metrics`)).text();
  const exported = new Set(
    [...text.matchAll(/^# TYPE (\S+) \S+$/gm)].map(([, name]) => name as string),
  );
  const referenced = new Set([...metricNames(alertExprs), ...metricNames(dashboardExprs)]);
  t.ok(referenced.size >= 8, `${referenced.size} metrics referenced`);
  for (const name of referenced) {
    t.ok(exported.has(name), `${name} is exported`);
  }
});

/** Fails (never skips) without promtool: CI installs it, and so should a developer. */
function promtool(t: Test, args: string[]): SpawnSyncReturns<string> | undefined {
  const result = spawnSync("promtool", args, { cwd: ROOT, encoding: "utf8" });
  if (result.error !== undefined) {
    t.fail(
      `promtool is not on PATH (${result.error.message}): install the Debian package ` +
        "with `sudo apt-get install -y --no-install-recommends prometheus`, or run .ci/run",
    );
    return undefined;
  }
  return result;
}

t.test("promtool check rules accepts alerts.yml", async (t) => {
  const result = promtool(t, ["check", "rules", ALERTS]);
  if (result === undefined) return;
  const output = `${result.stdout}${result.stderr}`;
  t.equal(result.status, 0, `promtool check rules exits 0:\n${output}`);
  t.match(output, /SUCCESS: \d+ rules found/);
});

t.test("promtool test rules: the alert rules' unit tests pass", async (t) => {
  const result = promtool(t, ["test", "rules", ALERT_TESTS]);
  if (result === undefined) return;
  const output = `${result.stdout}${result.stderr}`;
  t.equal(result.status, 0, `promtool test rules exits 0:\n${output}`);
  t.match(output, /SUCCESS/);
  t.notMatch(output, /FAILED/);
});
