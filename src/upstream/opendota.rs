//! OpenDota API calls: builds each endpoint's URL, adds the optional API key, and checks that
//! a body parses into what the caller needs before it is stored (an unreadable body must never
//! reach the cache). A body that fails the check is [`UpstreamError::Garbled`] (retried: a CDN
//! that cut a body or served a bot-check page once may serve the real one next time), unless
//! it is OpenDota's explicit "invalid id" answer, which is permanent.
//!
//! Parsing and checking run on the blocking pool ([`off_thread`]), not on the fetcher's
//! thread: each call hands a pure `read` step the parsed body there, and only what it keeps
//! (the raw bytes, a few IDs, small values) comes back.
use bytes::Bytes;
use serde_json::Value;

use super::client::{Request, UpstreamClient};
use super::error::{UpstreamError, invalid_id_in};
use super::match_head;
use super::off_thread;
use super::recorder::Recorder;
use crate::config::ApiKey;
use crate::domain::{Fanout, LeagueId, MatchId, PlayerId, Service, TeamId};

/// Parsed OpenDota matches exceed 1 MB; 32 MB leaves room while bounding memory per job.
pub const MAX_BODY_BYTES: usize = 32 * 1024 * 1024;

/// OpenDota client bound to a base URL (`https://api.opendota.com/api` or a fixture).
#[derive(Clone)]
pub struct OpenDota {
    client: UpstreamClient,
    base_url: String,
    api_key: Option<ApiKey>,
    /// `--record-dir`: where accepted bodies are also written.
    recorder: Option<Recorder>,
}

/// A match body with what the pipeline needs from it.
pub struct MatchBody {
    pub raw: Bytes,
    pub sides: MatchSides,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MatchPlayer {
    pub id: PlayerId,
    pub radiant: bool,
}

/// The public players of a match (anonymous ones, `account_id: null`, are left out) and which
/// team played which side. Read from fetched and from stored bodies alike.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MatchSides {
    pub players: Vec<MatchPlayer>,
    pub radiant_team_id: Option<TeamId>,
    pub dire_team_id: Option<TeamId>,
}

impl MatchSides {
    pub fn read(value: &Value) -> Self {
        Self {
            players: match_players(value),
            radiant_team_id: match_team(value, "radiant_team_id"),
            dire_team_id: match_team(value, "dire_team_id"),
        }
    }

    /// The players a match fans out to. The one copy of this rule: the MatchFetcher queues
    /// these and a team import's progress counts these, so the two cannot disagree (if they
    /// did, an import would wait forever for players nobody queued).
    /// `TeamSide(team)` is that team's side, or every public player when the match does not
    /// say which side `team` played (e.g. no `dire_team_id`).
    pub fn players_for(&self, fanout: Fanout) -> Vec<PlayerId> {
        let side = match fanout {
            Fanout::None => return Vec::new(),
            Fanout::All => None,
            Fanout::TeamSide(team) if self.radiant_team_id == Some(team) => Some(true),
            Fanout::TeamSide(team) if self.dire_team_id == Some(team) => Some(false),
            Fanout::TeamSide(_) => None,
        };
        self.players
            .iter()
            .filter(|p| side.is_none_or(|radiant| p.radiant == radiant))
            .map(|p| p.id)
            .collect()
    }
}

/// Reads the public players of an OpenDota match body.
fn match_players(value: &Value) -> Vec<MatchPlayer> {
    let mut out: Vec<MatchPlayer> = value
        .get("players")
        .and_then(Value::as_array)
        .map(|players| {
            players
                .iter()
                .filter_map(|p| {
                    let id = PlayerId::new(p.get("account_id").and_then(Value::as_u64)?)?;
                    // player_slot < 128 is radiant; it is present in every format, isRadiant is not.
                    let radiant = p
                        .get("player_slot")
                        .and_then(Value::as_u64)
                        .map(|slot| slot < 128)
                        .or_else(|| p.get("isRadiant").and_then(Value::as_bool))
                        .unwrap_or(true);
                    Some(MatchPlayer { id, radiant })
                })
                .collect()
        })
        .unwrap_or_default();
    out.sort_by_key(|p| p.id);
    out.dedup_by_key(|p| p.id);
    out
}

/// `radiant_team_id` / `dire_team_id` of a match body, when present and non-zero.
pub fn match_team(value: &Value, key: &str) -> Option<TeamId> {
    value.get(key).and_then(Value::as_u64).and_then(TeamId::new)
}

