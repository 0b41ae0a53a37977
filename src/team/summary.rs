//! Small summaries of stored matches and players, made from the body once when it is stored
//! and kept beside it, so a team view of a 300-match league reads 300 summaries of a few
//! hundred bytes instead of 300 match bodies of hundreds of KB. Bodies stored before summaries
//! were kept are summarised from the body when read.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use crate::domain::{Fanout, PlayerId, Signature, TeamId};
use crate::upstream::opendota::{MatchPlayer, MatchSides, match_team};

/// What a team view needs of a stored match: its headline fields and who played which side.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MatchFacts {
    pub dire_name: Option<String>,
    pub dire_score: Option<i64>,
    pub duration: Option<i64>,
    pub match_id: Option<u64>,
    pub radiant_name: Option<String>,
    pub radiant_score: Option<i64>,
    pub radiant_win: Option<bool>,
    pub start_time: Option<i64>,
    pub radiant_team_id: Option<TeamId>,
    pub dire_team_id: Option<TeamId>,
    /// The public players with their side (radiant: true).
    pub players: Vec<(PlayerId, bool)>,
}

/// Fields copied from a stored match for a team view; null where it has none.
// The summaries keep their fields in alphabetical order: they replaced `json!` maps (sorted
// keys), and the order keeps the served bytes as they were.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MatchSummary {
    pub dire_name: Option<String>,
    pub dire_score: Option<i64>,
    /// Seconds.
    pub duration: Option<i64>,
    pub match_id: Option<String>,
    pub radiant_name: Option<String>,
    pub radiant_score: Option<i64>,
    pub radiant_win: Option<bool>,
    /// Unix seconds.
    pub start_time: Option<i64>,
    /// Whether the imported team won; null when it played neither side by ID.
    pub won: Option<bool>,
}

/// Fields copied from a stored player; null where it has none. Stored as is as the player's
/// summary.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PlayerSummary {
    pub account_id: PlayerId,
    pub avatar: Option<String>,
    /// As OpenDota wrote it (an integer or a decimal).
    #[schema(value_type = Option<f64>)]
    pub mmr_estimate: Option<serde_json::Number>,
    pub name: Option<String>,
    pub personaname: Option<String>,
    pub rank_tier: Option<i64>,
}

fn text(v: Option<&Value>) -> Option<String> {
    v.and_then(Value::as_str).map(str::to_string)
}

fn int(v: Option<&Value>) -> Option<i64> {
    v.and_then(Value::as_i64)
}

impl MatchFacts {
    /// Reads an OpenDota match body.
    pub fn read(body: &Value) -> Self {
        let sides = MatchSides::read(body);
        Self {
            dire_name: text(body.get("dire_name")),
            dire_score: int(body.get("dire_score")),
            duration: int(body.get("duration")),
            match_id: body.get("match_id").and_then(Value::as_u64),
            radiant_name: text(body.get("radiant_name")),
            radiant_score: int(body.get("radiant_score")),
            radiant_win: body.get("radiant_win").and_then(Value::as_bool),
            start_time: int(body.get("start_time")),
            radiant_team_id: match_team(body, "radiant_team_id"),
            dire_team_id: match_team(body, "dire_team_id"),
            players: sides.players.iter().map(|p| (p.id, p.radiant)).collect(),
        }
    }

    /// The players this match fans out to (the one rule, [`MatchSides::players_for`]).
    pub fn players_for(&self, fanout: Fanout) -> Vec<PlayerId> {
        MatchSides {
            players: self
                .players
                .iter()
                .map(|&(id, radiant)| MatchPlayer { id, radiant })
                .collect(),
            radiant_team_id: self.radiant_team_id,
            dire_team_id: self.dire_team_id,
        }
        .players_for(fanout)
    }

    /// The summary shown in `team`'s view.
    pub fn summary(&self, team: TeamId) -> MatchSummary {
        let radiant = self.radiant_team_id == Some(team);
        let dire = self.dire_team_id == Some(team);
        let won = match (radiant, dire, self.radiant_win) {
            (true, _, Some(w)) => Some(w),
            (_, true, Some(w)) => Some(!w),
            _ => None,
        };
        MatchSummary {
            dire_name: self.dire_name.clone(),
            dire_score: self.dire_score,
            duration: self.duration,
            match_id: self.match_id.map(|id| id.to_string()),
            radiant_name: self.radiant_name.clone(),
            radiant_score: self.radiant_score,
            radiant_win: self.radiant_win,
            start_time: self.start_time,
            won,
        }
    }
}

