//! `PlayerFetcher`: fetches `/players/{id}` (profile, rank tier, MMR estimate) from OpenDota.

use super::fetcher::{FetchJobs, Fetcher, wrong_kind};
use super::pipeline::Fetched;
use crate::domain::Job;
use crate::domain::{ResourceKind, Signature};
use crate::team::summary;
use crate::upstream::error::UpstreamError;
use crate::upstream::opendota::OpenDota;

/// The supervised player fetcher actor.
pub type PlayerFetcher = Fetcher<PlayerJobs>;

#[derive(Clone)]
pub struct PlayerJobs {
    pub opendota: OpenDota,
}

impl FetchJobs for PlayerJobs {
    const KIND: ResourceKind = ResourceKind::Player;
    const NAME: &'static str = "PlayerFetcher";

    fn fetch(
        &self,
        job: Job,
    ) -> impl std::future::Future<Output = Result<Fetched, UpstreamError>> + 'static {
        let opendota = self.opendota.clone();
        async move {
            let Signature::Player(id) = job.signature else {
                return Err(wrong_kind(&job, ResourceKind::Player));
            };
            let (body, summary) = opendota
                .get_player_with(id, move |value| summary::of_player(id, value))
                .await?;
            Ok(Fetched {
                body: Vec::from(body),
                children: Vec::new(),
                summary,
            })
        }
    }
}
