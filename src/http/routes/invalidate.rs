//! `POST /api/cache/invalidate`: marks stored copies stale so the next request refetches them.
//! Items come as `{"type":"matches","id":"123"}` or in the older key form
//! `{"type":"matches","key":"opendota-match-123.json"}`; either a list under `items` or one
//! item as the whole body. Bad items are reported under `errors`, never as a 500.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use warp::http::StatusCode;
use warp::reply::Response;

use crate::domain::{LeagueId, MatchId, PlayerId, Signature, TeamId};
use crate::http::ApiState;
use crate::http::openapi::responses::{BadRequest, Internal, Unauthorized, Unavailable};
use crate::http::reply::{ApiError, json};
use crate::http::router::Request;

/// Items accepted in one request; a bound on the work one call can cause.
pub const MAX_ITEMS: usize = 1000;

/// What one item names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    One(Signature),
    /// Every import of the team (all leagues) and its cached Dotabuff pages.
    Team(TeamId),
}

/// The request: a list of items under `items`, or one item as the whole body. The handler
/// reads the items one by one, so a bad item is reported under `errors` instead of failing the
/// request.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum InvalidateRequest {
    Items {
        #[schema(max_items = 1000)]
        items: Vec<InvalidateItem>,
    },
    One(InvalidateItem),
}

/// One item: `id` wins when both `id` and `key` are given.
#[derive(Debug, Deserialize, ToSchema)]
pub struct InvalidateItem {
    /// `matches`, `players`, `player-stats`, `teams` or `leagues` (singular and camelCase or
    /// snake_case forms are accepted too).
    #[serde(rename = "type")]
    pub kind: String,
    pub id: Option<ItemId>,
    /// Older cache key form, e.g. `opendota-match-123.json`.
    pub key: Option<String>,
}

/// An ID as a client may send it in a body: a decimal string or a number.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum ItemId {
    Text(String),
    #[schema(value_type = u64)]
    Number(serde_json::Number),
}

// Fields in alphabetical order, as the `json!` map this replaced wrote them.
/// What was invalidated, and the items refused.
#[derive(Debug, Serialize, ToSchema)]
pub struct InvalidateResult {
    pub errors: Vec<Refused>,
    pub invalidated: Vec<Done>,
}

/// An item that could not be read.
#[derive(Debug, Serialize, ToSchema)]
pub struct Refused {
    pub error: String,
    /// The refused item, as given.
    pub item: Value,
}

/// An item that was read, as given, with how many stored copies it marked stale.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Done {
    #[serde(rename = "type")]
    kind: String,
    id: String,
    /// Stored copies that were marked stale (0 when nothing was stored).
    invalidated: usize,
}

fn parse_id<T: std::str::FromStr<Err = crate::domain::IdError>>(raw: &str) -> Result<T, String> {
    raw.parse()
        .map_err(|e: crate::domain::IdError| e.to_string())
}

/// `(type, id)` → target. Types are the API's plural resource names.
fn target(kind: &str, id: &str) -> Result<Target, String> {
    Ok(match kind {
        "matches" | "match" => Target::One(Signature::Match(parse_id::<MatchId>(id)?)),
        "players" | "player" => Target::One(Signature::Player(parse_id::<PlayerId>(id)?)),
        "player-stats" | "playerStats" | "player_stats" => {
            Target::One(Signature::PlayerStats(parse_id::<PlayerId>(id)?))
        }
        "teams" | "team" => Target::Team(parse_id::<TeamId>(id)?),
        "leagues" | "league" => Target::One(Signature::League(parse_id::<LeagueId>(id)?)),
        other => {
            return Err(format!(
                "unknown type {other:?} (matches, players, player-stats, teams, leagues)"
            ));
        }
    })
}

