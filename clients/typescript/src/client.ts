/**
 * `createClient({ baseUrl })`: the typed client. The API's polling rules live here, once:
 * - POST makes sure a resource is stored (idempotent); a 202 says where and when to poll.
 * - GET polls: a 202 means queued, wait `Retry-After` seconds; a 200 is the data; a 404/502
 *   with `{"status":"failed"}` is a permanent failure until its `retryAt`.
 * - Every GET carries `If-None-Match` with the last `ETag` seen for that URL, and a 304 is
 *   answered from the copy kept with it ({@link ClientOptions.etagCacheSize} URLs).
 * - A team import is followed through `?include=progress` (small) until it is complete, then
 *   its full view is fetched once.
 * `client.api` is the `openapi-fetch` client for every other route of the document.
 */
import createFetchClient from "openapi-fetch";
import { ApiError, FailedError, errorText, isFailedBody } from "./errors.js";
import { openLive, type LiveFilter, type LiveOptions, type LiveFeed, type WebSocketLike } from "./live.js";
import {
  type Api,
  type Raw,
  type Resource,
  type ResourceBody,
  type Schemas,
  getResource,
  isComplete,
  postResource,
  resourceKey,
} from "./resources.js";
import type { paths } from "./schema.js";

export interface ClientOptions {
  /**
   * Where the service is, e.g. `http://127.0.0.1:8080` (no trailing `/api`). In a browser it may
   * be `""` (the page's origin), for an app that proxies `/api` to the service.
   */
  baseUrl: string;
  /** Where `live()` connects, when not at `baseUrl` (e.g. HTTP through a proxy, the WebSocket straight to the service). */
  liveBaseUrl?: string;
  /** A `fetch` to use instead of `globalThis.fetch` (tests count requests with it). */
  fetch?: (input: Request) => Promise<Response>;
  /** A WebSocket constructor for `live()`; defaults to `globalThis.WebSocket` (browsers, Node 22+). */
  WebSocket?: new (url: string) => WebSocketLike;
  /** Sent as `Authorization: Bearer ...` when the service has an admin token (invalidation, `force` on teams). */
  adminToken?: string;
  /** Extra headers on every request. */
  headers?: Record<string, string>;
  /** Wait before the next poll when a 202 carries no usable `Retry-After` (ms). Default 2000. */
  defaultRetryAfterMs?: number;
  /** Wait between progress polls of a team import that is stored but not complete (ms). Default 1000. */
  progressIntervalMs?: number;
  /** URLs whose last ETag and body are kept to answer 304s. Default 100. */
  etagCacheSize?: number;
}

export interface RequestOptions {
  /** Stops polling: the promise rejects with the signal's reason and no request follows. */
  signal?: AbortSignal;
  /** Refetch even if fresh (a team's force cascades to its matches and players; admin token when configured). */
  force?: boolean;
  /** Teams: called with the import's progress whenever it changes, until it is complete. */
  onProgress?: (progress: Schemas["Progress"]) => void;
  /** Teams: overrides {@link ClientOptions.progressIntervalMs}. */
  progressIntervalMs?: number;
}

export interface PollOptions {
  signal?: AbortSignal;
  /** Sent once by callers that want a refetch; never send it on every poll. */
  force?: boolean;
}

/** One GET of a resource, read. A failure is not a result: it rejects with {@link FailedError}. */
export type PollResult<B> =
  | {
      state: "ready";
      body: B;
      /** The answer was a 304: `body` is the copy kept from the last 200. */
      notModified: boolean;
      /** `x-cache-status`: `fresh`, `stale; refresh queued`, ... */
      cacheStatus: string | null;
      etag: string | null;
    }
  | {
      state: "queued";
      /** The 202 body (`{"status":"queued"}`; for a team, with the match IDs known so far). */
      body: Schemas["Envelope"] | Schemas["TeamSummary"];
      /** How long to wait before polling again, from `Retry-After`. */
      retryAfterMs: number;
    };

/** One POST of a resource, read. */
export type PostResult =
  | { state: "ready"; body: Schemas["Envelope"] | Schemas["TeamSummary"] }
  | { state: "queued"; body: Schemas["Envelope"] | Schemas["TeamSummary"]; retryAfterMs: number };

