/**
 * The OpenAPI 3.1 document of the gateway's public listener, built from the
 * route table and the loaded protos: one operation per route, with its
 * parameters, its body and its answers shaped as the codec reads and prints
 * them for that route's `json` options, and the problem+json answers the
 * gateway itself makes. Built once at start; nothing here runs per request.
 */
import type protobuf from "protobufjs";
import { findMessage } from "../codec/protos.js";
import { pathShape, pathTemplate } from "../config/route-paths.js";
import type { GatewayConfig, RouteConfig } from "../config/types.js";
import { TurnoutError } from "../errors.js";
import { PROBLEM_CONTENT_TYPE } from "../server/problem.js";
import { type JsonSchema, SchemaRegistry, styleOf } from "./json-schema.js";
import { fieldByKey, routeParameters } from "./parameters.js";

export interface OpenApiInfo {
  readonly title?: string;
  readonly version?: string;
  readonly description?: string;
}

export interface OpenApiDocument {
  readonly openapi: string;
  readonly info: Required<Pick<OpenApiInfo, "title" | "version">> & OpenApiInfo;
  readonly jsonSchemaDialect: string;
  readonly tags: ReadonlyArray<{ readonly name: string }>;
  readonly paths: Record<string, Record<string, JsonSchema>>;
  readonly components: {
    readonly schemas: Record<string, JsonSchema>;
    readonly headers: Record<string, JsonSchema>;
  };
}

export const PROBLEM_SCHEMA = "turnout.Problem";
export const PUBLISH_ACK_SCHEMA = "turnout.PublishAck";
const JSON_TYPE = "application/json";
const REQUEST_ID = { $ref: "#/components/headers/X-Request-Id" };

const DEFAULT_INFO = {
  title: "Turnout gateway",
  version: "1.0.0",
  description:
    "HTTP/JSON routes served by NATS workers (protobuf) or, during their migration, by the legacy services. Error answers the gateway makes itself are RFC 9457 application/problem+json.",
};

export function buildOpenApiDocument(
  config: GatewayConfig,
  root: protobuf.Root,
  info: OpenApiInfo = {},
): OpenApiDocument {
  const registry = new SchemaRegistry();
  const paths: Record<string, Record<string, JsonSchema>> = {};
  const items = new PathItems();
  for (const route of config.routes) {
    const { path, params } = items.of(route);
    paths[path] = {
      ...paths[path],
      [route.method.toLowerCase()]: operation(route, root, registry, params),
    };
  }
  const schemas = registry.components();
  for (const name of [PROBLEM_SCHEMA, PUBLISH_ACK_SCHEMA]) {
    if (name in schemas)
      throw new TurnoutError(
        "TURNOUT_ERR_CONFIG",
        `openapi: a protobuf type is named ${name}, which the gateway uses for its own schema`,
      );
  }
  return {
    openapi: "3.1.1",
    info: { ...DEFAULT_INFO, ...info },
    jsonSchemaDialect: "https://json-schema.org/draft/2020-12/schema",
    tags: [...new Set(config.routes.map(tagOf))].sort().map((name) => ({ name })),
    paths,
    components: {
      schemas: {
        ...schemas,
        [PROBLEM_SCHEMA]: problemSchema(),
        [PUBLISH_ACK_SCHEMA]: publishAckSchema(),
      },
      headers: {
        "X-Request-Id": {
          description:
            "The client's X-Request-Id, or one the gateway made; also sent to the worker.",
          schema: { type: "string" },
        },
      },
    },
  };
}

/**
 * OpenAPI forbids two path items that differ only by their parameter names
 * (`/users/{id}` and `/users/{region}`): they match the same requests. Routes
 * of one shape share the first one's template, and each names its path
 * params as that template does, position by position.
 */
class PathItems {
  readonly #byShape = new Map<string, { path: string; params: readonly string[] }>();

  of(route: RouteConfig): { path: string; params: readonly string[] } {
    const shape = pathShape(route.path);
    const first = this.#byShape.get(shape);
    if (first !== undefined) return first;
    const item = { path: pathTemplate(route.path), params: route.pathParams };
    this.#byShape.set(shape, item);
    return item;
  }
}

