//! The OpenAPI 3.0.3 description of the HTTP API, served by `GET /api/openapi.json`. It is
//! written by hand from the handlers (resources, teams, invalidate, status, events) and built
//! once on first use; `tests/openapi.rs` keeps it honest: its operations must equal
//! [`super::ROUTES`], every route must answer, and every `$ref` must resolve.

use std::sync::LazyLock;

use serde_json::{Value, json};
use warp::http::StatusCode;
use warp::reply::Response;

use super::reply;

mod components;

/// The document, built on first use.
static DOCUMENT: LazyLock<Value> = LazyLock::new(build);

/// The OpenAPI document as JSON.
pub fn document() -> &'static Value {
    &DOCUMENT
}

/// `200 application/json` with the document.
pub fn reply() -> Response {
    reply::json(StatusCode::OK, document())
}

/// Pattern of every ID in paths, queries and bodies (see `domain::ids`).
const ID_PATTERN: &str = "^[1-9][0-9]{0,18}$";

fn schema(name: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{name}") })
}

fn response(name: &str) -> Value {
    json!({ "$ref": format!("#/components/responses/{name}") })
}

fn param(name: &str) -> Value {
    json!({ "$ref": format!("#/components/parameters/{name}") })
}

/// A JSON response with `schema`.
fn json_body(description: &str, schema: Value) -> Value {
    json!({ "description": description, "content": { "application/json": { "schema": schema } } })
}

/// A nullable `$ref` (OpenAPI 3.0 ignores siblings of `$ref`, hence the `allOf`).
fn nullable(name: &str) -> Value {
    json!({ "allOf": [schema(name)], "nullable": true })
}

fn nullable_of(kind: &str) -> Value {
    json!({ "type": kind, "nullable": true })
}

/// `GET` and `POST` of a single-resource route (`/api/matches/{id}`, ...), whose `GET` 200 body
/// is `body` and which take `query` besides `force`.
fn resource(tag: &str, what: &str, op: &str, body: &str, query: &[&str]) -> Value {
    let mut params = vec![param("Force")];
    params.extend(query.iter().copied().map(param));
    json!({
        "parameters": [param("Id")],
        "get": {
            "tags": [tag],
            "operationId": format!("get{op}"),
            "summary": format!("The stored {what}, or queue its fetch"),
            "description": "Serves the stored copy (fresh, or stale while a refresh runs, see \
                `x-cache-status`). On a miss the fetch is queued and the answer is 202. A \
                resource whose last fetch failed answers 404/502 with a failed body until a \
                POST (or `force`) retries it.",
            "parameters": params.clone(),
            "responses": {
                "200": {
                    "description": format!("The stored {what}."),
                    "headers": { "x-cache-status": { "$ref": "#/components/headers/CacheStatus" } },
                    "content": { "application/json": { "schema": schema(body) } }
                },
                "202": response("Queued"),
                "400": response("BadRequest"),
                "404": response("FailedNotFound"),
                "500": response("Internal"),
                "502": response("FailedUpstream"),
                "503": response("Unavailable")
            }
        },
        "post": {
            "tags": [tag],
            "operationId": format!("post{op}"),
            "summary": format!("Make sure the {what} is stored (idempotent)"),
            "description": "Answers `ready` when a fresh copy is stored, else queues the fetch \
                (retrying a failed one) and answers 202 with where to poll.",
            "parameters": params,
            "responses": {
                "200": json_body("A fresh copy is stored.", schema("Ready")),
                "202": response("Queued"),
                "400": response("BadRequest"),
                "500": response("Internal"),
                "503": response("Unavailable")
            }
        }
    })
}

fn teams() -> Value {
    let params = json!([param("LeagueIdQuery"), param("Force")]);
    let description = "`leagueId` comes from the query or, for POST, the JSON body (400 when \
        neither has it). `force=true` (query or body) re-scrapes the team's pages and refetches \
        every match and player; when an admin token is configured it needs \
        `Authorization: Bearer <token>` (else 401).";
    json!({
        "parameters": [param("Id")],
        "get": {
            "tags": ["teams"],
            "operationId": "getTeamMatches",
            "summary": "A team's matches in one league, with import progress and summaries",
            "description": description,
            "parameters": params,
            "security": [{}, { "adminToken": [] }],
            "responses": {
                "200": {
                    "description": "The stored import with live progress.",
                    "headers": { "x-cache-status": { "$ref": "#/components/headers/CacheStatus" } },
                    "content": { "application/json": { "schema": schema("TeamView") } }
                },
                "202": response("TeamQueued"),
                "400": response("BadRequest"),
                "401": response("Unauthorized"),
                "404": response("FailedNotFound"),
                "500": response("Internal"),
                "502": response("FailedUpstream"),
                "503": response("Unavailable")
            }
        },
        "post": {
            "tags": ["teams"],
            "operationId": "postTeamMatches",
            "summary": "Import a team's matches in one league (idempotent)",
            "description": description,
            "parameters": params,
            "security": [{}, { "adminToken": [] }],
            "requestBody": {
                "required": false,
                "content": { "application/json": { "schema": schema("TeamImportRequest") } }
            },
            "responses": {
                "200": json_body("A fresh import is stored.", schema("TeamSummary")),
                "202": response("TeamQueued"),
                "400": response("BadRequest"),
                "401": response("Unauthorized"),
                "500": response("Internal"),
                "503": response("Unavailable")
            }
        }
    })
}

