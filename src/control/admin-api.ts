/**
 * The `/admin` API on the admin listener. Every call needs
 * `Authorization: Bearer <TURNOUT_ADMIN_TOKEN>`: without a configured token the
 * API is locked (403), a missing or wrong token is 401. Errors are
 * problem+json like the gateway's.
 */
import type { FastifyInstance, FastifyRequest } from "fastify";
import { TurnoutError } from "../errors.js";
import type { MismatchLog } from "../shadow/mismatch-log.js";
import type { AdminToken } from "./admin-token.js";

export interface AdminApiDeps {
  readonly token: AdminToken;
  readonly routeNames: readonly string[];
  readonly mismatches: MismatchLog;
}

export function registerAdminApi(app: FastifyInstance, deps: AdminApiDeps): void {
  const known = new Set(deps.routeNames);
  const routeOf = (req: FastifyRequest): string => {
    const name = (req.params as { name: string }).name;
    if (!known.has(name)) {
      throw new TurnoutError("TURNOUT_ERR_NOT_FOUND", `no route named "${name}"`, {
        field: "name",
      });
    }
    return name;
  };

  app.register(async (admin) => {
    admin.addHook("onRequest", async (req) => authorize(deps.token, req));

    admin.get("/admin/routes/:name/mismatches", async (req) => {
      const route = routeOf(req);
      return { route, mismatches: deps.mismatches.list(route) };
    });
  });
}

function authorize(token: AdminToken, req: FastifyRequest): void {
  const result = token.checkBearer(req.headers.authorization);
  if (result === "ok") return;
  if (result === "unconfigured") {
    throw new TurnoutError(
      "TURNOUT_ERR_ADMIN_LOCKED",
      "the admin API is locked: set TURNOUT_ADMIN_TOKEN",
    );
  }
  throw new TurnoutError("TURNOUT_ERR_UNAUTHORIZED", `${result} bearer token`);
}