export interface OrchestratorClient {
  /** The `openapi-fetch` client: every route of the API document, typed. */
  readonly api: Api;
  readonly baseUrl: string;
  /** Wait between progress polls of a running team import (ms), as configured. */
  readonly progressIntervalMs: number;
  /**
   * POSTs `resource`, then polls GET until it is ready and resolves with its typed body (a
   * team: its full view once the import is complete). Rejects with {@link FailedError} when it
   * fails, {@link ApiError} on any other error answer, the signal's reason on abort.
   */
  request<R extends Resource>(resource: R, options?: RequestOptions): Promise<ResourceBody<R>>;
  /** POST only: `ready`, or `queued` with when to poll. */
  post(resource: Resource, options?: PollOptions): Promise<PostResult>;
  /** One GET (with `If-None-Match`): `ready` with the body, or `queued` with when to poll again. */
  poll<R extends Resource>(resource: R, options?: PollOptions): Promise<PollResult<ResourceBody<R>>>;
  /** One GET of a team import's progress (`?include=progress`). */
  pollTeamProgress(
    resource: Extract<Resource, { kind: "team" }>,
    options?: PollOptions,
  ): Promise<PollResult<Schemas["TeamProgressView"]>>;
  /** `GET /api/queue/status`: per service, queue, work in progress (`activeSignatures`, a count), counters, budget. */
  queueStatus(options?: { signal?: AbortSignal }): Promise<Schemas["QueueStatus"]>;
  /** `POST /api/cache/invalidate` (admin token when configured). */
  invalidate(
    items: Schemas["InvalidateItem"][],
    options?: { signal?: AbortSignal },
  ): Promise<Schemas["InvalidateResult"]>;
  /** Follows `/api/ws`: reconnects with backoff, resumes without duplicates. Close it when done. */
  live(filter?: LiveFilter, options?: LiveOptions): LiveFeed;
}

/**
 * Shortest wait between two polls of one resource (ms), whatever `Retry-After` says: a `0` (or
 * a date in the past) must not turn the loop into a busy one.
 */
export const MIN_POLL_MS = 250;

/** Parses `Retry-After` (seconds or an HTTP date) into milliseconds, at least {@link MIN_POLL_MS}. */
export function retryAfterMs(value: string | null, fallbackMs: number): number {
  if (value === null) return Math.max(MIN_POLL_MS, fallbackMs);
  const trimmed = value.trim();
  const at = /^\d+$/.test(trimmed) ? Date.now() + Number(trimmed) * 1000 : Date.parse(trimmed);
  return Number.isNaN(at) ? Math.max(MIN_POLL_MS, fallbackMs) : Math.max(MIN_POLL_MS, at - Date.now());
}

/** Resolves after `ms`, or rejects with the signal's reason as soon as it aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

/** The last ETag and body per URL key, least recently used dropped first. */
class EtagCache {
  private readonly entries = new Map<string, { etag: string; body: unknown }>();
  constructor(private readonly size: number) {}

  get(key: string) {
    const entry = this.entries.get(key);
    if (entry) {
      this.entries.delete(key);
      this.entries.set(key, entry);
    }
    return entry;
  }

  set(key: string, etag: string, body: unknown) {
    this.entries.delete(key);
    this.entries.set(key, { etag, body });
    while (this.entries.size > this.size) {
      const oldest = this.entries.keys().next().value;
      if (oldest === undefined) break;
      this.entries.delete(oldest);
    }
  }
}

const sameJson = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);

