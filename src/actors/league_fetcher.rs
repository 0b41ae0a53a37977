//! `LeagueFetcher`: a league's info (`/leagues/{id}`: name, tier) and its match IDs, stored as
//! one [`LeagueRecord`]. The match IDs come from Steam's league history when Steam is
//! configured ([`LeagueJobs`]: OpenDota's `/leagues/{id}/matchIds` has no amateur leagues; the
//! history is the one the team imports share, see `league_history`), else from OpenDota
//! ([`Leagues`]). The league's matches are queued only when the request asked for it
//! (`?queueMatches=true`), as the job's fan-out says.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use super::cache_keeper::Child;
use super::fetcher::{FetchJobs, Fetcher, wrong_kind};
use super::league_history::{HistoryError, HistorySource, LeagueHistories};
use super::opendota_jobs::{FetchResult, OpenDotaKind};
use super::pipeline::Fetched;
use crate::domain::{Fanout, Job, LeagueId, MatchId, ResourceKind, Service, Signature};
use crate::upstream::error::UpstreamError;
use crate::upstream::opendota::OpenDota;

/// The supervised league fetcher actor.
pub type LeagueFetcher = Fetcher<LeagueJobs>;

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
        record(id, &info, match_ids, fanout)
    }

    fn id(signature: Signature) -> Option<LeagueId> {
        match signature {
            Signature::League(id) => Some(id),
            _ => None,
        }
    }
}

/// The league jobs: [`Leagues`] (OpenDota alone), or with Steam the match IDs from its history.
#[derive(Clone)]
pub struct LeagueJobs {
    pub opendota: OpenDota,
    /// Steam's league histories, when `--steam-api-key` is set.
    pub history: Option<(HistorySource, LeagueHistories)>,
}

impl FetchJobs for LeagueJobs {
    const KIND: ResourceKind = ResourceKind::League;
    const NAME: &'static str = "LeagueFetcher";

    fn fetch(&self, job: Job) -> impl std::future::Future<Output = FetchResult> + 'static {
        let (opendota, history) = (self.opendota.clone(), self.history.clone());
        async move {
            let Some(id) = Leagues::id(job.signature) else {
                return Err(wrong_kind(&job, ResourceKind::League));
            };
            let Some((source, histories)) = history else {
                return Leagues::fetch(opendota, id, job.fanout).await;
            };
            let mut ids: Vec<MatchId> = Vec::new();
            histories
                .load(&source, id, job.is_forced(), |rows| {
                    ids.extend(rows.iter().map(|r| r.match_id));
                })
                .await
                .map_err(into_upstream)?;
            ids.sort_unstable_by(|a, b| b.cmp(a));
            ids.dedup();
            // OpenDota may not know an amateur league: its name is a bonus here.
            let info = opendota.get_league(id).await.unwrap_or_default();
            record(id, &info, ids, job.fanout)
        }
    }
}

/// The stored record (OpenDota's `info` names the league) and, when asked, its matches.
fn record(id: LeagueId, info: &Value, match_ids: Vec<MatchId>, fanout: Fanout) -> FetchResult {
    {
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
}

/// A history that could not be read fails the job as its upstream failure would; Steam's
/// own refusals (a refused key, a private history) are permanent.
fn into_upstream(err: HistoryError) -> UpstreamError {
    use crate::upstream::steam::SteamError;
    use crate::upstream::stratz::StratzError;
    match err {
        HistoryError::Steam(SteamError::Upstream(e))
        | HistoryError::Stratz(StratzError::Upstream(e)) => e,
        other => UpstreamError::InvalidId {
            service: match other {
                HistoryError::Stratz(_) => Service::Stratz,
                HistoryError::Steam(_) => Service::Steam,
            },
            message: other.to_string(),
        },
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
