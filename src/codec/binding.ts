/**
 * HTTP request -> request message, bound as grpc-gateway binds it: the body
 * first (`*`: the whole message; a name: that top-level field), then path
 * params, then query params for fields neither bound already (none with `*`).
 * Field paths are resolved at start; per request only map lookups remain.
 */
import { TurnoutError } from "../errors.js";
import { type FieldCodec, isJsonObject, ownField, setKey } from "./fields.js";
import { MessageKind, twoOfOneof } from "./message-codec.js";
import { readWith } from "./message-json.js";
import { BadValue, badParamError } from "./problems.js";
import { type ParsedQuery, UNDECODABLE } from "./query-string.js";

/** A path param's field: the singular message fields leading to it, then the leaf. */
interface ParamTarget {
  readonly param: string;
  readonly steps: readonly FieldCodec[];
  readonly leaf: FieldCodec;
}

export type Query = Record<string, string | string[] | undefined> &
  Pick<ParsedQuery, typeof UNDECODABLE>;

type Plain = Record<string, unknown>;

const NO_BODY = 0;
const WHOLE_BODY = 1;
const FIELD_BODY = 2;

export class Binding {
  readonly #root: MessageKind;
  readonly #readRoot: (value: unknown) => unknown;
  readonly #mode: number;
  readonly #bodyField: FieldCodec | undefined;
  /** What a body of JSON null sets the body field to; undefined: null leaves it unset. */
  readonly #bodyNull: unknown;
  readonly #paramTargets: readonly ParamTarget[];
  readonly #routeName: string;
  /** Reused while resolving one query key (no allocation for undotted keys). */
  readonly #chain: FieldCodec[] = [];

  constructor(
    root: MessageKind,
    route: { name: string; body: string | undefined; pathParams: readonly string[] },
  ) {
    this.#root = root;
    this.#readRoot = root.read;
    this.#routeName = route.name;
    this.#mode = route.body === undefined ? NO_BODY : route.body === "*" ? WHOLE_BODY : FIELD_BODY;
    if (this.#mode === FIELD_BODY) {
      const field = root.byKey.get(route.body!);
      if (field === undefined) this.#config(`body "${route.body}" is not a field of ${root.label}`);
      this.#bodyField = field;
      if (!field.repeated && field.map === undefined) this.#bodyNull = field.kind.nullValue;
    }
    this.#paramTargets = route.pathParams.map((param) => this.#target(param));
  }

