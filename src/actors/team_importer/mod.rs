//! `TeamImporter`: turns a team import job (`team:{teamId}:{leagueId}`) into a stored team
//! record and one match job per match of that league, plus (from a league history) one player
//! job per player listed in the team's matches. The match list comes from the import's source
//! chain ([`chain`], `--team-sources`): a Steam or STRATZ league history ([`history`], kept by
//! `actors::league_history`), Dotabuff's team matches pages ([`dotabuff`]) or OpenDota's
//! `/teams/{id}/matches` ([`opendota`]). The record says which source answered and what became
//! of every source tried. Pages are scraped, and bodies read, on the blocking pool
//! ([`crate::upstream::off_thread`]), never on the System thread the fetchers share.

mod chain;
mod dotabuff;
mod history;
mod opendota;

use std::time::Duration;

use actix::Addr;

pub use self::chain::Cooldowns;

use super::cache_keeper::{CacheKeeper, Child};
use super::fetcher::{FetchJobs, Fetcher, wrong_kind};
use super::league_history::{HistorySource, HistorySources, LeagueHistories};
use super::pipeline::Fetched;
use crate::config::{PlayerSides, Settings};
use crate::domain::{Job, Priority, ResourceKind, Service, Signature, SourceChain};
use crate::store::Store;
use crate::team::view::import_fanout;
use crate::upstream::dotabuff::Dotabuff;
use crate::upstream::error::UpstreamError;
use crate::upstream::opendota::OpenDota;

/// The supervised team importer actor.
pub type TeamImporter = Fetcher<TeamJobs>;

#[derive(Clone)]
pub struct TeamJobs {
    pub dotabuff: Dotabuff,
    pub opendota: OpenDota,
    /// With `--steam-api-key`.
    pub steam: Option<HistorySource>,
    /// With `--stratz-token`.
    pub stratz: Option<HistorySource>,
    pub histories: LeagueHistories,
    pub store: Store,
    pub keeper: Addr<CacheKeeper>,
    pub chain: SourceChain,
    pub cooldowns: Cooldowns,
    /// `--source-cooldown-secs`.
    pub cooldown: Duration,
    pub sides: PlayerSides,
    /// How long a cached Dotabuff page (and a Steam team name) is reused.
    pub page_ttl: Duration,
}

impl FetchJobs for TeamJobs {
    const KIND: ResourceKind = ResourceKind::Team;
    const NAME: &'static str = "TeamImporter";
    /// The team's ready event is published when its whole import completes, not when the
    /// record is stored (see `team_watch`).
    const ANNOUNCE_ON_STORE: bool = false;

    fn fetch(
        &self,
        job: Job,
    ) -> impl std::future::Future<Output = Result<Fetched, UpstreamError>> + 'static {
        let this = self.clone();
        async move {
            let Signature::Team(team, league) = job.signature else {
                return Err(wrong_kind(&job, ResourceKind::Team));
            };
            // A forced import and a scheduled refresh (due before the caches expire) must see
            // what the sources list now.
            let (record, players) = this.import(team, league, refetch(&job)).await?;
            let fanout = import_fanout(team, this.sides);
            let matches = record.match_ids.iter().map(|id| Child {
                signature: Signature::Match(*id),
                fanout,
            });
            let players = players
                .into_iter()
                .map(|p| Child::new(Signature::Player(p)));
            let children = matches.chain(players).collect();
            let body = serde_json::to_vec(&record).map_err(|e| UpstreamError::Unreadable {
                service: Service::Dotabuff,
                reason: e.to_string(),
            })?;
            Ok(Fetched::new(body, children))
        }
    }
}

impl TeamJobs {
    /// The importer as `settings` configure it, over the clients and the store it reads.
    pub fn new(
        settings: &Settings,
        clients: (Dotabuff, OpenDota),
        sources: &HistorySources,
        store: Store,
        keeper: Addr<CacheKeeper>,
    ) -> Self {
        let histories = LeagueHistories::new(
            store.clone(),
            keeper.clone(),
            settings.sources.league_history_ttl,
            sources.recorder.clone(),
        );
        Self {
            dotabuff: clients.0,
            opendota: clients.1,
            steam: sources.steam.clone(),
            stratz: sources.stratz.clone(),
            histories,
            store,
            keeper,
            chain: settings.team_chain(),
            cooldowns: Cooldowns::default(),
            cooldown: settings.sources.source_cooldown,
            sides: settings.team_players,
            page_ttl: settings.ttls.teams,
        }
    }
}

impl TeamJobs {
    /// Steam's league histories, for the league fetcher, when Steam is configured.
    pub fn steam_history(&self) -> Option<(HistorySource, LeagueHistories)> {
        self.steam.clone().map(|s| (s, self.histories.clone()))
    }
}

/// Whether `job` re-reads its source instead of the caches.
fn refetch(job: &Job) -> bool {
    job.is_forced() || job.priority == Priority::Scheduled
}
