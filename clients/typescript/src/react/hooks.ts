"use client";

/**
 * The hooks, on TanStack Query 5. Each query function makes one request (a GET with the
 * client's `If-None-Match`), and the polling rules decide the next one through
 * `refetchInterval`:
 * - a 202 (`queued`) polls again after its `Retry-After`;
 * - a ready resource, a failed one ({@link FailedError}) or a complete team import stops;
 * - a team import that is stored but not complete polls its progress (`?include=progress`)
 *   every `progressIntervalMs`, and fetches the full view once when it is complete.
 * A failure is not retried by TanStack (it is final until `retryAt`); other errors are retried
 * as TanStack does by default, 5xx and network errors only.
 */
import { useQuery, type QueryKey } from "@tanstack/react-query";
import { useEffect, useState } from "react";
import type { PollResult } from "../client.js";
import { ApiError, FailedError } from "../errors.js";
import type { LiveConnection, LiveEvent, LiveFilter } from "../live.js";
import { isComplete, resourceKey, type Id, type Resource, type ResourceBody, type Schemas } from "../resources.js";
import { useOrchestrator } from "./context.js";

const NS = "dota-orchestrator";

/** Retries what may pass (5xx, network), never a failure or a refused request. */
function retry(count: number, error: Error): boolean {
  if (error instanceof FailedError) return false;
  if (error instanceof ApiError && error.status < 500) return false;
  return count < 3;
}

export interface UseQueueStatusOptions {
  /** Milliseconds between polls; 0 polls once. Default 2000. */
  pollingInterval?: number;
  /** Default true. */
  enabled?: boolean;
}

export interface UseQueueStatusResult {
  /** The last answer of `/api/queue/status`: `status.services[name].activeSignatures` is a count. */
  status: Schemas["QueueStatus"] | undefined;
  /** True until the first answer (or error) arrives. */
  isLoading: boolean;
  error: Error | null;
  /** True while the hook polls (enabled, with an interval). */
  isPolling: boolean;
}

/** Polls `/api/queue/status` every `pollingInterval` ms. Returns exactly `{ status, isLoading, error, isPolling }`. */
export function useQueueStatus(options: UseQueueStatusOptions = {}): UseQueueStatusResult {
  const { client, queryClient } = useOrchestrator();
  const { pollingInterval = 2000, enabled = true } = options;
  const polling = enabled && pollingInterval > 0;
  const query = useQuery(
    {
      queryKey: [NS, client.baseUrl, "queue-status"],
      queryFn: ({ signal }) => client.queueStatus({ signal }),
      enabled,
      refetchInterval: polling ? pollingInterval : false,
      retry,
    },
    queryClient,
  );
  return { status: query.data, isLoading: query.isLoading, error: query.error, isPolling: polling };
}

export interface UseResourceOptions {
  /** Default true. */
  enabled?: boolean;
}

export interface UseResourceResult<B> {
  /** The resource once ready. */
  data: B | undefined;
  /** `queued` while the service fetches it, `ready`, `failed` (see `error`), or `idle` before the first answer. */
  state: "idle" | "queued" | "ready" | "failed";
  /** `x-cache-status` of the last ready answer: `fresh`, or `stale; refresh queued`. */
  cacheStatus: string | null;
  isLoading: boolean;
  /** A {@link FailedError} (with `retryAt`) when the resource failed; an {@link ApiError} for other error answers. */
  error: Error | null;
  /** True while the hook polls (the resource is queued). */
  isPolling: boolean;
}

function useResource<R extends Resource>(
  resource: R,
  options: UseResourceOptions,
): UseResourceResult<ResourceBody<R>> {
  const { client, queryClient } = useOrchestrator();
  const enabled = options.enabled ?? true;
  const query = useQuery<PollResult<ResourceBody<R>>, Error>(
    {
      // By value: `useMatch(1)` and `useMatch("1")` are one query.
      queryKey: [NS, client.baseUrl, resourceKey(resource)] as QueryKey,
      queryFn: ({ signal }) => client.poll(resource, { signal }),
      enabled,
      refetchInterval: (q) => {
        const data = q.state.data;
        if (q.state.status === "error" || !data) return false;
        return data.state === "queued" ? data.retryAfterMs : false;
      },
      retry,
    },
    queryClient,
  );
  const data = query.data;
  const failed = query.error instanceof FailedError;
  return {
    data: data?.state === "ready" ? data.body : undefined,
    state: failed ? "failed" : (data?.state ?? "idle"),
    cacheStatus: data?.state === "ready" ? data.cacheStatus : null,
    isLoading: query.isLoading,
    error: query.error,
    isPolling: enabled && !query.error && data?.state === "queued",
  };
}

/** A match (`/api/matches/{id}`): polls while queued, stops on ready or failed. */
export function useMatch(id: Id, options: UseResourceOptions = {}) {
  return useResource({ kind: "match", id }, options);
}

/** A player profile (`/api/players/{id}/data`): polls while queued, stops on ready or failed. */
export function usePlayer(id: Id, options: UseResourceOptions = {}) {
  return useResource({ kind: "player", id }, options);
}

/** A player's stats (`/api/players/{id}/stats`): polls while queued, stops on ready or failed. */
export function usePlayerStats(id: Id, options: UseResourceOptions = {}) {
  return useResource({ kind: "player-stats", id }, options);
}