impl OpenDota {
    pub fn new(client: UpstreamClient, base_url: &str, api_key: Option<ApiKey>) -> Self {
        Self {
            client,
            base_url: base_url.trim_end_matches('/').to_string(),
            api_key,
            recorder: None,
        }
    }

    /// Also writes every accepted body to `recorder` (none: records nothing).
    pub fn recording(mut self, recorder: Option<Recorder>) -> Self {
        self.recorder = recorder;
        self
    }

    /// GET `{base}/{path}`, then, on the blocking pool, parse the body ([`parse_json`]) and
    /// hand it to `read`, which checks it and returns what the caller keeps. The JSON tree is
    /// built and dropped there; the fetcher's thread only waits. A body `read` accepted is
    /// recorded (`--record-dir`) before it is returned; nothing else is.
    async fn get_json<T, F>(&self, path: &str, read: F) -> Result<T, UpstreamError>
    where
        T: Send + 'static,
        F: FnOnce(Bytes, Value) -> Result<T, UpstreamError> + Send + 'static,
    {
        self.get_parsed(path, |raw| serde_json::from_slice(raw), read)
            .await
    }

    /// [`Self::get_json`] with `parse` making the `Value` `read` is given (a match's head:
    /// [`match_head::parse`]).
    async fn get_parsed<T, F>(
        &self,
        path: &str,
        parse: fn(&[u8]) -> Result<Value, serde_json::Error>,
        read: F,
    ) -> Result<T, UpstreamError>
    where
        T: Send + 'static,
        F: FnOnce(Bytes, Value) -> Result<T, UpstreamError> + Send + 'static,
    {
        let query: Vec<(&str, String)> = self
            .api_key
            .iter()
            .map(|k| ("api_key", k.0.clone()))
            .collect();
        let sent_query = self.recorder.as_ref().map(|_| query.clone());
        let raw = self
            .client
            .get(Request {
                service: Service::OpenDota,
                url: format!("{}/{}", self.base_url, path),
                query,
                max_bytes: MAX_BODY_BYTES,
            })
            .await?;
        // A reference count, not a copy of the body.
        let body = raw.clone();
        let kept = off_thread::run(Service::OpenDota, move || {
            let value = parse_json(&raw, parse)?;
            read(raw, value)
        })
        .await??;
        if let (Some(recorder), Some(query)) = (&self.recorder, sent_query) {
            recorder.record(Service::OpenDota, path, &query, body).await;
        }
        Ok(kept)
    }

    /// `/matches/{id}`: must be an object with this `match_id` and a `players` array.
    pub async fn get_match(&self, id: MatchId) -> Result<MatchBody, UpstreamError> {
        self.get_match_with(id, |_| ()).await.map(|(body, ())| body)
    }

    /// [`Self::get_match`], plus `also` applied to the match's head on the blocking pool, so a
    /// caller that needs more of it does not parse it a second time. The head
    /// ([`match_head::parse`]) holds only the fields in [`match_head::MATCH_FIELDS`] and each
    /// player's [`match_head::PLAYER_FIELDS`]: a reader of another field adds it there.
    pub async fn get_match_with<T: Send + 'static>(
        &self,
        id: MatchId,
        also: impl FnOnce(&Value) -> T + Send + 'static,
    ) -> Result<(MatchBody, T), UpstreamError> {
        let path = format!("matches/{id}");
        self.get_parsed(&path, match_head::parse, move |raw, head| {
            let body = check_match(id, raw, &head)?;
            Ok((body, also(&head)))
        })
        .await
    }

    /// `/players/{id}`: must be an object with a `profile` (OpenDota answers unknown accounts
    /// with `{"profile": null}` style bodies; those are treated as not found).
    pub async fn get_player(&self, id: PlayerId) -> Result<Bytes, UpstreamError> {
        self.get_player_with(id, |_| ())
            .await
            .map(|(body, ())| body)
    }

    /// [`Self::get_player`], plus `also` applied to the parsed body on the blocking pool.
    pub async fn get_player_with<T: Send + 'static>(
        &self,
        id: PlayerId,
        also: impl FnOnce(&Value) -> T + Send + 'static,
    ) -> Result<(Bytes, T), UpstreamError> {
        self.get_json(&format!("players/{id}"), move |raw, value| {
            let body = check_player(raw, &value)?;
            Ok((body, also(&value)))
        })
        .await
    }
}