fn paths() -> Value {
    json!({
        "/api/matches/{id}": resource("resources", "match", "Match", "Match", &[]),
        "/api/players/{id}/data": resource("resources", "player", "Player", "Player", &[]),
        "/api/players/{id}/stats":
            resource("resources", "player stats", "PlayerStats", "PlayerStats", &[]),
        "/api/leagues/{id}": resource("resources", "league", "League", "League", &["QueueMatches"]),
        "/api/teams/{id}/matches": teams(),
        "/api/cache/invalidate": { "post": {
            "tags": ["admin"],
            "operationId": "invalidateCache",
            "summary": "Mark stored copies stale so the next request refetches them",
            "description": "Items that cannot be parsed are reported under `errors`; the request \
                still answers 200. Needs `Authorization: Bearer <token>` when an admin token \
                is configured.",
            "security": [{}, { "adminToken": [] }],
            "requestBody": {
                "required": true,
                "content": { "application/json": { "schema": schema("InvalidateRequest") } }
            },
            "responses": {
                "200": json_body("What was invalidated, and the items refused.",
                    schema("InvalidateResult")),
                "400": response("BadRequest"),
                "401": response("Unauthorized"),
                "500": response("Internal"),
                "503": response("Unavailable")
            }
        }},
        "/api/queue/status": { "get": {
            "tags": ["operations"],
            "operationId": "getQueueStatus",
            "summary": "Per-service queue depth, in-flight work, counters and rate budget",
            "responses": {
                "200": json_body("Status of every upstream service.", schema("QueueStatus")),
                "503": response("Unavailable")
            }
        }},
        "/api/events": { "get": {
            "tags": ["events"],
            "operationId": "getEvents",
            "summary": "Server-sent events as resources become ready or fail",
            "description": "A `text/event-stream`. Each event is named `ready` (data: \
                `ReadyEvent` JSON) or `failed` (data: `FailedEvent` JSON).",
            "parameters": [{
                "name": "kind",
                "in": "query",
                "required": false,
                "description": "Only these kinds (comma-separated); all kinds when absent.",
                "style": "form",
                "explode": false,
                "schema": { "type": "array", "items": schema("Kind") }
            }],
            "responses": {
                "200": {
                    "description": "The event stream; it stays open.",
                    "content": { "text/event-stream": { "schema": {
                        "type": "string",
                        "example": "event: ready\ndata: {\"kind\":\"match\",\"id\":\"8054301932\",\"signature\":\"match:8054301932\",\"fetchedAt\":\"2026-11-29T03:00:00+00:00\"}\n\n"
                    }}},
                    "x-events": { "ready": schema("ReadyEvent"), "failed": schema("FailedEvent") }
                },
                "400": response("BadRequest")
            }
        }},
        "/api/openapi.json": { "get": {
            "tags": ["operations"],
            "operationId": "getOpenApi",
            "summary": "This document",
            "responses": {
                "200": json_body("The OpenAPI 3.0.3 document.", json!({ "type": "object" }))
            }
        }},
        "/healthz": { "get": {
            "tags": ["operations"],
            "operationId": "getHealthz",
            "summary": "The process is up",
            "responses": { "200": json_body("Up.", schema("Health")) }
        }},
        "/readyz": { "get": {
            "tags": ["operations"],
            "operationId": "getReadyz",
            "summary": "NATS is connected and redb is open",
            "responses": {
                "200": json_body("Ready.", schema("Readiness")),
                "503": json_body("Not ready; the body says which part is down.",
                    schema("Readiness"))
            }
        }},
        "/metrics": { "get": {
            "tags": ["operations"],
            "operationId": "getMetrics",
            "summary": "Prometheus metrics (text exposition format 0.0.4)",
            "responses": { "200": {
                "description": "Metrics.",
                "content": { "text/plain": { "schema": { "type": "string" } } }
            }}
        }},
        "/": { "get": {
            "tags": ["operations"],
            "operationId": "getStatusPage",
            "summary": "Human-readable status page",
            "responses": { "200": {
                "description": "An HTML page.",
                "content": { "text/html": { "schema": { "type": "string" } } }
            }}
        }}
    })
}

fn build() -> Value {
    json!({
        "openapi": "3.0.3",
        "info": {
            "title": "dota-orchestrator",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Keeps a Dota 2 dashboard fed: resources are fetched in the \
                background and served from the cache. POST is idempotent and answers `ready` \
                or 202 `queued` (poll the `Location`); GET serves the stored JSON. Every error \
                is JSON `{\"error\": \"...\"}`: an unknown path answers 404 \
                `{\"error\": \"not found\"}` and a known path with another method 405."
        },
        "tags": [
            { "name": "resources", "description": "Matches, players, player stats, leagues." },
            { "name": "teams", "description": "Team imports, one league at a time." },
            { "name": "admin", "description": "Cache administration." },
            { "name": "events", "description": "Server-sent events." },
            { "name": "operations", "description": "Health, readiness, status, metrics." }
        ],
        "paths": paths(),
        "components": components::components()
    })
}