  #config(message: string): never {
    throw new TurnoutError("TURNOUT_ERR_CONFIG", `route ${this.#routeName}: ${message}`);
  }

  #target(param: string): ParamTarget {
    const steps: FieldCodec[] = [];
    let kind = this.#root;
    const names = param.split(".");
    for (let i = 0; i < names.length; i++) {
      const field = kind.byKey.get(names[i]!);
      if (field === undefined) {
        this.#config(`path parameter "${param}" is not a field of ${this.#root.label}`);
      }
      if (i === names.length - 1) {
        if (field.repeated || field.map) {
          this.#config(
            `path parameter "${param}" names a repeated or map field; it binds one value`,
          );
        }
        if (field.kind.readParam === undefined) {
          this.#config(
            `path parameter "${param}" is a ${field.kind.label} field, which has no string form`,
          );
        }
        return { param, steps, leaf: field };
      }
      if (!(field.kind instanceof MessageKind) || field.repeated || field.map) {
        this.#config(`path parameter "${param}": ${names[i]} is not a singular message field`);
      }
      steps.push(field);
      kind = field.kind;
    }
    return this.#config(`path parameter "${param}" is empty`);
  }

  /** The plain request message for `Type.encode`; throws the 400s. */
  bind(params: Readonly<Record<string, string>>, query: Readonly<Query>, body: unknown): Plain {
    const message = this.#bindBody(body);
    for (const target of this.#paramTargets) {
      const text = params[target.param];
      if (text === "") throw emptyParam(target.param);
      if (text !== undefined) setParam(message, target.steps, target.leaf, target.param, text);
    }
    if (this.#mode !== WHOLE_BODY) {
      const undecodable = query[UNDECODABLE];
      for (const key in query) {
        const value = query[key];
        if (value !== undefined) this.#bindQuery(message, key, value, undecodable);
      }
    }
    return message;
  }

  #bindBody(body: unknown): Plain {
    if (this.#mode === WHOLE_BODY) {
      return body === undefined ? {} : (readWith(this.#readRoot, body, "$") as Plain);
    }
    const message: Plain = {};
    if (this.#mode === FIELD_BODY) {
      const field = this.#bodyField!;
      // undefined: no body at all. A body that is JSON null reads as null
      // does in an object: unset, or NULL_VALUE for a Value or NullValue field.
      if (body !== undefined) {
        const value = body !== null ? readWith(field.read, body, "$") : this.#bodyNull;
        if (value !== undefined) {
          message[field.name] = value;
          if (field.oneof !== undefined) message[field.oneof] = field.name;
        }
      }
    } else if (!isEmptyBody(body)) {
      throw new TurnoutError(
        "TURNOUT_ERR_BAD_JSON",
        `route ${this.#routeName} takes no request body; send the values as path or query parameters`,
      );
    }
    return message;
  }

  #bindQuery(
    message: Plain,
    key: string,
    value: string | string[],
    undecodable: ReadonlySet<string> | undefined,
  ): void {
    const chain = this.#chain;
    chain.length = 0;
    // `labels[team]=core` sets one entry of a map field, as grpc-gateway reads it.
    const entry = key.charCodeAt(key.length - 1) === CLOSE_BRACKET ? MAP_ENTRY.exec(key) : null;
    const path = entry === null ? key : entry[1]!;
    let kind = this.#root;
    let start = 0;
    for (;;) {
      const dot = path.indexOf(".", start);
      const field = kind.byKey.get(
        dot === -1 ? (start === 0 ? path : path.slice(start)) : path.slice(start, dot),
      );
      if (field === undefined) return; // unknown query params are ignored, as grpc-gateway does
      chain.push(field);
      if (dot === -1) break;
      if (!(field.kind instanceof MessageKind) || field.repeated || field.map) {
        throw badParamError(key, `${field.protoName} is not a singular message field`);
      }
      kind = field.kind;
      start = dot + 1;
    }
    if (this.#isBound(chain)) return;
    if (undecodable?.has(key)) {
      throw badParamError(key, "the value is not valid percent-encoded UTF-8");
    }
    const leaf = chain[chain.length - 1]!;
    const steps = chain.length - 1;
    if (entry !== null || leaf.map !== undefined) {
      bindMapEntry(walk(message, chain, steps, key), leaf, key, entry?.[2], value);
      return;
    }
    if (leaf.kind.readParam === undefined) {
      throw badParamError(key, `a ${leaf.kind.label} field cannot be set from a query parameter`);
    }
    if (leaf.repeated) {
      const target = walk(message, chain, steps, key);
      let list = ownField(target, leaf.name) as unknown[] | undefined;
      if (list === undefined) {
        list = [];
        target[leaf.name] = list;
      }
      if (typeof value === "string") list.push(convert(leaf, key, value));
      else for (const item of value) list.push(convert(leaf, key, item));
      return;
    }
    if (typeof value !== "string") {
      if (value.length !== 1) {
        throw badParamError(
          key,
          `given ${value.length} times, but ${leaf.protoName} is not repeated`,
        );
      }
      value = value[0]!;
    }
    const target = walk(message, chain, steps, key);
    if (ownField(target, leaf.name) !== undefined) {
      throw badParamError(key, `${leaf.protoName} is given twice`);
    }
    setLeaf(target, leaf, key, convert(leaf, key, value));
  }

  /** Whether the body field or a path param already binds this chain or a prefix of it. */
  #isBound(chain: readonly FieldCodec[]): boolean {
    if (this.#mode === FIELD_BODY && chain[0] === this.#bodyField) return true;
    for (const target of this.#paramTargets) {
      const length = target.steps.length + 1;
      if (chain.length < length) continue;
      let same = chain[length - 1] === target.leaf;
      for (let i = 0; same && i < target.steps.length; i++) same = chain[i] === target.steps[i];
      if (same) return true;
    }
    return false;
  }
}

