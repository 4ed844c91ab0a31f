// The document's path items and path parameters against a running gateway:
// what a client builds from the document is what the gateway serves.
import t from "tap";
import { buildOpenApiDocument } from "../../src/openapi/index.js";
import { startWorker } from "../../src/worker/index.js";
import { startStack } from "../helpers/stack.js";
import { documentSchemas, openApiErrors, parametersOf, writeFixtureRoutes } from "./check.js";

const ROUTES = `  - name: users.get
    method: GET
    path: /v1/users/:id
    subject: svc.users.get
    request: users.v1.GetUserRequest
    response: users.v1.User
  - name: users.update
    method: PUT
    path: /v1/users/:region
    subject: svc.users.update
    request: users.v1.UpdateUserRequest
    response: users.v1.User
    body: "*"
  - name: sinks.by-score
    method: GET
    path: /v1/sinks/:score
    subject: svc.sinks.{score}.get
    request: kitchen.v1.Sink
    response: kitchen.v1.Sink
  - name: sinks.by-wait
    method: GET
    path: /v1/waits/:wait_time
    subject: svc.waits.{wait_time}.get
    request: kitchen.v1.Sink
    response: kitchen.v1.Sink
  - name: sinks.by-wrapped
    method: GET
    path: /v1/wrapped/:wrapped_double
    subject: svc.wrapped.{wrapped_double}.get
    request: kitchen.v1.Sink
    response: kitchen.v1.Sink
`;

const stack = await startStack(t, writeFixtureRoutes(ROUTES));
const doc = buildOpenApiDocument(stack.config, stack.root);
const schemas = documentSchemas(doc);
const updates: Array<{ region: string; id: string }> = [];
const workers = [
  startWorker({
    nc: stack.nc,
    root: stack.root,
    subject: "svc.users.*",
    requestType: "users.v1.UpdateUserRequest",
    responseType: "users.v1.User",
    handle: (req: { region: string; id: string }) => {
      updates.push({ region: req.region, id: req.id });
      return { id: req.id, region: req.region };
    },
  }),
  startWorker({
    nc: stack.nc,
    root: stack.root,
    subject: "svc.*.*.get",
    requestType: "kitchen.v1.Sink",
    responseType: "kitchen.v1.Sink",
    handle: () => ({}),
  }),
];
await stack.nc.flush();
t.teardown(async () => {
  for (const worker of workers) await worker.stop();
});

t.test(
  "routes whose paths differ only by param names share one path item, named as the first route names them",
  async (t) => {
    t.same(await openApiErrors(doc), []);
    const users = Object.keys(doc.paths).filter((path) => path.startsWith("/v1/users/"));
    t.same(users, ["/v1/users/{id}"], "one path item, no /v1/users/{region}");
    const put = parametersOf(doc, "/v1/users/{id}", "put").get("id");
    t.match(put, { in: "path", required: true, description: /:region.*field region/ });
    t.equal(parametersOf(doc, "/v1/users/{id}", "get").get("id")?.in, "path");
    // OpenAPI: each template param is a path parameter of every operation, and no other.
    for (const [path, item] of Object.entries(doc.paths)) {
      const template = [...path.matchAll(/\{([^}]+)\}/g)].map((m) => m[1]).sort();
      for (const method of Object.keys(item)) {
        const inPath = [...parametersOf(doc, path, method).values()]
          .filter((p) => p.in === "path")
          .map((p) => p.name)
          .sort();
        t.same(inPath, template, `${method} ${path}`);
      }
    }
  },
);

t.test(
  "a PUT built from the shared path item reaches users.update with the value in its own field",
  async (t) => {
    const [path, item] =
      Object.entries(doc.paths).find(([, ops]) => ops.put?.operationId === "users.update") ?? [];
    t.equal(path, "/v1/users/{id}");
    const params = parametersOf(doc, path ?? "", "put");
    const url = (path ?? "").replace(/\{([^}]+)\}/g, (_, name: string) =>
      params.get(name)?.in === "path" ? "eu" : "MISSING",
    );
    t.ok(item !== undefined && url === "/v1/users/eu", url);
    const res = await fetch(`${stack.gateway.url}${url}`, {
      method: "PUT",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ id: "u-7" }),
    });
    t.equal(res.status, 200);
    t.same(
      updates.at(-1),
      { region: "eu", id: "u-7" },
      "the {id} segment is users.update's region",
    );
  },
);

/** Whether the schema takes the text as a client would send it: as itself, or as the number it spells. */
function accepts(validate: (value: unknown) => boolean, text: string): boolean {
  const number = Number(text);
  return validate(text) || (text.trim() !== "" && !Number.isNaN(number) && validate(number));
}

const SUBJECT_PARAMS: Array<[string, string, string[]]> = [
  [
    "/v1/sinks/{score}",
    "score",
    ["15", "-2", "15e-1", "0", "NaN", "Infinity", "-Infinity", "1.5", "0.25", "1.5e3", "x"],
  ],
  ["/v1/waits/{wait_time}", "wait_time", ["15s", "-3s", "0s", "1.5s", "15", "x"]],
  ["/v1/wrapped/{wrapped_double}", "wrapped_double", ["7", "7e-1", "NaN", "0.7"]],
];

for (const [path, name, values] of SUBJECT_PARAMS) {
  t.test(
    `the ${name} path param (a float, Duration or DoubleValue in the subject) is documented as exactly what the gateway takes`,
    async (t) => {
      const index = [...parametersOf(doc, path, "get").keys()].indexOf(name);
      const validate = schemas.at("paths", path, "get", "parameters", String(index), "schema");
      for (const value of values) {
        const res = await fetch(`${stack.gateway.url}${path.replace(`{${name}}`, value)}`);
        await res.arrayBuffer();
        const served = res.status === 200;
        t.equal(accepts(validate, value), served, `${value}: gateway ${res.status}`);
      }
    },
  );
}