/// A 2xx body as JSON, unless it is not JSON ([`UpstreamError::Garbled`]) or is OpenDota's
/// explicit "invalid id" answer ([`UpstreamError::InvalidId`]). CPU-heavy for a large body.
fn parse_json(
    raw: &[u8],
    parse: fn(&[u8]) -> Result<Value, serde_json::Error>,
) -> Result<Value, UpstreamError> {
    let value = parse(raw).map_err(|e| garbled(not_json_reason(raw, &e)))?;
    if let Some(message) = invalid_id_in(&value) {
        return Err(UpstreamError::InvalidId {
            service: Service::OpenDota,
            message,
        });
    }
    Ok(value)
}

/// The checks of a `/matches/{id}` body, and what the pipeline needs from it.
fn check_match(id: MatchId, raw: Bytes, value: &Value) -> Result<MatchBody, UpstreamError> {
    if value.get("match_id").and_then(Value::as_u64) != Some(id.get()) {
        return Err(garbled("match body lacks the requested match_id".into()));
    }
    if !value.get("players").is_some_and(Value::is_array) {
        return Err(garbled("match body has no players array".into()));
    }
    Ok(MatchBody {
        sides: MatchSides::read(value),
        raw,
    })
}

/// The checks of a `/players/{id}` body.
fn check_player(raw: Bytes, value: &Value) -> Result<Bytes, UpstreamError> {
    if !value.is_object() {
        return Err(garbled("player body is not an object".into()));
    }
    if value.get("profile").is_none_or(Value::is_null) {
        return Err(UpstreamError::NotFound {
            service: Service::OpenDota,
        });
    }
    Ok(raw)
}

fn garbled(reason: String) -> UpstreamError {
    UpstreamError::Garbled {
        service: Service::OpenDota,
        reason,
    }
}

/// Why a 2xx body is not JSON, in words an operator reading a `failed` status understands: an
/// HTML page (a CDN's bot check), a body cut short, or other bytes.
fn not_json_reason(raw: &[u8], err: &serde_json::Error) -> String {
    let start = raw.trim_ascii_start();
    if start.first() == Some(&b'<') {
        format!(
            "an HTML page instead of JSON (a bot check?), {} bytes",
            raw.len()
        )
    } else if err.is_eof() {
        format!("truncated JSON after {} bytes ({err})", raw.len())
    } else {
        format!("not JSON ({err})")
    }
}

impl OpenDota {
    /// The JSON array at `path`, given to `read` on the blocking pool.
    async fn get_array<T, F>(&self, path: &str, read: F) -> Result<T, UpstreamError>
    where
        T: Send + 'static,
        F: FnOnce(Vec<Value>) -> T + Send + 'static,
    {
        let not_array = format!("/{path} is not a JSON array");
        self.get_json(path, move |_, value| match value {
            Value::Array(items) => Ok(read(items)),
            _ => Err(garbled(not_array)),
        })
        .await
    }

    /// A JSON object at `path` (small ones only: the value comes back to the caller's thread).
    async fn get_object(&self, path: &str) -> Result<Value, UpstreamError> {
        let not_object = format!("/{path} is not a JSON object");
        self.get_json(path, move |_, value| {
            if value.is_object() {
                Ok(value)
            } else {
                Err(garbled(not_object))
            }
        })
        .await
    }

    /// `/teams/{id}/matches`: every match the team played, with `leagueid` and its side, given
    /// to `read` on the blocking pool (a long-lived team has thousands).
    pub async fn get_team_matches<T, F>(&self, team: TeamId, read: F) -> Result<T, UpstreamError>
    where
        T: Send + 'static,
        F: FnOnce(Vec<Value>) -> T + Send + 'static,
    {
        self.get_array(&format!("teams/{team}/matches"), read).await
    }

    /// `/teams/{id}`: the team's name and tag.
    pub async fn get_team(&self, team: TeamId) -> Result<Value, UpstreamError> {
        self.get_object(&format!("teams/{team}")).await
    }

    /// `/leagues/{id}`: name and tier.
    pub async fn get_league(&self, league: LeagueId) -> Result<Value, UpstreamError> {
        self.get_object(&format!("leagues/{league}")).await
    }