/** Routes group by their name's first part: `users.get` is tagged `users`. */
function tagOf(route: RouteConfig): string {
  return route.name.split(".", 1)[0]!;
}

function lookup(root: protobuf.Root, name: string): protobuf.Type {
  const type = findMessage(root, name);
  if (type === undefined)
    throw new TurnoutError(
      "TURNOUT_ERR_CONFIG",
      `openapi: ${name} is not a message in the loaded protos`,
    );
  return type;
}

function operation(
  route: RouteConfig,
  root: protobuf.Root,
  registry: SchemaRegistry,
  pathNames: readonly string[],
): JsonSchema {
  const request = lookup(root, route.request);
  const op: JsonSchema = {
    operationId: route.name,
    tags: [tagOf(route)],
    summary: `${route.request} -> ${route.mode === "publish" ? "JetStream" : route.response}`,
    description: describe(route),
    parameters: routeParameters(route, request, pathNames),
  };
  if (route.body !== undefined) op.requestBody = requestBody(route, request, registry);
  op.responses = {
    ...successResponses(route, root, registry),
    ...errorResponses(route, root, registry),
  };
  return op;
}

function describe(route: RouteConfig): string {
  const via =
    route.mode === "publish"
      ? `Published to JetStream on subject \`${route.subject}\``
      : `Served by the NATS workers on subject \`${route.subject}\``;
  const legacy = route.legacy === undefined ? "" : `, or by the legacy upstream ${route.legacy}`;
  return `${via}${legacy}. Request type ${route.request}.`;
}

function requestBody(
  route: RouteConfig,
  request: protobuf.Type,
  registry: SchemaRegistry,
): JsonSchema {
  const style = styleOf(route.json, "request");
  const omit = new Set(route.pathParams.map((name) => fieldByKey(request, name).name));
  const schema =
    route.body === "*"
      ? omit.size === 0
        ? registry.messageSchema(request, style)
        : registry.objectSchema(request, style, omit)
      : registry.fieldSchema(fieldByKey(request, route.body!), style);
  const what =
    route.body === "*" ? `a ${route.request}` : `the field ${route.body} of ${route.request}`;
  return {
    description: `${what}, in this route's JSON style. The gateway also takes every other ProtoJSON form: proto or lowerCamel names, 64-bit integers as strings or numbers, enums by name or number.`,
    content: { [JSON_TYPE]: { schema } },
  };
}

function successResponses(
  route: RouteConfig,
  root: protobuf.Root,
  registry: SchemaRegistry,
): JsonSchema {
  if (route.mode === "publish") {
    return {
      "202": answer("Stored by the stream: its name and the message's sequence.", JSON_TYPE, {
        $ref: `#/components/schemas/${PUBLISH_ACK_SCHEMA}`,
      }),
    };
  }
  // A fresh `$ref` for each use: the registry names every one it handed out.
  const schema = () =>
    registry.messageSchema(lookup(root, route.response), styleOf(route.json, "response"));
  // Sent without content, whatever the worker's reply holds (RFC 9110).
  const contentless = (status: string) => ({
    description: `A worker's Http-Status ${status}: no content.`,
    headers: { "X-Request-Id": REQUEST_ID },
  });
  return {
    "200": answer(`The worker's ${route.response}.`, JSON_TYPE, schema()),
    "204": contentless("204"),
    "205": contentless("205"),
    "2XX": answer(
      `The worker's ${route.response}, with a success status it chose (Http-Status), e.g. 201.`,
      JSON_TYPE,
      schema(),
    ),
  };
}

function answer(description: string, mediaType: string, schema: JsonSchema): JsonSchema {
  return {
    description,
    headers: { "X-Request-Id": REQUEST_ID },
    content: { [mediaType]: { schema } },
  };
}

function errorResponses(
  route: RouteConfig,
  root: protobuf.Root,
  registry: SchemaRegistry,
): JsonSchema {
  const errorType = route.error;
  const workerError =
    route.mode === "request" && errorType !== undefined
      ? () => registry.messageSchema(lookup(root, errorType), styleOf(route.json, "response"))
      : undefined;
  const out: JsonSchema = {};
  // A route with two sides answers 503 with Retry-After while its replica has
  // not loaded the live split (route-handler.ts splitUnknown).
  const retries = new Set(route.legacy === undefined ? ["429"] : ["429", "503"]);
  for (const [status, description] of errorStatuses(route)) {
    out[status] = errorAnswer(description, workerError, retries.has(status));
  }
  return out;
}

