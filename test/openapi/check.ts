/**
 * What the OpenAPI tests share: the official OpenAPI 3.1 schema check, `$ref`
 * resolution, and ajv (2020-12, strict) validators for any schema inside a
 * generated document, reached by its JSON pointer so that the document's own
 * `#/components/...` refs resolve as they would for a client.
 */

import { writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { Validator } from "@seriousme/openapi-schema-validator";
import { Ajv2020, type ValidateFunction } from "ajv/dist/2020.js";
import addFormatsModule from "ajv-formats";
import type { OpenApiDocument } from "../../src/openapi/index.js";
import { PROTO_DIR } from "../helpers/stack.js";
import { tempDir } from "../helpers/temp-dir.js";

export const FIXTURE_PROTOS = resolve(dirname(fileURLToPath(import.meta.url)), "fixtures");

// ajv-formats is CommonJS: under NodeNext its default import is the module object.
const addFormats = addFormatsModule as unknown as typeof addFormatsModule.default;

const DOC_ID = "urn:turnout:openapi";
/** The document's own top-level keys: no JSON Schema meaning, so strict mode must not refuse them. */
const DOCUMENT_KEYS = ["openapi", "info", "jsonSchemaDialect", "tags", "paths", "components"];

/** A routes.yaml over the example and the fixture protos, in a fresh temp dir. */
export function writeFixtureRoutes(routesYaml: string, extra = ""): string {
  const dir = tempDir("turnout-openapi");
  const file = join(dir, "routes.yaml");
  const protos = JSON.stringify([PROTO_DIR, FIXTURE_PROTOS]);
  writeFileSync(
    file,
    `version: 1\nprotos: ${protos}\nnats:\n  servers: [nats://127.0.0.1:4222]\n${extra}routes:\n${routesYaml}`,
  );
  return file;
}

/** The official OpenAPI 3.1 schema's verdict: [] when the document is valid. */
export async function openApiErrors(doc: OpenApiDocument): Promise<unknown[]> {
  const result = await new Validator().validate(
    structuredClone(doc) as unknown as Record<string, unknown>,
  );
  return result.valid ? [] : (result.errors as unknown[]);
}

/** Every `$ref` in the document that points nowhere inside it. */
export function danglingRefs(doc: OpenApiDocument): string[] {
  const refs: string[] = [];
  const walk = (node: unknown): void => {
    if (typeof node !== "object" || node === null) return;
    for (const [key, value] of Object.entries(node)) {
      if (key === "$ref" && typeof value === "string") refs.push(value);
      else walk(value);
    }
  };
  walk(doc);
  return refs.filter(
    (ref) =>
      !ref.startsWith("#/") || at(doc, ref.slice(2).split("/").map(unescapePointer)) === undefined,
  );
}

function unescapePointer(segment: string): string {
  return segment.replace(/~1/g, "/").replace(/~0/g, "~");
}

function at(node: unknown, segments: readonly string[]): unknown {
  let here = node;
  for (const segment of segments) {
    if (typeof here !== "object" || here === null) return undefined;
    here = (here as Record<string, unknown>)[segment];
  }
  return here;
}

export interface DocumentSchemas {
  /** The validator of the schema at these path segments (unescaped) of the document. */
  at(...segments: string[]): ValidateFunction;
  /** The success or error body schema of one operation, by status and media type. */
  response(path: string, method: string, status: string, mediaType?: string): ValidateFunction;
  requestBody(path: string, method: string): ValidateFunction;
}

export function documentSchemas(doc: OpenApiDocument): DocumentSchemas {
  // strictRequired would refuse `not: {required: [peer]}`, the oneof rule, for naming no property.
  const ajv = new Ajv2020({ strict: true, strictRequired: false, allErrors: true });
  addFormats(ajv);
  ajv.addVocabulary(DOCUMENT_KEYS);
  ajv.addSchema({ ...structuredClone(doc), $id: DOC_ID });
  const schemaAt = (...segments: string[]): ValidateFunction => {
    if (at(doc, segments) === undefined) throw new Error(`nothing at ${segments.join(" / ")}`);
    const pointer = segments.map((s) => s.replace(/~/g, "~0").replace(/\//g, "~1")).join("/");
    return ajv.compile({ $ref: `${DOC_ID}#/${pointer}` });
  };
  return {
    at: schemaAt,
    response: (path, method, status, mediaType = "application/json") =>
      schemaAt("paths", path, method, "responses", status, "content", mediaType, "schema"),
    requestBody: (path, method) =>
      schemaAt("paths", path, method, "requestBody", "content", "application/json", "schema"),
  };
}

/** An operation's parameters, by name. */
export function parametersOf(
  doc: OpenApiDocument,
  path: string,
  method: string,
): Map<string, Record<string, unknown>> {
  const op = doc.paths[path]?.[method] as { parameters?: Array<Record<string, unknown>> };
  if (op === undefined) throw new Error(`no ${method} ${path}`);
  return new Map((op.parameters ?? []).map((p) => [p.name as string, p]));
}

/** An operation's responses, by status. */
export function responsesOf(
  doc: OpenApiDocument,
  path: string,
  method: string,
): Record<string, { headers?: object; content?: Record<string, { schema: unknown }> }> {
  const op = doc.paths[path]?.[method] as { responses?: object } | undefined;
  if (op?.responses === undefined) throw new Error(`no ${method} ${path}`);
  return op.responses as never;
}

/** A component schema, by name. */
export function component(doc: OpenApiDocument, name: string): Record<string, unknown> {
  const schema = doc.components.schemas[name];
  if (schema === undefined)
    throw new Error(`no component ${name}: ${Object.keys(doc.components.schemas)}`);
  return schema;
}