    /// `/leagues/{id}/matchIds`: every match ID of the league, all tiers.
    pub async fn get_league_match_ids(
        &self,
        league: LeagueId,
    ) -> Result<Vec<MatchId>, UpstreamError> {
        self.get_array(&format!("leagues/{league}/matchIds"), |items| {
            items
                .iter()
                .filter_map(|v| v.as_u64().or_else(|| v.as_str()?.parse().ok()))
                .filter_map(MatchId::new)
                .collect()
        })
        .await
    }

    /// `/players/{id}/{what}` as an array (`heroes`, `recentMatches`: a few hundred entries).
    pub async fn get_player_list(
        &self,
        id: PlayerId,
        what: &str,
    ) -> Result<Vec<Value>, UpstreamError> {
        self.get_array(&format!("players/{id}/{what}"), |items| items)
            .await
    }

    /// `/players/{id}/wl`: `{"win": n, "lose": n}`.
    pub async fn get_player_wl(&self, id: PlayerId) -> Result<Value, UpstreamError> {
        self.get_object(&format!("players/{id}/wl")).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_match_fans_out_to_all_public_players_or_one_teams_side() {
        let body = serde_json::json!({
            "radiant_team_id": 10,
            "dire_team_id": 20,
            "players": [
                {"account_id": 1, "player_slot": 0},
                {"account_id": null, "player_slot": 1},
                {"account_id": 2, "player_slot": 128},
                {"account_id": 3, "isRadiant": false},
            ],
        });
        let sides = MatchSides::read(&body);
        let ids = |fanout| -> Vec<u64> {
            sides
                .players_for(fanout)
                .into_iter()
                .map(PlayerId::get)
                .collect()
        };
        let team = |id| TeamId::new(id).unwrap();
        assert_eq!(ids(Fanout::All), vec![1, 2, 3]);
        assert_eq!(ids(Fanout::None), Vec::<u64>::new());
        assert_eq!(ids(Fanout::TeamSide(team(10))), vec![1]);
        assert_eq!(ids(Fanout::TeamSide(team(20))), vec![2, 3]);
        // A team the match does not name: its side is unknown, so everyone.
        assert_eq!(ids(Fanout::TeamSide(team(30))), vec![1, 2, 3]);
    }

    #[test]
    fn a_non_json_body_is_described_by_what_it_looks_like() {
        let reason = |raw: &[u8]| {
            let err = serde_json::from_slice::<Value>(raw).unwrap_err();
            not_json_reason(raw, &err)
        };
        assert!(reason(b"\n <!DOCTYPE html><html>").starts_with("an HTML page"));
        assert!(reason(br#"{"match_id": 1, "play"#).starts_with("truncated JSON after 21 bytes"));
        assert!(reason(b"\x00\x01garbage").starts_with("not JSON"));
    }

    /// The head of every demo match holds what the whole body holds in each field read, so
    /// the checks, the fan-out and the summary cannot tell them apart.
    #[test]
    fn a_matchs_head_reads_as_the_whole_body_does() {
        let dir =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/demo/opendota/matches");
        let mut seen = 0;
        for entry in std::fs::read_dir(dir).unwrap() {
            let raw = std::fs::read(entry.unwrap().path()).unwrap();
            let full: Value = serde_json::from_slice(&raw).unwrap();
            let head = match_head::parse(&raw).unwrap();
            for field in match_head::MATCH_FIELDS {
                assert_eq!(head.get(field), full.get(field), "{field}");
            }
            let players = |v: &Value| v["players"].as_array().unwrap().clone();
            let (head_players, full_players) = (players(&head), players(&full));
            assert_eq!(head_players.len(), full_players.len());
            for (h, f) in head_players.iter().zip(&full_players) {
                for field in match_head::PLAYER_FIELDS {
                    assert_eq!(h.get(field), f.get(field), "{field}");
                }
            }
            assert_eq!(MatchSides::read(&head), MatchSides::read(&full));
            let id = MatchId::new(full["match_id"].as_u64().unwrap()).unwrap();
            assert!(check_match(id, Bytes::from(raw), &head).is_ok());
            seen += 1;
        }
        assert!(seen > 0, "no demo matches");
    }

    #[test]
    fn api_key_debug_is_redacted() {
        let key = ApiKey::new("secret-123".into()).unwrap();
        assert!(!format!("{key:?}").contains("secret"));
    }
}
