/**
 * Serves the OpenAPI document at `GET /openapi.json`. The document is built
 * once at start and serialized here once: every request sends the same text.
 */
import type { FastifyInstance } from "fastify";

export const OPENAPI_PATH = "/openapi.json";

export function registerOpenApi(app: FastifyInstance, document: object): void {
  const text = JSON.stringify(document);
  app.get(OPENAPI_PATH, async (_req, reply) =>
    reply.header("content-type", "application/json; charset=utf-8").send(text),
  );
}
