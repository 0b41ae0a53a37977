//! The `components` section of the OpenAPI document: shared parameters, headers, responses,
//! the bearer-token scheme and every body schema. Written from the types the handlers serialize
//! (`http::*`, `team::view`, `bus::wire`, the fetchers' stored records).

use serde_json::{Value, json};

use super::{ID_PATTERN, json_body, nullable, nullable_of, schema};

fn error_response(description: &str) -> Value {
    json_body(description, schema("Error"))
}

fn queued_response(description: &str, body: &str) -> Value {
    json!({
        "description": description,
        "headers": {
            "Location": { "$ref": "#/components/headers/Location" },
            "Retry-After": { "$ref": "#/components/headers/RetryAfter" }
        },
        "content": { "application/json": { "schema": schema(body) } }
    })
}

/// Properties of the stored team record; `with_matches` adds its list of `TeamMatch`.
fn team_record_properties(with_matches: bool) -> Value {
    let id = schema("Id");
    let ids = json!({ "type": "array", "items": id });
    let mut props = json!({
        "teamId": id,
        "teamName": nullable_of("string"),
        "leagueId": id,
        "leagueName": nullable_of("string"),
        "matchIds": ids,
        "matchIdsByLeague": { "type": "object", "additionalProperties": ids },
        "source": { "type": "string", "enum": ["dotabuff", "opendota"] },
        "fallbackReason": nullable_of("string"),
        "pages": { "type": "integer", "minimum": 0 }
    });
    if with_matches {
        props["matches"] = json!({ "type": "array", "items": schema("TeamMatch") });
    }
    props
}

/// The team view: the record's fields, progress, and summaries in place of its matches.
fn team_view_properties() -> Value {
    let mut props = team_record_properties(false);
    props["progress"] = schema("Progress");
    props["matches"] = json!({ "type": "array", "items": schema("MatchSummary") });
    props["players"] = json!({ "type": "array", "items": schema("PlayerSummary") });
    props
}

pub(super) fn components() -> Value {
    json!({
        "securitySchemes": { "adminToken": {
            "type": "http",
            "scheme": "bearer",
            "description": "The configured admin token. Only checked when one is configured."
        }},
        "parameters": parameters(),
        "headers": headers(),
        "responses": responses(),
        "schemas": schemas()
    })
}

/// Every schema; built in groups because one `json!` this long exceeds the macro recursion
/// limit.
fn schemas() -> Value {
    let mut all = serde_json::Map::new();
    for group in [
        envelopes(),
        resource_bodies(),
        team_schemas(),
        admin_schemas(),
        status_schemas(),
    ] {
        if let Value::Object(map) = group {
            all.extend(map);
        }
    }
    Value::Object(all)
}

/// Query and path parameters.
fn parameters() -> Value {
    let id = schema("Id");
    json!({
        "Id": {
            "name": "id", "in": "path", "required": true,
            "description": "A positive integer ID (match, player, league or team).",
            "schema": id
        },
        "Force": {
            "name": "force", "in": "query", "required": false,
            "description": "Refetch even if fresh (`1`/`0` are accepted too).",
            "schema": { "type": "boolean", "default": false }
        },
        "QueueMatches": {
            "name": "queueMatches", "in": "query", "required": false,
            "description": "Also queue the league's matches.",
            "schema": { "type": "boolean", "default": false }
        },
        "LeagueIdQuery": {
            "name": "leagueId", "in": "query", "required": false,
            "description": "The league; required here unless a POST body carries it.",
            "schema": id
        }
    })
}

/// Response headers.
fn headers() -> Value {
    json!({
        "Location": {
            "description": "The GET URL to poll.",
            "schema": { "type": "string" }
        },
        "RetryAfter": {
            "description": "Seconds to wait before polling.",
            "schema": { "type": "integer", "example": 2 }
        },
        "CacheStatus": {
            "description": "Whether the body is fresh or stale with a refresh queued.",
            "schema": { "type": "string", "enum": ["fresh", "stale; refresh queued"] }
        }
    })
}

/// Responses shared by several operations.
fn responses() -> Value {
    json!({
        "Queued": queued_response("The fetch is queued (or already running).", "Queued"),
        "TeamQueued": queued_response("The import is queued (or already running).",
            "TeamSummary"),
        "BadRequest": error_response("Invalid ID, query parameter or body."),
        "Unauthorized": error_response("Admin token missing or wrong."),
        "Internal": error_response("The store failed."),
        "Unavailable": error_response("A component (actor, JetStream) is unavailable."),
        "FailedNotFound": json_body("The upstream has no such resource.", schema("Failed")),
        "FailedUpstream": json_body("The last fetch failed.", schema("Failed")),
        "NotFound": error_response("No such route: `{\"error\": \"not found\"}`."),
        "MethodNotAllowed": error_response("The route exists, the method does not.")
    })
}

