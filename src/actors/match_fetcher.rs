//! `MatchFetcher`: fetches `/matches/{id}` from OpenDota, stores it, and fans out a player job
//! for every non-anonymous player in it (`account_id: null` players are never queued), or only
//! for one team's side when the job came from a team import configured that way.

use super::cache_keeper::Child;
use super::fetcher::Fetcher;
use super::opendota_jobs::{FetchResult, OpenDotaJobs, OpenDotaKind};
use super::pipeline::Fetched;
use crate::domain::{Fanout, MatchId, ResourceKind, Signature};
use crate::team::summary;
use crate::upstream::opendota::OpenDota;

/// The supervised match fetcher actor.
pub type MatchFetcher = Fetcher<OpenDotaJobs<Matches>>;

/// Match jobs.
pub enum Matches {}

impl OpenDotaKind for Matches {
    const KIND: ResourceKind = ResourceKind::Match;
    type Id = MatchId;

    async fn fetch(opendota: OpenDota, id: MatchId, fanout: Fanout) -> FetchResult {
        // Parsed and checked on the blocking pool (see `upstream::off_thread`).
        let (body, summary) = opendota.get_match_with(id, summary::of_match).await?;
        let players = body.sides.players_for(fanout);
        Ok(Fetched {
            // No copy: the client's buffer is handed over.
            body: Vec::from(body.raw),
            children: players
                .into_iter()
                .map(|p| Child::new(Signature::Player(p)))
                .collect(),
            summary,
        })
    }

    fn id(signature: Signature) -> Option<MatchId> {
        match signature {
            Signature::Match(id) => Some(id),
            _ => None,
        }
    }
}
