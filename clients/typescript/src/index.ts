/**
 * `@dota-orchestrator/client`: a typed client for the dota-orchestrator API, generated from its
 * OpenAPI document (`schema.d.ts`), with the polling the API asks for in one place. React hooks
 * are in `@dota-orchestrator/client/react`.
 */
export {
  createClient,
  MIN_POLL_MS,
  retryAfterMs,
  type ClientOptions,
  type OrchestratorClient,
  type PollOptions,
  type PollResult,
  type PostResult,
  type RequestOptions,
} from "./client.js";
export { ApiError, FailedError } from "./errors.js";
export {
  SEEN_EVENTS,
  type LiveConnection,
  type LiveEvent,
  type LiveFeed,
  type LiveFilter,
  type LiveOptions,
  type WebSocketLike,
} from "./live.js";
export {
  isComplete,
  resourceKey,
  type Api,
  type Id,
  type Resource,
  type ResourceBodies,
  type ResourceBody,
  type Schemas,
} from "./resources.js";
export type { components, operations, paths } from "./schema.js";

import type { components } from "./schema.js";
/** `GET /api/queue/status`. */
export type QueueStatus = components["schemas"]["QueueStatus"];
/** One service in {@link QueueStatus}: `activeSignatures` is the number of jobs being fetched now. */
export type ServiceStatus = components["schemas"]["ServiceStatus"];
/** A team import's progress. */
export type Progress = components["schemas"]["Progress"];
/** A team import's full view (`GET /api/teams/{id}/matches`). */
export type TeamView = components["schemas"]["TeamView"];