/// Ids, signatures and the status envelopes every route shares.
fn envelopes() -> Value {
    json!({
        "Id": {
            "type": "string", "pattern": ID_PATTERN, "example": "8054301932",
            "description": "IDs are strings: match IDs exceed JavaScript's safe integers."
        },
        "Kind": {
            "type": "string",
            "enum": ["match", "player", "player-stats", "team", "league"]
        },
        "Signature": {
            "type": "string",
            "description": "`<kind>:<id>`, or `team:<teamId>:<leagueId>`.",
            "pattern": "^((match|player|player-stats|league):[1-9][0-9]{0,18}|team:[1-9][0-9]{0,18}:[1-9][0-9]{0,18})$",
            "example": "match:8054301932"
        },
        "Error": {
            "type": "object", "required": ["error"],
            "properties": { "error": { "type": "string" } }
        },
        "Ready": {
            "type": "object", "required": ["status", "signature"],
            "properties": {
                "status": { "type": "string", "enum": ["ready"] },
                "signature": schema("Signature")
            }
        },
        "Queued": {
            "type": "object", "required": ["status", "signature"],
            "properties": {
                "status": { "type": "string", "enum": ["queued"] },
                "signature": schema("Signature")
            }
        },
        "Failed": {
            "type": "object", "required": ["status", "signature", "error"],
            "properties": {
                "status": { "type": "string", "enum": ["failed"] },
                "signature": schema("Signature"),
                "error": { "type": "string" }
            }
        }
    })
}

/// Stored resource bodies served by GET.
fn resource_bodies() -> Value {
    let id = schema("Id");
    let ids = json!({ "type": "array", "items": id });
    let int = json!({ "type": "integer", "minimum": 0 });
    json!({
        "Match": {
            "type": "object", "additionalProperties": true,
            "description": "The OpenDota `/matches/{id}` body, as fetched."
        },
        "Player": {
            "type": "object", "additionalProperties": true,
            "description": "The OpenDota `/players/{id}` body, as fetched."
        },
        "PlayerStats": {
            "type": "object",
            "properties": {
                "accountId": id,
                "win": int, "lose": int, "winRate": nullable_of("number"),
                "topHeroes": { "type": "array", "items": {
                    "type": "object",
                    "properties": {
                        "heroId": nullable_of("integer"), "games": int, "win": int,
                        "winRate": nullable_of("number")
                    }
                }},
                "recentForm": {
                    "type": "object",
                    "properties": {
                        "matches": int, "wins": int, "losses": int,
                        "winRate": nullable_of("number"),
                        "avgKills": nullable_of("number"),
                        "avgDeaths": nullable_of("number"),
                        "avgAssists": nullable_of("number"),
                        "results": {
                            "type": "string", "pattern": "^[WL?]*$",
                            "description": "Recent results, newest first."
                        }
                    }
                }
            }
        },
        "League": {
            "type": "object",
            "properties": {
                "leagueId": id,
                "name": nullable_of("string"),
                "tier": nullable_of("string"),
                "matchIds": ids
            }
        }
    })
}

/// Team import bodies.
fn team_schemas() -> Value {
    let id = schema("Id");
    let ids = json!({ "type": "array", "items": id });
    let int = json!({ "type": "integer", "minimum": 0 });
    json!({
        "TeamImportRequest": {
            "type": "object", "additionalProperties": false,
            "properties": {
                "leagueId": { "oneOf": [id, { "type": "integer", "minimum": 1 }] },
                "force": { "type": "boolean" }
            }
        },
        "TeamSummary": {
            "type": "object",
            "required": ["status", "signature", "teamId", "leagueId", "matchIds"],
            "properties": {
                "status": { "type": "string", "enum": ["ready", "queued"] },
                "signature": schema("Signature"),
                "teamId": id,
                "leagueId": id,
                "matchIds": ids
            }
        },
        "TeamMatch": {
            "type": "object",
            "properties": {
                "matchId": id,
                "leagueId": id,
                "startTime": { "type": "string", "format": "date-time", "nullable": true },
                "opponentId": { "allOf": [id], "nullable": true },
                "opponentName": nullable_of("string"),
                "won": nullable_of("boolean")
            }
        },
        "TeamRecord": {
            "type": "object",
            "description": "The stored import (served inside `TeamView`).",
            "properties": team_record_properties(true)
        },
        "Progress": {
            "type": "object",
            "properties": {
                "matchesReady": int, "matchesTotal": int,
                "playersReady": int, "playersTotal": int,
                "failed": int
            }
        },
        "MatchSummary": {
            "type": "object",
            "description": "Fields copied from the stored match; null where it has none.",
            "properties": {
                "matchId": nullable_of("string"),
                "startTime": nullable_of("integer"),
                "duration": nullable_of("integer"),
                "radiantName": nullable_of("string"),
                "direName": nullable_of("string"),
                "radiantScore": nullable_of("integer"),
                "direScore": nullable_of("integer"),
                "radiantWin": nullable_of("boolean"),
                "won": nullable_of("boolean")
            }
        },
        "PlayerSummary": {
            "type": "object",
            "description": "Fields copied from the stored player; null where it has none.",
            "properties": {
                "accountId": id,
                "personaname": nullable_of("string"),
                "name": nullable_of("string"),
                "avatar": nullable_of("string"),
                "rankTier": nullable_of("integer"),
                "mmrEstimate": nullable_of("number")
            }
        },
        "TeamView": {
            "type": "object",
            "description": "The stored `TeamRecord` with progress, and `matches` replaced \
                by summaries of the ready matches.",
            "properties": team_view_properties()
        }
    })
}

