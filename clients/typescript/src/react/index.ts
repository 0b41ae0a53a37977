"use client";

/**
 * `@dota-orchestrator/client/react`: hooks on TanStack Query 5 and a status component. Wrap
 * the app (or the part that uses them) in `<OrchestratorProvider baseUrl=...>`; the hooks take
 * no URL. React and `@tanstack/react-query` are peer dependencies of this entry only.
 */
export {
  OrchestratorProvider,
  useOrchestrator,
  type OrchestratorContextValue,
  type OrchestratorProviderProps,
} from "./context.js";
export {
  useLiveEvents,
  useMatch,
  usePlayer,
  usePlayerStats,
  useQueueStatus,
  useTeamImport,
  type TeamImportState,
  type UseLiveEventsOptions,
  type UseLiveEventsResult,
  type UseQueueStatusOptions,
  type UseQueueStatusResult,
  type UseResourceOptions,
  type UseResourceResult,
  type UseTeamImportOptions,
  type UseTeamImportResult,
} from "./hooks.js";
export { QueueStatusIndicator, activeRequests, type QueueStatusIndicatorProps } from "./QueueStatusIndicator.js";