/** No body, or one that says nothing: null or {} (the JSON string "" is a value, refused like 0). */
function isEmptyBody(body: unknown): boolean {
  if (body === undefined || body === null) return true;
  if (!isJsonObject(body)) return false;
  for (const _ in body) return false;
  return true;
}

const CLOSE_BRACKET = 0x5d;
/** `path[key]`: the key holds no bracket (grpc-gateway's valuesKeyRegexp, anchored). */
const MAP_ENTRY = /^([^[\]]+)\[([^[\]]*)\]$/;

/** One map entry from `name[key]=value`; a map named without a key is refused, saying how. */
function bindMapEntry(
  target: Plain,
  leaf: FieldCodec,
  name: string,
  key: string | undefined,
  value: string | string[],
): void {
  const map = leaf.map;
  if (map === undefined) throw badParamError(name, `${leaf.protoName} is not a map field`);
  if (key === undefined) {
    throw badParamError(name, `${leaf.protoName} is a map: set its entries as ${name}[KEY]=VALUE`);
  }
  if (leaf.kind.readParam === undefined) {
    throw badParamError(name, `a map of ${leaf.kind.label} cannot be set from query parameters`);
  }
  if (typeof value !== "string") {
    if (value.length !== 1) throw badParamError(name, `given ${value.length} times`);
    value = value[0]!;
  }
  let mapKey: string;
  try {
    mapKey = map.read(key);
  } catch (error) {
    if (error instanceof BadValue) throw badParamError(name, error.detail);
    throw error;
  }
  let entries = ownField(target, leaf.name) as Plain | undefined;
  if (entries === undefined) {
    entries = {};
    setLeaf(target, leaf, name, entries);
  }
  if (Object.hasOwn(entries, mapKey)) throw badParamError(name, `map key ${mapKey} is given twice`);
  setKey(entries, mapKey, convert(leaf, name, value));
}

function convert(leaf: FieldCodec, name: string, text: string): unknown {
  try {
    return leaf.kind.readParam!(text);
  } catch (error) {
    if (error instanceof BadValue) throw badParamError(name, error.detail);
    throw error;
  }
}

/** The object the leaf goes into, creating the messages of `steps[0..count)` on the way. */
function walk(message: Plain, steps: readonly FieldCodec[], count: number, name: string): Plain {
  let target = message;
  for (let i = 0; i < count; i++) {
    const step = steps[i]!;
    let next = ownField(target, step.name) as Plain | undefined;
    if (next === undefined) {
      next = {};
      setLeaf(target, step, name, next);
    }
    target = next;
  }
  return target;
}

/** Sets a field, refusing a second member of its oneof. */
function setLeaf(target: Plain, field: FieldCodec, name: string, value: unknown): void {
  if (field.oneof !== undefined) {
    const other = ownField(target, field.oneof);
    if (other !== undefined && other !== field.name) {
      throw badParamError(name, twoOfOneof(field.oneof, other as string, field.name).detail);
    }
    target[field.oneof] = field.name;
  }
  target[field.name] = value;
}

/**
 * The router matches `/users/` to `/users/:id` with an empty id. A legacy
 * service's router mostly answers 404 there, and a worker would get the field's
 * default (an id "" it may well look up): no route is what the client asked for.
 */
function emptyParam(param: string): TurnoutError {
  return new TurnoutError("TURNOUT_ERR_NOT_FOUND", `path parameter "${param}" is empty`, {
    field: param,
  });
}

function setParam(
  message: Plain,
  steps: readonly FieldCodec[],
  leaf: FieldCodec,
  name: string,
  text: string,
): void {
  setLeaf(walk(message, steps, steps.length, name), leaf, name, convert(leaf, name, text));
}
