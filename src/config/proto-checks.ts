/**
 * Checks a route against the compiled protos: its types exist, each path param
 * binds to a field of the request, and `body` names a field that can hold a JSON
 * body. A mismatch is a config error at start, never a runtime surprise.
 */
import protobuf from "protobufjs";
import { MessageKind, messageKindOf } from "../codec/message-codec.js";
import { findMessage } from "../codec/protos.js";
import { WRAPPERS } from "../codec/well-known.js";
import type { Field } from "./field.js";
import type { ReadRoute } from "./route.js";
import { didYouMean } from "./suggest.js";

/** Well-known types whose JSON form is a single string, number or bool (a path param can fill them). */
const SCALAR_LIKE = new Set(
  ["Timestamp", "Duration", "FieldMask", ...WRAPPERS].map((name) => `google.protobuf.${name}`),
);

/** The compiled protos; `complete` false when a protos entry failed (see LoadedProtos). */
export interface RouteProtos {
  readonly root: protobuf.Root;
  readonly complete: boolean;
}

export function checkRouteProtos(route: ReadRoute, protos: RouteProtos): void {
  const { draft, field } = route;
  const request = findType(field.child("request"), draft.request, protos);
  findType(field.child("response"), draft.response, protos);
  findType(field.child("error"), draft.error, protos);
  if (request === undefined) return;
  if (!(messageKindOf(request) instanceof MessageKind)) {
    field
      .child("request")
      .problem(
        `${draft.request} is a well-known type with a JSON form of its own: use a message of your own that holds it`,
      );
    return;
  }
  // A path param fills its field in every request: required there is fine.
  const required = requiredField(request, new Set(draft.pathParams ?? []), "", new Set());
  if (required !== undefined) {
    field
      .child("request")
      .problem(
        `${draft.request} has a proto2 required field, ${required}: a request without it would be sent with the default in its place, silently; make it optional`,
      );
  }
  const params = draft.pathParams ?? [];
  for (const param of params) {
    const problem = paramProblem(request, param);
    if (problem !== undefined) field.child("path").problem(`:${param} ${problem}`);
  }
  const body = draft.body === "*" ? undefined : draft.body;
  for (const problem of oneofProblems(request, params, body)) field.child("path").problem(problem);
  if (draft.body !== undefined && draft.body !== "*") {
    const problem = bodyProblem(request, draft.body);
    if (problem !== undefined) field.child("body").problem(problem);
  }
}

/**
 * The field a dotted name (`address.city`) reaches from `type`, or why it reaches
 * none. Names are the .proto field names (as protoc's query binding uses them).
 */
export function resolveFieldPath(
  type: protobuf.Type,
  dotted: string,
): protobuf.Field | { readonly problem: string } {
  let current = type;
  const parts = dotted.split(".");
  for (const [i, part] of parts.entries()) {
    const field = ownField(current, part);
    if (field === undefined) {
      const hint = didYouMean(part, Object.keys(current.fields));
      return { problem: `matches no field of ${current.fullName.slice(1)}${hint}` };
    }
    if (i === parts.length - 1) return field;
    if (!(field.resolvedType instanceof protobuf.Type) || field.repeated || field.map) {
      return { problem: `goes through "${part}", which is not a single message field` };
    }
    current = field.resolvedType;
  }
  return { problem: "is empty" };
}

function paramProblem(request: protobuf.Type, param: string): string | undefined {
  const field = resolveFieldPath(request, param);
  if (!(field instanceof protobuf.Field)) return field.problem;
  if (field.repeated || field.map) return `binds to "${field.name}", which is repeated`;
  const type = field.resolvedType;
  if (type === null || type instanceof protobuf.Enum || SCALAR_LIKE.has(type.fullName.slice(1))) {
    return undefined;
  }
  return `binds to "${field.name}", a ${type.fullName.slice(1)} message: one path segment can't fill it`;
}

/** The dotted path of a required field in `type` or a message it holds that no path param fills, if any. */
function requiredField(
  type: protobuf.Type,
  filled: ReadonlySet<string>,
  prefix: string,
  seen: Set<protobuf.Type>,
): string | undefined {
  seen.add(type);
  for (const field of type.fieldsArray) {
    const path = `${prefix}${field.name}`;
    if (field.required && !filled.has(path)) return path;
    const inner = field.resolvedType;
    if (inner instanceof protobuf.Type && !seen.has(inner)) {
      const below = requiredField(inner, filled, `${path}.`, seen);
      if (below !== undefined) return below;
    }
  }
  return undefined;
}

