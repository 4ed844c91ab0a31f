/** The OpenAPI 3.1 document of the route table, and its route on the admin listener. */
export {
  buildOpenApiDocument,
  type OpenApiDocument,
  type OpenApiInfo,
} from "./document.js";
export { type JsonSchema, SchemaRegistry, type SchemaStyle, styleOf } from "./json-schema.js";
export { OPENAPI_PATH, registerOpenApi } from "./route.js";
