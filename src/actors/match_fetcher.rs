//! `MatchFetcher`: fetches `/matches/{id}` from OpenDota, stores it, and fans out a player job
//! for every non-anonymous player in it (`account_id: null` players are never queued), or only
//! for one team's side when the job came from a team import configured that way.

use super::cache_keeper::Child;
use super::fetcher::{FetchJobs, Fetcher, wrong_kind};
use super::pipeline::Fetched;
use crate::domain::Job;
use crate::domain::{ResourceKind, Signature};
use crate::team::summary;
use crate::upstream::error::UpstreamError;
use crate::upstream::opendota::OpenDota;

/// The supervised match fetcher actor.
pub type MatchFetcher = Fetcher<MatchJobs>;

#[derive(Clone)]
pub struct MatchJobs {
    pub opendota: OpenDota,
}

impl FetchJobs for MatchJobs {
    const KIND: ResourceKind = ResourceKind::Match;
    const NAME: &'static str = "MatchFetcher";

    fn fetch(
        &self,
        job: Job,
    ) -> impl std::future::Future<Output = Result<Fetched, UpstreamError>> + 'static {
        let opendota = self.opendota.clone();
        async move {
            let Signature::Match(id) = job.signature else {
                return Err(wrong_kind(&job, ResourceKind::Match));
            };
            // Parsed and checked on the blocking pool (see `upstream::off_thread`).
            let (body, summary) = opendota.get_match_with(id, summary::of_match).await?;
            let players = body.sides.players_for(job.fanout);
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
    }
}