export interface UseTeamImportOptions {
  /** Re-import even if fresh: one `POST ?force=true` when the hook first runs for this import (the progress then counts the refetched matches and players again). Needs the admin token when one is configured. */
  force?: boolean;
  /** Default true. */
  enabled?: boolean;
  /** Milliseconds between progress polls while the import runs. Default: the client's (1000). */
  progressIntervalMs?: number;
}

/** Where a team import stands, as the hook keeps it. */
export interface TeamImportState {
  /** `queued`: nothing stored yet; `importing`: stored, matches and players still coming; `complete`. */
  state: "queued" | "importing" | "complete";
  progress: Schemas["Progress"] | undefined;
  /** The full view, fetched once when the import is complete. */
  view: Schemas["TeamView"] | undefined;
  /** Match IDs known so far (from the 202 while queued, from the view once complete). */
  matchIds: string[];
  /** When to poll next (ms); none once complete. */
  nextPollMs: number | undefined;
}

export interface UseTeamImportResult {
  view: Schemas["TeamView"] | undefined;
  progress: Schemas["Progress"] | undefined;
  state: TeamImportState["state"] | "failed" | "idle";
  isComplete: boolean;
  isLoading: boolean;
  error: Error | null;
  isPolling: boolean;
}

/** A team's import in one league: its progress while it runs, then its full view. Stops polling once complete. */
export function useTeamImport(teamId: Id, leagueId: Id, options: UseTeamImportOptions = {}): UseTeamImportResult {
  const { client, queryClient } = useOrchestrator();
  const enabled = options.enabled ?? true;
  const force = options.force ?? false;
  const resource = { kind: "team", teamId, leagueId } as const;
  const queryKey: QueryKey = [NS, client.baseUrl, "team", String(teamId), String(leagueId), { force }];
  const query = useQuery<TeamImportState, Error>(
    {
      queryKey,
      queryFn: async ({ signal }) => {
        const previous = queryClient.getQueryData<TeamImportState>(queryKey);
        // `force` is sent once, by the first run for this key: on every poll it would restart
        // the import.
        if (force && !previous) await client.post(resource, { signal, force: true });
        const interval = options.progressIntervalMs ?? client.progressIntervalMs;
        const p = await client.pollTeamProgress(resource, { signal });
        if (p.state === "queued") {
          const ids = "matchIds" in p.body ? p.body.matchIds : [];
          return { state: "queued", progress: previous?.progress, view: previous?.view, matchIds: ids, nextPollMs: p.retryAfterMs };
        }
        const progress = p.body.progress;
        if (!isComplete(progress)) {
          return {
            state: "importing",
            progress,
            view: previous?.view,
            matchIds: previous?.matchIds ?? [],
            nextPollMs: interval,
          };
        }
        const full = await client.poll(resource, { signal });
        if (full.state === "queued") {
          return { state: "queued", progress, view: previous?.view, matchIds: previous?.matchIds ?? [], nextPollMs: full.retryAfterMs };
        }
        return { state: "complete", progress: full.body.progress, view: full.body, matchIds: full.body.matchIds, nextPollMs: undefined };
      },
      enabled,
      refetchInterval: (q) => (q.state.status === "error" ? false : (q.state.data?.nextPollMs ?? false)),
      retry,
    },
    queryClient,
  );
  const data = query.data;
  const failed = query.error instanceof FailedError;
  return {
    view: data?.view,
    progress: data?.progress,
    state: failed ? "failed" : (data?.state ?? "idle"),
    isComplete: data?.state === "complete",
    isLoading: query.isLoading,
    error: query.error,
    isPolling: enabled && !query.error && !!data && data.state !== "complete",
  };
}

export interface UseLiveEventsOptions {
  /** Default true. */
  enabled?: boolean;
  /** Events kept, newest last. Default 50. */
  max?: number;
}

export interface UseLiveEventsResult {
  /** Ready/failed events, oldest first, at most `max`, each once. */
  events: LiveEvent[];
  /** The latest queue status pushed by the server (unless `filter.status` is false). */
  status: Schemas["QueueStatus"] | undefined;
  connection: LiveConnection;
  error: Error | null;
}

/** Follows the WebSocket feed with `filter` (the server's subscription); reconnects by itself. */
export function useLiveEvents(filter: LiveFilter = {}, options: UseLiveEventsOptions = {}): UseLiveEventsResult {
  const { client } = useOrchestrator();
  const enabled = options.enabled ?? true;
  const max = options.max ?? 50;
  const [events, setEvents] = useState<LiveEvent[]>([]);
  const [status, setStatus] = useState<Schemas["QueueStatus"] | undefined>(undefined);
  const [connection, setConnection] = useState<LiveConnection>("closed");
  const [error, setError] = useState<Error | null>(null);
  // The filter by value: a new object literal on every render is the same subscription.
  const key = JSON.stringify(filter);
  useEffect(() => {
    if (!enabled) return;
    let feed: ReturnType<typeof client.live>;
    try {
      feed = client.live(JSON.parse(key) as LiveFilter, {
        onEvent: (e) => setEvents((list) => [...list, e].slice(-max)),
        onStatus: setStatus,
        onConnection: setConnection,
        onError: setError,
      });
    } catch (e) {
      // No WebSocket in this environment: reported, not thrown at the page.
      setError(e instanceof Error ? e : new Error(String(e)));
      return;
    }
    return () => feed.close();
  }, [client, key, enabled, max]);
  return { events, status, connection, error };
}
