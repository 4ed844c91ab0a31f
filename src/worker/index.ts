/**
 * turnout/worker: write a NATS worker for a Turnout route in a few lines.
 *
 *   const worker = startWorker({
 *     nc, root, subject: "svc.users.get",
 *     requestType: "users.v1.GetUserRequest", responseType: "users.v1.User",
 *     errorType: "users.v1.Error",
 *     service: { name: "users", version: "1.4.0" }, // $SRV discovery
 *     async handle(req, ctx) {
 *       const user = await db.find(req.id);
 *       if (!user) throw new ServiceError(404, "user not found", { code: "not_found" });
 *       return user;
 *     },
 *   });
 *   await drainOnSignals(nc, [worker]); // on SIGTERM/SIGINT: answer what is in progress, drain
 *
 * startService({ nc, root, service, endpoints: [...] }) runs several endpoints
 * (each with subject, types and handle) as one service instance in discovery.
 */

/** Loads .proto files the way the gateway does (field names as written). */
export { loadProtos } from "../codec/protos.js";
export type { ServiceIdentity } from "./service.js";
export { ServiceError } from "./service-error.js";
export { DRAIN_SIGNALS, type DrainOptions, drainOnSignals } from "./signals.js";
export {
  DEFAULT_QUEUE,
  DEFAULT_SERVICE,
  type EndpointOptions,
  type ServiceOptions,
  startService,
  startWorker,
  type Worker,
  type WorkerContext,
  type WorkerOptions,
} from "./worker.js";