/** Each status the route can answer with an error, and why. */
function errorStatuses(route: RouteConfig): Array<[string, string]> {
  const publish = route.mode === "publish";
  const statuses: Array<[string, string | undefined]> = [
    [
      "400",
      "The body or a path or query parameter does not fit the request type, or a subject parameter is not a safe NATS token.",
    ],
    ["404", publish ? undefined : "The worker (or legacy service) found nothing."],
    [
      "413",
      route.body === undefined ? undefined : `The body is over ${route.bodyLimitBytes} bytes.`,
    ],
    [
      "415",
      route.body === undefined
        ? undefined
        : "The body is not JSON (application/json or application/*+json).",
    ],
    [
      "422",
      publish
        ? "The Idempotency-Key was already used for a different request (another body or path)."
        : undefined,
    ],
    [
      "429",
      route.rateLimit === undefined
        ? undefined
        : `Over ${route.rateLimit.max} requests per ${route.rateLimit.perMs} ms; Retry-After says when to try again.`,
    ],
    ["4XX", publish ? undefined : "Another error the worker signalled (Nats-Service-Error-Code)."],
    [
      "502",
      publish
        ? "The stream refused the message."
        : `The reply is not a valid ${route.response}, or the worker signalled a code outside 400-599.`,
    ],
    [
      "503",
      `${publish ? "No stream stores the subject, or NATS is not connected" : "No worker listens on the subject, NATS is not connected, or the circuit breaker is open"}${route.legacy === undefined ? "" : "; or, with Retry-After, this replica has not loaded the live split yet"}.`,
    ],
    ["504", `No ${publish ? "ack from the stream" : "reply"} within ${route.timeoutMs} ms.`],
    ["5XX", publish ? undefined : "Another error the worker signalled."],
  ];
  return statuses.filter((entry): entry is [string, string] => entry[1] !== undefined);
}

/** problem+json from the gateway; with an `error` type, the worker's own error body as JSON. */
function errorAnswer(
  description: string,
  workerError: (() => JsonSchema) | undefined,
  retryAfter: boolean,
): JsonSchema {
  const content: JsonSchema = {
    [PROBLEM_CONTENT_TYPE]: { schema: { $ref: `#/components/schemas/${PROBLEM_SCHEMA}` } },
  };
  if (workerError !== undefined) content[JSON_TYPE] = { schema: workerError() };
  const headers: JsonSchema = { "X-Request-Id": REQUEST_ID };
  if (retryAfter) {
    headers["Retry-After"] = {
      description: "Seconds to wait.",
      schema: { type: "integer", minimum: 0 },
    };
  }
  const note = workerError === undefined ? "" : " A worker's error body comes as application/json.";
  return { description: `${description}${note}`, headers, content };
}

function problemSchema(): JsonSchema {
  const text = { type: "string" };
  return {
    type: "object",
    description: "RFC 9457 problem details, as the gateway makes them (src/server/problem.ts).",
    required: ["type", "title", "status", "detail", "code", "requestId"],
    properties: {
      type: { type: "string", format: "uri", description: "urn:turnout:error:<code>" },
      title: text,
      status: { type: "integer", minimum: 400, maximum: 599 },
      detail: text,
      code: { type: "string", pattern: "^TURNOUT_ERR_[A-Z_]+$" },
      field: {
        type: "string",
        description: "The body field (a JSON path such as $.items[0].sku) or parameter at fault.",
      },
      route: { type: "string", description: "The route's name." },
      requestId: text,
    },
  };
}

function publishAckSchema(): JsonSchema {
  return {
    type: "object",
    required: ["stream", "seq", "duplicate"],
    properties: {
      stream: { type: "string", description: "The JetStream stream that stored the message." },
      seq: { type: "integer", minimum: 1, description: "The message's sequence in the stream." },
      duplicate: {
        type: "boolean",
        description: "True when the Idempotency-Key was already stored.",
      },
    },
    additionalProperties: false,
  };
}