export function createClient(options: ClientOptions): OrchestratorClient {
  const baseUrl = options.baseUrl.replace(/\/+$/, "");
  const headers: Record<string, string> = { ...options.headers };
  if (options.adminToken) headers.Authorization = `Bearer ${options.adminToken}`;
  const api = createFetchClient<paths>({ baseUrl, headers, fetch: options.fetch });
  const defaultRetryAfter = options.defaultRetryAfterMs ?? 2000;
  const progressInterval = options.progressIntervalMs ?? 1000;
  const etags = new EtagCache(options.etagCacheSize ?? 100);

  /** Reads a GET answer; `key` names the URL for the ETag cache. */
  function readGet<B>(key: string, raw: Raw): PollResult<B> {
    const { response } = raw;
    const status = response.status;
    if (status === 304) {
      const kept = etags.get(key);
      if (!kept) throw new ApiError(304, "304 Not Modified without a kept copy");
      return { state: "ready", body: kept.body as B, notModified: true, cacheStatus: response.headers.get("x-cache-status"), etag: kept.etag };
    }
    if (status === 202) {
      return {
        state: "queued",
        body: raw.data as Schemas["Envelope"],
        retryAfterMs: retryAfterMs(response.headers.get("retry-after"), defaultRetryAfter),
      };
    }
    if (status === 200) {
      const etag = response.headers.get("etag");
      if (etag) etags.set(key, etag, raw.data);
      return { state: "ready", body: raw.data as B, notModified: false, cacheStatus: response.headers.get("x-cache-status"), etag };
    }
    throw toError(status, raw.error);
  }

  function toError(status: number, body: unknown): Error {
    if (isFailedBody(body)) return new FailedError(status, body);
    return new ApiError(status, errorText(body, `unexpected answer ${status}`));
  }

  async function pollAt<B>(resource: Resource, progressOnly: boolean, o: PollOptions): Promise<PollResult<B>> {
    const key = resourceKey(resource, progressOnly);
    const etag = o.force ? undefined : etags.get(key)?.etag;
    const raw = await getResource(api, resource, { signal: o.signal, etag, force: o.force, progressOnly });
    return readGet<B>(key, raw);
  }

  const client: OrchestratorClient = {
    api,
    baseUrl,
    progressIntervalMs: progressInterval,

    async post(resource, o = {}) {
      const raw = await postResource(api, resource, { signal: o.signal, force: o.force });
      const status = raw.response.status;
      const body = raw.data as Schemas["Envelope"];
      if (status === 200) return { state: "ready", body };
      if (status === 202) {
        return { state: "queued", body, retryAfterMs: retryAfterMs(raw.response.headers.get("retry-after"), defaultRetryAfter) };
      }
      throw toError(status, raw.error);
    },

    poll(resource, o = {}) {
      return pollAt(resource, false, o);
    },

    pollTeamProgress(resource, o = {}) {
      return pollAt(resource, true, o);
    },

    async request<R extends Resource>(resource: R, o: RequestOptions = {}): Promise<ResourceBody<R>> {
      const { signal } = o;
      const posted = await client.post(resource, { signal, force: o.force });
      let wait = posted.state === "queued" ? posted.retryAfterMs : 0;
      if (resource.kind === "team") {
        const every = o.progressIntervalMs ?? progressInterval;
        let last: Schemas["Progress"] | undefined;
        for (;;) {
          await sleep(wait, signal);
          const r = await client.pollTeamProgress(resource, { signal });
          if (r.state === "queued") {
            wait = r.retryAfterMs;
            continue;
          }
          const progress = r.body.progress;
          if (!last || !sameJson(last, progress)) {
            last = progress;
            o.onProgress?.(progress);
          }
          if (isComplete(progress)) break;
          wait = every;
        }
        wait = 0;
      }
      for (;;) {
        await sleep(wait, signal);
        const r = await client.poll(resource, { signal });
        if (r.state === "ready") return r.body;
        wait = r.retryAfterMs;
      }
    },

    async queueStatus(o = {}) {
      const { data, error, response } = await api.GET("/api/queue/status", { signal: o.signal, cache: "no-store" });
      if (data) return data;
      throw toError(response.status, error);
    },

    async invalidate(items, o = {}) {
      const { data, error, response } = await api.POST("/api/cache/invalidate", {
        body: { items },
        signal: o.signal,
        cache: "no-store",
      });
      if (data) return data;
      throw toError(response.status, error);
    },

    live(filter = {}, liveOptions = {}) {
      return openLive(options.liveBaseUrl ?? baseUrl, filter, liveOptions, options.WebSocket);
    },
  };
  return client;
}
