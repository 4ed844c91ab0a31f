/**
 * A route's parameters as the codec's binding (src/codec/binding.ts) reads
 * them, grpc-gateway style: every path param, then each request field that
 * neither the path nor the body binds as a query param (`a.b` for nested
 * fields, the key repeated for a repeated field), plus the HTTP headers the
 * route passes to its worker.
 */
import protobuf from "protobufjs";
import type { RouteConfig } from "../config/types.js";
import { TurnoutError } from "../errors.js";
import { type JsonSchema, keyOf, paramSchema, specialName } from "./json-schema.js";

export type Parameter = JsonSchema & { name: string; in: "path" | "query" | "header" };

/** The request field a path param or `body` names: by proto or JSON name, as the binding finds it. */
export function fieldByKey(type: protobuf.Type, key: string): protobuf.Field {
  const field = type.fieldsArray.find((f) => f.protoName === key || f.jsonName === key);
  if (field === undefined)
    throw new TurnoutError("TURNOUT_ERR_CONFIG", `openapi: ${type.fullName} has no field ${key}`);
  return field;
}

/** `pathNames`: the names the path item's template gives the route's path params, in order. */
export function routeParameters(
  route: RouteConfig,
  request: protobuf.Type,
  pathNames: readonly string[] = route.pathParams,
): Parameter[] {
  return [
    ...route.pathParams.map((name, i) => pathParameter(route, request, name, pathNames[i]!)),
    ...queryParameters(route, request),
    ...headerParameters(route),
  ];
}

/** What a subject token may not hold (src/routing/subject.ts): the gateway answers 400. */
const SUBJECT_TOKEN = "^[^.*>\\s\\u0000-\\u001f\\u007f-\\u009f]+$";

function pathParameter(
  route: RouteConfig,
  request: protobuf.Type,
  name: string,
  documented: string,
): Parameter {
  const field = fieldByKey(request, name);
  let schema = paramSchema(field);
  if (schema === undefined)
    throw new TurnoutError(
      "TURNOUT_ERR_INTERNAL",
      `openapi: path param ${name} has no string form`,
    );
  if (route.subject.includes(`{${name}}`)) schema = subjectToken(schema);
  const parameter = withDescription(
    { name: documented, in: "path", required: true, schema },
    field,
  );
  return documented === name ? parameter : renamed(parameter, name);
}

/**
 * A float written without "." (the gateway reads it as JSON number text):
 * 15, -2, 15e-1, or NaN and the infinities.
 */
const FLOAT_TOKEN = "^(-?(0|[1-9][0-9]*)([eE][-+]?[0-9]+)?|NaN|-?Infinity)$";

/**
 * The schema of a param that fills a subject token: the gateway refuses the
 * raw path text when it holds ".", "*", ">", whitespace or a control
 * character, whatever the field's type.
 */
function subjectToken(schema: JsonSchema): JsonSchema {
  if (isFloat(schema)) {
    return {
      type: "string",
      pattern: FLOAT_TOKEN,
      description:
        'A number written without "." (e.g. 15e-1 for 1.5), NaN, Infinity or -Infinity: it fills a NATS subject token, which cannot hold ".".',
    };
  }
  // Integers, booleans and enum names never hold a refused character.
  if (schema.type !== "string" || schema.enum !== undefined) return schema;
  // A pattern of its own (Duration's) must hold too: JSON Schema takes one per object.
  if (schema.pattern !== undefined) return { ...schema, allOf: [{ pattern: SUBJECT_TOKEN }] };
  return { ...schema, pattern: SUBJECT_TOKEN };
}

/** paramSchema's float/double (and their wrappers): a number, or NaN and the infinities as strings. */
function isFloat(schema: JsonSchema): boolean {
  const branches = schema.anyOf;
  return Array.isArray(branches) && branches.some((b: JsonSchema) => b.type === "number");
}

/** A param shown under the path item's name: say which route param and field it is. */
function renamed(parameter: Parameter, name: string): Parameter {
  const note = `This route's path names it :${name}; it binds the request field ${name}.`;
  const description =
    parameter.description === undefined ? note : `${note} ${parameter.description}`;
  return { ...parameter, description };
}

/** Fields bound neither by the path nor by the body; none when the whole body is the message. */
function queryParameters(route: RouteConfig, request: protobuf.Type): Parameter[] {
  if (route.body === "*") return [];
  const bound = new Set(route.pathParams.map((name) => fieldByKey(request, name)));
  if (route.body !== undefined) bound.add(fieldByKey(request, route.body));
  const out: Parameter[] = [];
  collectQuery(request, "", route.json.names, bound, new Set([request]), out);
  return out;
}

function collectQuery(
  type: protobuf.Type,
  prefix: string,
  names: RouteConfig["json"]["names"],
  bound: ReadonlySet<protobuf.Field>,
  onPath: ReadonlySet<protobuf.Type>,
  out: Parameter[],
): void {
  for (const field of type.fieldsArray) {
    if (bound.has(field)) continue;
    const name = prefix + keyOf(field, names);
    if (field.map) {
      const entries = mapParameter(name, field);
      if (entries !== undefined) out.push(withDescription(entries, field));
      continue;
    }
    const resolved = field.resolve().resolvedType;
    if (resolved instanceof protobuf.Type && specialName(resolved) === undefined) {
      // A recursive message would give endless names; a repeated one has no dotted form.
      if (field.repeated || onPath.has(resolved)) continue;
      collectQuery(resolved, `${name}.`, names, bound, new Set([...onPath, resolved]), out);
      continue;
    }
    const schema = paramSchema(field);
    if (schema === undefined) continue;
    out.push(withDescription(queryParameter(name, schema, field.repeated), field));
  }
}

/** `name[KEY]=VALUE` per entry (OpenAPI's deepObject), for a map of values a query can carry. */
function mapParameter(name: string, field: protobuf.Field): Parameter | undefined {
  const values = paramSchema(field);
  if (values === undefined) return undefined;
  return {
    name,
    in: "query",
    style: "deepObject",
    explode: true,
    schema: { type: "object", additionalProperties: values },
  };
}

function queryParameter(name: string, schema: JsonSchema, repeated: boolean): Parameter {
  if (!repeated) return { name, in: "query", schema };
  return {
    name,
    in: "query",
    style: "form",
    explode: true,
    schema: { type: "array", items: schema },
  };
}

function headerParameters(route: RouteConfig): Parameter[] {
  const forwarded: Parameter[] = route.headers.map((name) => ({
    name,
    in: "header",
    description: "Passed on to the worker.",
    schema: { type: "string" },
  }));
  if (route.mode !== "publish") return forwarded;
  const idempotency: Parameter = {
    name: "Idempotency-Key",
    in: "header",
    description:
      "Becomes the message's Nats-Msg-Id, scoped to this route: a retry with the same key within the stream's duplicate window is stored once and answered with the same seq and duplicate: true.",
    schema: { type: "string" },
  };
  return [...forwarded, idempotency];
}

function withDescription(parameter: Parameter, field: protobuf.Field): Parameter {
  const notes = [field.comment];
  if (field.partOf !== null && field.options?.["proto3_optional"] !== true) {
    notes.push(`Member of oneof ${field.partOf.name}: set at most one of its fields.`);
  }
  const description = notes.filter(Boolean).join(" ");
  return description === "" ? parameter : { ...parameter, description };
}