/// Invalidation bodies.
fn admin_schemas() -> Value {
    let id = schema("Id");
    json!({
        "InvalidateItem": {
            "type": "object", "required": ["type"],
            "description": "`id` wins when both `id` and `key` are given.",
            "anyOf": [{ "required": ["id"] }, { "required": ["key"] }],
            "properties": {
                "type": { "type": "string", "enum": [
                    "matches", "match", "players", "player", "player-stats", "playerStats",
                    "player_stats", "teams", "team", "leagues", "league"
                ]},
                "id": { "oneOf": [id, { "type": "integer", "minimum": 1 }] },
                "key": {
                    "type": "string",
                    "description": "Older cache key form, e.g. `opendota-match-123.json`."
                }
            }
        },
        "InvalidateRequest": {
            "oneOf": [
                {
                    "type": "object", "required": ["items"],
                    "properties": { "items": {
                        "type": "array", "maxItems": crate::http::invalidate::MAX_ITEMS,
                        "items": schema("InvalidateItem")
                    }}
                },
                schema("InvalidateItem")
            ]
        },
        "InvalidateResult": {
            "type": "object", "required": ["invalidated", "errors"],
            "properties": {
                "invalidated": { "type": "array", "items": {
                    "type": "object", "required": ["type", "id", "invalidated"],
                    "properties": {
                        "type": { "type": "string", "description": "As given." },
                        "id": { "type": "string", "description": "As given." },
                        "invalidated": {
                            "type": "integer", "minimum": 0,
                            "description": "Stored copies marked stale."
                        }
                    }
                }},
                "errors": { "type": "array", "items": {
                    "type": "object", "required": ["item", "error"],
                    "properties": {
                        "item": { "description": "The refused item, as given." },
                        "error": { "type": "string" }
                    }
                }}
            }
        }
    })
}

/// Status, health and event bodies.
fn status_schemas() -> Value {
    let int = json!({ "type": "integer", "minimum": 0 });
    json!({
        "Budget": {
            "type": "object",
            "properties": {
                "service": { "type": "string", "enum": ["opendota", "dotabuff"] },
                "limitPerMinute": int,
                "remainingMinute": int,
                "limitPerDay": { "type": "integer", "nullable": true },
                "remainingDay": { "type": "integer", "nullable": true },
                "pausedForMs": int,
                "grantedTotal": int,
                "waitsTotal": int
            }
        },
        "ServiceStatus": {
            "type": "object",
            "properties": {
                "queued": int,
                "queuedByPriority": {
                    "type": "object",
                    "properties": { "interactive": int, "bulk": int }
                },
                "unacked": int,
                "inFlight": int,
                "activeSignatures": { "type": "array", "items": schema("Signature") },
                "completed": int,
                "failed": int,
                "budget": nullable("Budget")
            }
        },
        "QueueStatus": {
            "type": "object", "required": ["timestamp", "services"],
            "properties": {
                "timestamp": { "type": "string", "format": "date-time" },
                "services": {
                    "type": "object", "required": ["opendota", "dotabuff"],
                    "properties": {
                        "opendota": schema("ServiceStatus"),
                        "dotabuff": schema("ServiceStatus")
                    }
                }
            }
        },
        "Health": {
            "type": "object",
            "properties": { "status": { "type": "string", "enum": ["ok"] } }
        },
        "Readiness": {
            "type": "object", "required": ["status", "nats", "redb"],
            "properties": {
                "status": { "type": "string", "enum": ["ready", "not ready"] },
                "nats": { "type": "boolean" },
                "redb": { "type": "boolean" }
            }
        },
        "ReadyEvent": {
            "type": "object", "required": ["kind", "id", "signature", "fetchedAt"],
            "properties": {
                "kind": schema("Kind"),
                "id": {
                    "type": "string",
                    "description": "The ID; `<teamId>.<leagueId>` for a team."
                },
                "signature": schema("Signature"),
                "fetchedAt": { "type": "string", "format": "date-time" }
            }
        },
        "FailedEvent": {
            "type": "object", "required": ["kind", "id", "signature", "error", "failedAt"],
            "properties": {
                "kind": schema("Kind"),
                "id": {
                    "type": "string",
                    "description": "The ID; `<teamId>.<leagueId>` for a team."
                },
                "signature": schema("Signature"),
                "error": { "type": "string" },
                "failedAt": { "type": "string", "format": "date-time" }
            }
        }
    })
}
