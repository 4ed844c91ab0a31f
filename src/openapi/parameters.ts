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

export function routeParameters(route: RouteConfig, request: protobuf.Type): Parameter[] {
  return [
    ...route.pathParams.map((name) => pathParameter(route, request, name)),
    ...queryParameters(route, request),
    ...headerParameters(route),
  ];
}

/** What a subject token may not hold (src/routing/subject.ts): the gateway answers 400. */
const SUBJECT_TOKEN = "^[^.*>\\s\\u0000-\\u001f\\u007f-\\u009f]+$";

function pathParameter(route: RouteConfig, request: protobuf.Type, name: string): Parameter {
  const field = fieldByKey(request, name);
  let schema = paramSchema(field);
  if (schema === undefined)
    throw new TurnoutError(
      "TURNOUT_ERR_INTERNAL",
      `openapi: path param ${name} has no string form`,
    );
  if (route.subject.includes(`{${name}}`) && schema.type === "string" && !schema.enum) {
    schema = { ...schema, pattern: SUBJECT_TOKEN };
  }
  return withDescription({ name, in: "path", required: true, schema }, field);
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
    if (bound.has(field) || field.map) continue;
    const name = prefix + keyOf(field, names);
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
      "Becomes the message's Nats-Msg-Id: a retry with the same key within the stream's duplicate window is stored once and answered with the same seq and duplicate: true.",
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