/// The older cache key form → `(type, id)`.
fn from_key(key: &str) -> Result<(&'static str, String), String> {
    let stem = key
        .strip_suffix(".json")
        .or_else(|| key.strip_suffix(".html"))
        .unwrap_or(key);
    let forms: [(&str, &str, &'static str); 5] = [
        ("opendota-player-stats-", "", "player-stats"),
        ("opendota-match-", "", "matches"),
        ("opendota-player-", "", "players"),
        ("dotabuff-team-", "-matches", "teams"),
        ("dotabuff-league-", "", "leagues"),
    ];
    for (prefix, suffix, kind) in forms {
        if let Some(rest) = stem.strip_prefix(prefix)
            && let Some(id) = rest.strip_suffix(suffix)
        {
            return Ok((kind, id.to_string()));
        }
    }
    Err(format!(
        "unrecognised cache key {:?}",
        key.chars().take(80).collect::<String>()
    ))
}

fn item_target(item: &Value) -> Result<(String, String, Target), String> {
    let item = InvalidateItem::deserialize(item).map_err(|e| format!("invalid item: {e}"))?;
    let kind = item.kind;
    let id = match (item.id, item.key) {
        (Some(ItemId::Text(id)), _) => id,
        (Some(ItemId::Number(n)), _) => n.to_string(),
        (None, Some(key)) => {
            let (key_kind, id) = from_key(&key)?;
            if target(&kind, &id)?.kind_name() != target(key_kind, &id)?.kind_name() {
                return Err(format!("key {key:?} is not of type {kind:?}"));
            }
            id
        }
        (None, None) => return Err("item needs an \"id\" or a \"key\"".to_string()),
    };
    let t = target(&kind, &id)?;
    Ok((kind, id, t))
}

impl Target {
    fn kind_name(&self) -> &'static str {
        match self {
            Target::One(sig) => sig.kind().as_str(),
            Target::Team(_) => "team",
        }
    }
}

/// The items of a request body, each still as given (see [`InvalidateRequest`]).
fn read_items(body: &[u8]) -> Result<Vec<Value>, ApiError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::BadRequest(format!("invalid JSON body: {e}")))?;
    let items: Vec<Value> = match value.get("items") {
        Some(Value::Array(items)) => items.clone(),
        Some(_) => return Err(ApiError::BadRequest("\"items\" must be a list".to_string())),
        None if value.get("type").is_some() => vec![value],
        None => {
            return Err(ApiError::BadRequest(
                "expected {\"items\": [{\"type\": ..., \"id\": ...}]}".to_string(),
            ));
        }
    };
    if items.len() > MAX_ITEMS {
        return Err(ApiError::BadRequest(format!(
            "at most {MAX_ITEMS} items per request"
        )));
    }
    Ok(items)
}

#[utoipa::path(
    post,
    path = "/api/cache/invalidate",
    tag = "admin",
    summary = "Mark stored copies stale so the next request refetches them",
    description = "Items that cannot be read are reported under `errors`; the request still \
        answers 200. Needs `Authorization: Bearer <token>` when an admin token is configured.",
    request_body = InvalidateRequest,
    security((), ("adminToken" = [])),
    responses(
        (status = 200, description = "What was invalidated, and the items refused.",
            body = InvalidateResult),
        BadRequest, Unauthorized, Internal, Unavailable
    )
)]
pub async fn post_invalidate(state: ApiState, req: Request) -> Result<Response, ApiError> {
    crate::http::require_admin(&state, req.authorization.as_deref())?;
    let items = read_items(&req.body)?;
    let mut errors = Vec::new();
    let mut accepted = Vec::new();
    for item in items {
        match item_target(&item) {
            Ok(t) => accepted.push(t),
            Err(error) => errors.push(Refused { error, item }),
        }
    }
    let (mut signatures, mut teams) = (Vec::new(), Vec::new());
    for (_, _, t) in &accepted {
        match t {
            Target::One(sig) => signatures.push(*sig),
            Target::Team(team) => teams.push(*team),
        }
    }
    let counts = state.pipeline.stores.invalidate(signatures, teams).await?;
    let invalidated: Vec<Done> = accepted
        .into_iter()
        .map(|(kind, id, t)| {
            let n = match t {
                Target::One(sig) => counts
                    .signatures
                    .iter()
                    .filter(|(s, existed)| *s == sig && *existed)
                    .count(),
                Target::Team(team) => counts
                    .teams
                    .iter()
                    .filter(|(t, _)| *t == team)
                    .map(|(_, n)| *n)
                    .sum(),
            };
            Done {
                kind,
                id,
                invalidated: n,
            }
        })
        .collect();
    Ok(json(
        StatusCode::OK,
        &InvalidateResult {
            errors,
            invalidated,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn old_keys_map_to_types() {
        assert_eq!(
            from_key("opendota-match-123.json").unwrap(),
            ("matches", "123".into())
        );
        assert_eq!(
            from_key("opendota-player-stats-5").unwrap(),
            ("player-stats", "5".into())
        );
        assert_eq!(
            from_key("opendota-player-5.json").unwrap(),
            ("players", "5".into())
        );
        assert_eq!(
            from_key("dotabuff-team-9-matches.html").unwrap(),
            ("teams", "9".into())
        );
        assert_eq!(
            from_key("dotabuff-league-16435").unwrap(),
            ("leagues", "16435".into())
        );
        assert!(from_key("redis-thing-1").is_err());
    }

    #[test]
    fn key_type_mismatch_is_an_error() {
        let item = serde_json::json!({"type": "players", "key": "opendota-match-1.json"});
        assert!(item_target(&item).is_err());
    }
}
