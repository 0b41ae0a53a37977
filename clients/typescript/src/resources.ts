/**
 * The resources a client can request, their typed bodies, and the one place that maps each to
 * its typed `openapi-fetch` call (`GET`/`POST` on its route). Everything else in the client
 * works on a {@link Resource} and never spells a path.
 */
import type { Client } from "openapi-fetch";
import type { components, paths } from "./schema.js";

/** Schemas of the API document, by name (`Schemas["QueueStatus"]`). */
export type Schemas = components["schemas"];

/** A numeric ID: a number, or the string form the API's bodies carry (`"7930696222"`). */
export type Id = number | string;

/** What `request()`, `poll()` and the hooks take. `kind` is the API's resource kind. */
export type Resource =
  | { kind: "match"; id: Id }
  | { kind: "player"; id: Id }
  | { kind: "player-stats"; id: Id }
  | { kind: "league"; id: Id; queueMatches?: boolean }
  | { kind: "team"; teamId: Id; leagueId: Id };

/** Every kind the API knows is a kind of {@link Resource}, and nothing else is. */
type SameKinds = [Resource["kind"]] extends [Schemas["Kind"]]
  ? [Schemas["Kind"]] extends [Resource["kind"]]
    ? true
    : never
  : never;
const sameKinds: SameKinds = true;
void sameKinds;

/** What GET serves once a resource is ready (a team: the whole view). */
export interface ResourceBodies {
  match: Schemas["Match"];
  player: Schemas["Player"];
  "player-stats": Schemas["PlayerStats"];
  league: Schemas["League"];
  team: Schemas["TeamView"];
}

/** The ready body of resource `R`. */
export type ResourceBody<R extends Resource> = ResourceBodies[R["kind"]];

/** The API's `openapi-fetch` client: every route of the document, typed. */
export type Api = Client<paths>;

/** What one GET or POST returns, before the client reads it. */
export interface Raw {
  data?: unknown;
  error?: unknown;
  response: Response;
}

export interface CallOptions {
  signal?: AbortSignal;
  /** `If-None-Match`: the ETag of the copy the caller holds. */
  etag?: string;
  force?: boolean;
  /** Teams only: `?include=progress`. */
  progressOnly?: boolean;
}

/** Requests go around any HTTP cache: the client validates with its own ETags. */
const NO_STORE = "no-store" as const;

const header = (etag: string | undefined) => (etag ? { "If-None-Match": etag } : undefined);
const force = (f: boolean | undefined) => (f ? { force: true } : undefined);

/** GET of `r`: the data, `queued`, failed, or 304. */
export function getResource(api: Api, r: Resource, o: CallOptions): Promise<Raw> {
  const init = { signal: o.signal, cache: NO_STORE };
  switch (r.kind) {
    case "match":
      return api.GET("/api/matches/{id}", {
        params: { path: { id: String(r.id) }, query: force(o.force), header: header(o.etag) },
        ...init,
      });
    case "player":
      return api.GET("/api/players/{id}/data", {
        params: { path: { id: String(r.id) }, query: force(o.force), header: header(o.etag) },
        ...init,
      });
    case "player-stats":
      return api.GET("/api/players/{id}/stats", {
        params: { path: { id: String(r.id) }, query: force(o.force), header: header(o.etag) },
        ...init,
      });
    case "league":
      // `queueMatches` goes with the POST only: on a GET it would claim the matches again on
      // every poll.
      return api.GET("/api/leagues/{id}", {
        params: { path: { id: String(r.id) }, query: force(o.force), header: header(o.etag) },
        ...init,
      });
    case "team":
      return api.GET("/api/teams/{id}/matches", {
        params: {
          path: { id: String(r.teamId) },
          query: {
            leagueId: String(r.leagueId),
            force: o.force || undefined,
            include: o.progressOnly ? "progress" : undefined,
          },
          header: header(o.etag),
        },
        ...init,
      });
  }
}

/** POST of `r`: `ready`, or `queued` with where and when to poll. */
export function postResource(api: Api, r: Resource, o: CallOptions): Promise<Raw> {
  const init = { signal: o.signal, cache: NO_STORE };
  switch (r.kind) {
    case "match":
      return api.POST("/api/matches/{id}", {
        params: { path: { id: String(r.id) }, query: force(o.force) },
        ...init,
      });
    case "player":
      return api.POST("/api/players/{id}/data", {
        params: { path: { id: String(r.id) }, query: force(o.force) },
        ...init,
      });
    case "player-stats":
      return api.POST("/api/players/{id}/stats", {
        params: { path: { id: String(r.id) }, query: force(o.force) },
        ...init,
      });
    case "league":
      return api.POST("/api/leagues/{id}", {
        params: {
          path: { id: String(r.id) },
          query: { force: o.force || undefined, queueMatches: r.queueMatches || undefined },
        },
        ...init,
      });
    case "team":
      return api.POST("/api/teams/{id}/matches", {
        params: {
          path: { id: String(r.teamId) },
          query: { leagueId: String(r.leagueId), force: o.force || undefined },
        },
        ...init,
      });
  }
}

/** A stable key for `r` (cache keys, query keys): `match:1`, `team:2:3`. */
export function resourceKey(r: Resource, progressOnly = false): string {
  if (r.kind === "team") {
    return `team:${r.teamId}:${r.leagueId}${progressOnly ? "?include=progress" : ""}`;
  }
  return `${r.kind}:${r.id}`;
}

/** Every match and every player of the ready matches is ready or failed. */
export function isComplete(p: Schemas["Progress"]): boolean {
  return p.matchesReady + p.playersReady + p.failed >= p.matchesTotal + p.playersTotal;
}
