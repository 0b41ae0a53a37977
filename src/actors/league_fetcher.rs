//! `LeagueFetcher`: a league's info (`/leagues/{id}`: name, tier) and its match IDs
//! (`/leagues/{id}/matchIds`, all tiers), stored as one record. The league's matches are queued
//! only when the request asked for it (`?queueMatches=true`), as the job's fan-out says.

use serde_json::{Value, json};

use super::cache_keeper::Child;
use super::fetcher::{FetchJobs, Fetcher, wrong_kind};
use super::pipeline::Fetched;
use crate::domain::{Fanout, Job, ResourceKind, Signature};
use crate::upstream::error::UpstreamError;
use crate::upstream::opendota::OpenDota;

/// The supervised league fetcher actor.
pub type LeagueFetcher = Fetcher<LeagueJobs>;

#[derive(Clone)]
pub struct LeagueJobs {
    pub opendota: OpenDota,
}

impl FetchJobs for LeagueJobs {
    const KIND: ResourceKind = ResourceKind::League;
    const NAME: &'static str = "LeagueFetcher";

    fn fetch(
        &self,
        job: Job,
    ) -> impl std::future::Future<Output = Result<Fetched, UpstreamError>> + 'static {
        let opendota = self.opendota.clone();
        async move {
            let Signature::League(id) = job.signature else {
                return Err(wrong_kind(&job, ResourceKind::League));
            };
            let info = opendota.get_league(id).await?;
            let match_ids = opendota.get_league_match_ids(id).await?;
            let record = json!({
                "leagueId": id,
                "name": info.get("name"),
                "tier": info.get("tier"),
                "matchIds": match_ids,
            });
            let children = match job.fanout {
                Fanout::None => Vec::new(),
                Fanout::All | Fanout::TeamSide(_) => match_ids
                    .iter()
                    .map(|m| Child::new(Signature::Match(*m)))
                    .collect(),
            };
            Ok(Fetched {
                body: record.to_string().into_bytes(),
                children,
            })
        }
    }
}

/// The match IDs of a stored league record.
pub fn stored_match_ids(record: &Value) -> Vec<crate::domain::MatchId> {
    record
        .get("matchIds")
        .and_then(Value::as_array)
        .map(|ids| {
            ids.iter()
                .filter_map(|v| v.as_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}
