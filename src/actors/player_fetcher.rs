//! `PlayerFetcher`: fetches `/players/{id}` (profile, rank tier, MMR estimate) from OpenDota.

use super::fetcher::Fetcher;
use super::opendota_jobs::{FetchResult, OpenDotaJobs, OpenDotaKind};
use super::pipeline::Fetched;
use crate::domain::{Fanout, PlayerId, ResourceKind, Signature};
use crate::team::summary;
use crate::upstream::opendota::OpenDota;

/// The supervised player fetcher actor.
pub type PlayerFetcher = Fetcher<OpenDotaJobs<Players>>;

/// Player profile jobs; a player has no children.
pub enum Players {}

impl OpenDotaKind for Players {
    const KIND: ResourceKind = ResourceKind::Player;
    type Id = PlayerId;

    async fn fetch(opendota: OpenDota, id: PlayerId, _: Fanout) -> FetchResult {
        let (body, summary) = opendota
            .get_player_with(id, move |value| summary::of_player(id, value))
            .await?;
        Ok(Fetched {
            body: Vec::from(body),
            children: Vec::new(),
            summary,
        })
    }

    fn id(signature: Signature) -> Option<PlayerId> {
        match signature {
            Signature::Player(id) => Some(id),
            _ => None,
        }
    }
}
