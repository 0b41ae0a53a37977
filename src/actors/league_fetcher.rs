//! `LeagueFetcher`: a league's info (`/leagues/{id}`: name, tier) and its match IDs
//! (`/leagues/{id}/matchIds`, all tiers), stored as one [`LeagueRecord`]. The league's matches
//! are queued only when the request asked for it (`?queueMatches=true`), as the job's fan-out
//! says.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use super::cache_keeper::Child;
use super::fetcher::Fetcher;
use super::opendota_jobs::{FetchResult, OpenDotaJobs, OpenDotaKind};
use super::pipeline::Fetched;
use crate::domain::{Fanout, LeagueId, MatchId, ResourceKind, Service, Signature};
use crate::upstream::error::UpstreamError;
use crate::upstream::opendota::OpenDota;

/// The supervised league fetcher actor.
pub type LeagueFetcher = Fetcher<OpenDotaJobs<Leagues>>;

// Fields in alphabetical order: records stored before this type existed were written with
// sorted keys (a `json!` map), and the order keeps old and new records byte-for-byte alike.
/// The stored league, served as is by `GET /api/leagues/{id}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = League)]
pub struct LeagueRecord {
    pub league_id: LeagueId,
    pub match_ids: Vec<MatchId>,
    /// As OpenDota names it; null when it has none.
    pub name: Option<String>,
    /// OpenDota's tier (`premium`, `professional`, `amateur`, ...).
    pub tier: Option<String>,
}

/// League jobs: two calls, one record; the matches are children only when asked for.
pub enum Leagues {}

impl OpenDotaKind for Leagues {
    const KIND: ResourceKind = ResourceKind::League;
    type Id = LeagueId;

    async fn fetch(opendota: OpenDota, id: LeagueId, fanout: Fanout) -> FetchResult {
        let info = opendota.get_league(id).await?;
        let match_ids = opendota.get_league_match_ids(id).await?;
        let text = |key: &str| info.get(key).and_then(Value::as_str).map(str::to_string);
        let children = match fanout {
            Fanout::None => Vec::new(),
            Fanout::All | Fanout::TeamSide(_) => match_ids
                .iter()
                .map(|m| Child::new(Signature::Match(*m)))
                .collect(),
        };
        let record = LeagueRecord {
            league_id: id,
            name: text("name"),
            tier: text("tier"),
            match_ids,
        };
        Ok(Fetched::new(encode(&record)?, children))
    }

    fn id(signature: Signature) -> Option<LeagueId> {
        match signature {
            Signature::League(id) => Some(id),
            _ => None,
        }
    }
}

/// A record built from OpenDota bodies, as stored. Encoding plain records cannot fail in
/// practice; if it ever did, refetching would not help, so it is a permanent failure.
pub(crate) fn encode<T: Serialize>(record: &T) -> Result<Vec<u8>, UpstreamError> {
    serde_json::to_vec(record).map_err(|e| UpstreamError::Unreadable {
        service: Service::OpenDota,
        reason: format!("could not encode the record: {e}"),
    })
}