/** A field by its .proto name; never a property Object.prototype lends (`constructor`). */
function ownField(type: protobuf.Type, name: string): protobuf.Field | undefined {
  return Object.hasOwn(type.fields, name) ? type.fields[name] : undefined;
}

/**
 * Every request fills every path param, so two params bound to members of one
 * oneof would set two of its members at once: the codec refuses that, and the
 * route would answer every request 400. A body field is filled by every
 * request that has a body, so it counts as a member too.
 */
function oneofProblems(
  request: protobuf.Type,
  params: readonly string[],
  body: string | undefined,
): string[] {
  const byOneof = new Map<protobuf.OneOf, string[]>();
  const bound: Array<readonly [string, string]> = params.map((param) => [param, `:${param}`]);
  if (body !== undefined) bound.push([body, `the body field "${body}"`]);
  for (const [path, name] of bound) {
    const field = resolveFieldPath(request, path);
    const oneof = field instanceof protobuf.Field ? field.partOf : null;
    if (oneof !== null) byOneof.set(oneof, [...(byOneof.get(oneof) ?? []), name]);
  }
  return [...byOneof]
    .filter(([, members]) => members.length > 1)
    .map(([oneof, members]) => {
      const owner = oneof.parent?.fullName.slice(1) ?? request.fullName.slice(1);
      return `${members.join(" and ")} bind to members of the oneof "${oneof.name}" of ${owner}, which holds one of them at most: every request would be refused (400)`;
    });
}

function bodyProblem(request: protobuf.Type, body: string): string | undefined {
  const field = ownField(request, body);
  const typeName = request.fullName.slice(1);
  if (field === undefined) {
    const hint = didYouMean(body, Object.keys(request.fields));
    return `"${body}" is not a field of ${typeName}${hint}; use "*" for the whole message`;
  }
  if (field.repeated || field.map || field.resolvedType instanceof protobuf.Type) return undefined;
  return `"${body}" is a ${field.type} field; a body binds to "*", a message, a repeated or a map field`;
}

function findType(
  f: Field,
  name: string | undefined,
  { root, complete }: RouteProtos,
): protobuf.Type | undefined {
  if (name === undefined) return undefined;
  const type = findMessage(root, name);
  if (type?.fullName === `.${name}`) return type;
  // The type meant may be in the protos entry that failed (reported, saying so).
  if (!complete) return undefined;
  if (type === undefined && isEnum(root, name)) {
    f.problem(`"${name}" is an enum: a request, response or error type is a message`);
  } else if (type === undefined) {
    f.problem(`no message type "${name}" in the protos${typeHint(name, root)}`);
  } else {
    // protobufjs also finds partial names (`v1.User`), which turn ambiguous as protos are added.
    f.problem(`"${name}" must be the fully qualified name: ${type.fullName.slice(1)}`);
  }
  return undefined;
}

function isEnum(root: protobuf.Root, name: string): boolean {
  try {
    return root.lookup(name) instanceof protobuf.Enum;
  } catch {
    return false;
  }
}

const messageNames = new WeakMap<protobuf.Root, string[]>();

function typeHint(name: string, root: protobuf.Root): string {
  let names = messageNames.get(root);
  if (names === undefined) {
    names = [];
    collect(root, names);
    messageNames.set(root, names);
  }
  // A right name in the wrong package is the likeliest slip: `v1.User` vs `users.v1.User`.
  const simple = name.slice(name.lastIndexOf(".") + 1);
  const samePlace = names.filter((n) => n.endsWith(`.${simple}`));
  return samePlace.length === 1 ? ` (did you mean "${samePlace[0]}"?)` : didYouMean(name, names);
}

function collect(ns: protobuf.NamespaceBase, into: string[]): void {
  for (const child of ns.nestedArray) {
    if (child instanceof protobuf.Type) into.push(child.fullName.slice(1));
    if (child instanceof protobuf.Namespace) collect(child, into);
  }
}