impl PlayerSummary {
    /// Reads an OpenDota player body.
    pub fn read(id: PlayerId, body: &Value) -> Self {
        let profile = body.get("profile");
        let field = |key: &str| profile.and_then(|p| p.get(key));
        Self {
            account_id: id,
            avatar: text(field("avatarfull").or_else(|| field("avatar"))),
            mmr_estimate: body
                .get("mmr_estimate")
                .and_then(|m| m.get("estimate"))
                .and_then(|e| e.as_number().cloned()),
            name: text(field("name")),
            personaname: text(field("personaname")),
            rank_tier: int(body.get("rank_tier")),
        }
    }
}

/// The summary to store with a fetched body of `sig` (JSON), for the kinds a team view shows;
/// `None` for other kinds and for a body that is not JSON. Parses the body: blocking CPU work
/// for a large match.
pub fn of_body(sig: &Signature, body: &[u8]) -> Option<Vec<u8>> {
    if !matches!(sig, Signature::Match(_) | Signature::Player(_)) {
        return None;
    }
    let value: Value = serde_json::from_slice(body).ok()?;
    match sig {
        Signature::Player(id) => of_player(*id, &value),
        _ => of_match(&value),
    }
}

/// The summary of an already parsed match body (JSON).
pub fn of_match(body: &Value) -> Option<Vec<u8>> {
    serde_json::to_vec(&MatchFacts::read(body)).ok()
}

/// The summary of an already parsed player body (JSON).
pub fn of_player(id: PlayerId, body: &Value) -> Option<Vec<u8>> {
    serde_json::to_vec(&PlayerSummary::read(id, body)).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::MatchId;
    use serde_json::json;

    /// The summaries are written exactly as the `json!` maps they replaced wrote them (sorted
    /// keys, nulls for what the stored body lacks).
    #[test]
    fn summaries_serialise_as_before() {
        let team = TeamId::new(9).unwrap();
        let body = json!({"match_id": 7, "radiant_team_id": 9, "radiant_win": false,
            "start_time": 1732583370, "radiant_score": 30});
        assert_eq!(
            serde_json::to_string(&MatchFacts::read(&body).summary(team)).unwrap(),
            r#"{"direName":null,"direScore":null,"duration":null,"matchId":"7","radiantName":null,"radiantScore":30,"radiantWin":false,"startTime":1732583370,"won":false}"#
        );
        let player = json!({"profile": {"personaname": "p", "avatar": "a"}, "rank_tier": 55,
            "mmr_estimate": {"estimate": 3500}});
        assert_eq!(
            serde_json::to_string(&PlayerSummary::read(PlayerId::new(5).unwrap(), &player))
                .unwrap(),
            r#"{"accountId":"5","avatar":"a","mmrEstimate":3500,"name":null,"personaname":"p","rankTier":55}"#
        );
    }

    /// A stored summary gives the same fan-out and the same summary as the body it came from.
    #[test]
    fn a_stored_match_summary_answers_like_its_body() {
        let team = TeamId::new(9).unwrap();
        let body = json!({"match_id": 7, "radiant_team_id": 9, "dire_team_id": 4,
            "radiant_win": true, "players": [
                {"account_id": 11, "player_slot": 0}, {"account_id": 12, "player_slot": 128},
                {"account_id": null, "player_slot": 1}]});
        let bytes = serde_json::to_vec(&body).unwrap();
        let sig = Signature::Match(MatchId::new(7).unwrap());
        let stored: MatchFacts = serde_json::from_slice(&of_body(&sig, &bytes).unwrap()).unwrap();
        let sides = MatchSides::read(&body);
        for fanout in [Fanout::All, Fanout::TeamSide(team), Fanout::None] {
            assert_eq!(stored.players_for(fanout), sides.players_for(fanout));
        }
        assert_eq!(stored.summary(team), MatchFacts::read(&body).summary(team));
        assert_eq!(stored.summary(team).won, Some(true));
        assert_eq!(of_body(&sig, b"not json"), None);
    }

    /// Fetched matches are summarised from their head (`upstream::match_head`): it must hold
    /// every field [`MatchFacts::read`] reads, or summaries would lose it without a sound.
    #[test]
    fn a_match_summary_from_the_head_is_the_one_from_the_whole_body() {
        let dir =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/demo/opendota/matches");
        for entry in std::fs::read_dir(dir).unwrap() {
            let raw = std::fs::read(entry.unwrap().path()).unwrap();
            let full: Value = serde_json::from_slice(&raw).unwrap();
            let head = crate::upstream::match_head::parse(&raw).unwrap();
            assert_eq!(MatchFacts::read(&head), MatchFacts::read(&full));
            assert!(MatchFacts::read(&full).start_time.is_some());
        }
    }
}
