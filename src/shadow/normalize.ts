/**
 * Puts an answer's JSON into one canonical form before it is compared, so
 * two services that print the same message differently (key order, int64 as
 * string or number, enum name or number, defaults present or omitted on
 * fields without presence, proto or lowerCamel names) compare equal: the body is read as the route's protobuf
 * type, put through binary (what the NATS path does to a reply) and printed
 * back as canonical ProtoJSON.
 */
import type protobuf from "protobufjs";
import { compileMessageCodec, findMessage, type MessageCodec } from "../codec/index.js";
import { CANONICAL_JSON, type RouteConfig } from "../config/types.js";
import { TurnoutError } from "../errors.js";
import type { FieldDiff } from "./json-diff.js";
import { spellingDiffs } from "./spelling.js";

export interface Normalizer {
  /**
   * `value` (an answer's body as parseJsonBody read it) in canonical form, or
   * undefined when it does not fit the type for `status`, or there is none:
   * the response type below 400, the route's `error` type from 400 on.
   */
  normalize(status: number, value: unknown): unknown;
  /** The fields two bodies that normalize spell as different JSON types (see spelling.ts). */
  spellingDiffs(status: number, primary: unknown, mirror: unknown, limit: number): FieldDiff[];
}

/** A normalizer that never applies: bodies are compared as plain JSON. */
export const PLAIN_JSON: Normalizer = { normalize: () => undefined, spellingDiffs: () => [] };

export function compileNormalizer(
  root: protobuf.Root,
  route: Pick<RouteConfig, "name" | "response" | "error">,
): Normalizer {
  const response = canonicalizer(root, route.name, route.response);
  const error =
    route.error === undefined ? undefined : canonicalizer(root, route.name, route.error);
  const typeFor = (status: number) => (status < 400 ? response : error);
  return {
    normalize: (status, value) => typeFor(status)?.canonical(value),
    spellingDiffs: (status, primary, mirror, limit) => {
      const type = typeFor(status)?.type;
      return type === undefined ? [] : spellingDiffs(type, primary, mirror, limit);
    },
  };
}

function canonicalizer(root: protobuf.Root, route: string, name: string) {
  const type = findMessage(root, name);
  if (type === undefined) {
    throw new TurnoutError(
      "TURNOUT_ERR_CONFIG",
      `route ${route}: type ${name} is not a message in the loaded protos`,
    );
  }
  const codec = compileMessageCodec(type);
  return { type, canonical: (value: unknown) => canonical(type, codec, value) };
}

function canonical(type: protobuf.Type, codec: MessageCodec, value: unknown): unknown {
  try {
    const message = type.decode(type.encode(codec.fromJson(value, "$")).finish());
    return codec.toJsonValue(message, CANONICAL_JSON);
  } catch {
    // Not this type (or not printable as it): the caller compares plain JSON.
    return undefined;
  }
}
