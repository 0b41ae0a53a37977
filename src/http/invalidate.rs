//! `POST /api/cache/invalidate`: marks stored copies stale so the next request refetches them.
//! Items come as `{"type":"matches","id":"123"}` or in the older key form
//! `{"type":"matches","key":"opendota-match-123.json"}`; either a list under `items` or one
//! item as the whole body. Bad items are reported under `errors`, never as a 500.

use serde::Serialize;
use serde_json::{Value, json};
use warp::http::StatusCode;
use warp::reply::Response;

use super::ApiState;
use super::reply::{ApiError, json};
use crate::actors::cache_keeper::Invalidate;
use crate::domain::{LeagueId, MatchId, PlayerId, Signature, TeamId};

/// Items accepted in one request; a bound on the work one call can cause.
pub const MAX_ITEMS: usize = 1000;

/// What one item names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    One(Signature),
    /// Every import of the team (all leagues) and its cached Dotabuff pages.
    Team(TeamId),
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Done {
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
    let kind = item
        .get("type")
        .and_then(Value::as_str)
        .ok_or("item needs a \"type\"")?;
    let id = match (item.get("id"), item.get("key").and_then(Value::as_str)) {
        (Some(id), _) => match id {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            _ => return Err("\"id\" must be a string or a number".to_string()),
        },
        (None, Some(key)) => {
            let (key_kind, id) = from_key(key)?;
            if target(kind, &id)?.kind_name() != target(key_kind, &id)?.kind_name() {
                return Err(format!("key {key:?} is not of type {kind:?}"));
            }
            id
        }
        (None, None) => return Err("item needs an \"id\" or a \"key\"".to_string()),
    };
    let t = target(kind, &id)?;
    Ok((kind.to_string(), id, t))
}

impl Target {
    fn kind_name(&self) -> &'static str {
        match self {
            Target::One(sig) => sig.kind().as_str(),
            Target::Team(_) => "team",
        }
    }
}

pub async fn handle(
    state: ApiState,
    body: bytes::Bytes,
    authorization: Option<String>,
) -> Result<Response, ApiError> {
    super::require_admin(&state, authorization.as_deref())?;
    let value: Value = serde_json::from_slice(&body)
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
    let mut errors = Vec::new();
    let mut accepted = Vec::new();
    for item in items {
        match item_target(&item) {
            Ok(t) => accepted.push(t),
            Err(error) => errors.push(json!({"item": item, "error": error})),
        }
    }
    let counts = state
        .keeper
        .send(Invalidate {
            signatures: accepted
                .iter()
                .filter_map(|(_, _, t)| match t {
                    Target::One(sig) => Some(*sig),
                    Target::Team(_) => None,
                })
                .collect(),
            teams: accepted
                .iter()
                .filter_map(|(_, _, t)| match t {
                    Target::Team(team) => Some(*team),
                    Target::One(_) => None,
                })
                .collect(),
        })
        .await??;
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
        &json!({"invalidated": invalidated, "errors": errors}),
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
        let item = json!({"type": "players", "key": "opendota-match-1.json"});
        assert!(item_target(&item).is_err());
    }
}
