/**
 * Everything a route needs to cross between HTTP/JSON and NATS/protobuf,
 * compiled once at start: the request binding, the reply and error printers
 * for the route's JsonOptions. Per request it runs closures only.
 */
import protobuf from "protobufjs";
import type { RouteConfig } from "../config/types.js";
import { TurnoutError } from "../errors.js";
import { Binding, type Query } from "./binding.js";
import { optionBits, type Writer } from "./kinds.js";
import { MessageKind, messageKindOf } from "./message-codec.js";
import { printWith } from "./message-json.js";
import { badReplyError, isTooDeep } from "./problems.js";
import { findMessage } from "./protos.js";

export interface RouteCodec {
  readonly requestType: protobuf.Type;
  readonly responseType: protobuf.Type;
  /** undefined when the route has no `error` type. */
  readonly errorType: protobuf.Type | undefined;
  /**
   * The binary request: body per `route.body`, then path params, then query
   * params (not with `body: "*"`). `body` is the parsed JSON (parseJsonBody) or
   * undefined when the request had none. Bad values are 400s: BAD_FIELD (body,
   * with its JSON path), BAD_PARAM (naming the parameter), BAD_JSON (a
   * non-empty body on a route without `body`).
   */
  encodeRequest(
    params: Readonly<Record<string, string>>,
    query: Readonly<Query>,
    body: unknown,
  ): Uint8Array;
  /** A worker's reply -> JSON text per `route.json`; undecodable bytes are TURNOUT_ERR_BAD_REPLY. */
  decodeResponse(bytes: Uint8Array): string;
  /** The same for an error reply's body; undefined when the route has no `error` type. */
  decodeError(bytes: Uint8Array): string | undefined;
}

type RouteSpec = Pick<
  RouteConfig,
  "name" | "request" | "response" | "error" | "body" | "pathParams" | "json"
>;

export function compileRouteCodec(root: protobuf.Root, route: RouteSpec): RouteCodec {
  const lookup = (name: string, role: string): protobuf.Type => {
    const type = findMessage(root, name);
    if (type === undefined) {
      throw new TurnoutError(
        "TURNOUT_ERR_CONFIG",
        `route ${route.name}: ${role} type ${name} is not a message in the loaded protos`,
      );
    }
    return type;
  };
  const requestType = lookup(route.request, "request");
  const responseType = lookup(route.response, "response");
  const errorType = route.error === undefined ? undefined : lookup(route.error, "error");
  const requestKind = messageKindOf(requestType);
  if (!(requestKind instanceof MessageKind)) {
    throw new TurnoutError(
      "TURNOUT_ERR_CONFIG",
      `route ${route.name}: request type ${route.request} is a well-known type; use a message of your own`,
    );
  }
  const bits = optionBits(route.json);
  return new CompiledRoute(
    requestType,
    responseType,
    errorType,
    new Binding(requestKind, route),
    messageKindOf(responseType).writer(bits),
    errorType === undefined ? undefined : messageKindOf(errorType).writer(bits),
  );
}

class CompiledRoute implements RouteCodec {
  /** Type names without the leading dot, for errors; computed once, not per reply. */
  readonly #responseName: string;
  readonly #errorName: string;

  constructor(
    readonly requestType: protobuf.Type,
    readonly responseType: protobuf.Type,
    readonly errorType: protobuf.Type | undefined,
    readonly binding: Binding,
    readonly responseWriter: Writer,
    readonly errorWriter: Writer | undefined,
  ) {
    this.#responseName = nameOf(responseType);
    this.#errorName = errorType === undefined ? "" : nameOf(errorType);
  }

  encodeRequest(
    params: Readonly<Record<string, string>>,
    query: Readonly<Query>,
    body: unknown,
  ): Uint8Array {
    try {
      return this.requestType.encode(this.binding.bind(params, query, body)).finish();
    } catch (error) {
      // A 500 would also count against the route's breaker: one client could open it.
      if (!isTooDeep(error)) throw error;
      throw new TurnoutError(
        "TURNOUT_ERR_BAD_JSON",
        "the request nests messages too deeply (protobuf's limit is 100 levels)",
        { cause: error },
      );
    }
  }

  decodeResponse(bytes: Uint8Array): string {
    return decode(this.responseType, this.#responseName, this.responseWriter, bytes);
  }

  decodeError(bytes: Uint8Array): string | undefined {
    if (this.errorType === undefined) return undefined;
    return decode(this.errorType, this.#errorName, this.errorWriter!, bytes);
  }
}

function nameOf(type: protobuf.Type): string {
  return type.fullName.replace(/^\./, "");
}

function decode(type: protobuf.Type, name: string, writer: Writer, bytes: Uint8Array): string {
  let message: protobuf.Message;
  try {
    // Unknown fields are kept (not dropped, protobufjs's default) so that a
    // known field with the wrong wire type is seen and refused when printing.
    const reader = protobuf.Reader.create(bytes);
    reader.discardUnknown = false;
    message = type.decode(reader);
  } catch (error) {
    const detail = error instanceof Error ? error.message : String(error);
    throw badReplyError(name, detail, error);
  }
  return printWith(writer, message, name);
}
