/**
 * The JSON <-> protobuf codec: strict ProtoJSON in (request bodies, and URL
 * parameters bound as grpc-gateway binds them), JSON per the route's
 * JsonOptions out. Everything is compiled once per type and route at start;
 * binary encoding and decoding are protobufjs's own `Type.encode`/`decode`.
 *
 * Choices worth knowing:
 * - A route without `body` refuses a non-empty body (400 TURNOUT_ERR_BAD_JSON)
 *   instead of dropping it; no body, `null`, `""` and `{}` are accepted.
 * - Unknown query parameters are ignored (grpc-gateway does the same); with
 *   `body: "*"` every query parameter is ignored.
 * - google.protobuf.Any is supported for types in the loaded protos.
 * - A JS number past 2^53 in a body is refused ("send it as a string"): long
 *   digit runs reach the codec exact through parseJsonBody, so such a number
 *   came from an exponent form and may already be rounded.
 */
export type { Query } from "./binding.js";
export { isLosslessNumber, LosslessNumber, parseJsonBody } from "./json-body.js";
export { compileMessageCodec, type MessageCodec } from "./message-json.js";
export { findMessage, listProtoFiles, loadProtos } from "./protos.js";
export { type ParsedQuery, parseQueryString, UNDECODABLE } from "./query-string.js";
export { compileRouteCodec, type RouteCodec } from "./route-codec.js";
