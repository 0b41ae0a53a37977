//! The source chain of one import (`--team-sources`): each source in turn until one lists the
//! league's matches for the team, with what became of each in the record's `sourcesTried`.
//!
//! How a source shows it covers a league: Steam and STRATZ by a non-empty league history;
//! Dotabuff and OpenDota by listing at least one match of the league for the team. A source
//! that covers the league answers, even with no match of the team; one that does not is
//! `uncovered` and the chain goes on. When no source answers, the first uncovered answer is
//! stored (an empty import, not a failure), unless a source failed in a way another attempt
//! may fix: then the job is retried.
//!
//! Cooldown (`--source-cooldown-secs`): a source that showed a bot challenge, refused the key
//! or said it is down is paused, and imports skip it without a call (this process only; every
//! instance learns it with its first refused call).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use super::TeamJobs;
use super::dotabuff::ScrapeError;
use super::history::FromHistory;
use crate::actors::league_history::{HistoryError, HistorySource};
use crate::domain::{LeagueId, PlayerId, Source, TeamId};
use crate::team::record::{Outcome, SourceTried, TeamRecord};
use crate::upstream::error::{Disposition, UpstreamError};
use crate::upstream::steam::SteamError;
use crate::upstream::stratz::StratzError;

/// Sources paused after a refusal, until when and why. Cheap to clone (shared).
#[derive(Clone, Default)]
pub struct Cooldowns(Arc<Mutex<HashMap<Source, (Instant, String)>>>);

impl Cooldowns {
    /// Why `source` is paused now, if it is.
    fn paused(&self, source: Source) -> Option<(Duration, String)> {
        let mut paused = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let (until, reason) = paused.get(&source)?;
        let left = until.checked_duration_since(Instant::now());
        match left {
            Some(left) if !left.is_zero() => Some((left, reason.clone())),
            _ => {
                paused.remove(&source);
                None
            }
        }
    }

    fn pause(&self, source: Source, length: Duration, reason: String) {
        tracing::warn!(%source, secs = length.as_secs(), %reason, "source paused");
        let mut paused = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        paused.insert(source, (Instant::now() + length, reason));
    }
}

/// What one source gave.
enum Tried {
    Answered {
        record: TeamRecord,
        players: Vec<PlayerId>,
    },
    Uncovered {
        record: Option<TeamRecord>,
        reason: String,
    },
    Failed {
        reason: String,
        cool_down: bool,
        /// Set when another attempt of the job may get an answer.
        retry: Option<UpstreamError>,
    },
}

fn failed(reason: String, cool_down: bool, err: Option<UpstreamError>) -> Tried {
    let retry = err.filter(|e| !cool_down && e.disposition() == Disposition::Retry);
    Tried::Failed {
        reason,
        cool_down,
        retry,
    }
}

fn entry(source: Source, outcome: Outcome, reason: Option<String>) -> SourceTried {
    SourceTried {
        source,
        outcome,
        reason,
    }
}

impl TeamJobs {
    /// Tries the chain's sources in turn. `Ok`: the record to store and the players to queue
    /// at once; `Err`: a failure worth another attempt, and no source answered.
    pub(super) async fn import(
        &self,
        team: TeamId,
        league: LeagueId,
        force: bool,
    ) -> Result<(TeamRecord, Vec<PlayerId>), UpstreamError> {
        let mut tried = Vec::new();
        let mut first_uncovered: Option<TeamRecord> = None;
        let mut retry: Option<UpstreamError> = None;
        let mut dotabuff_failure = None;
        for &source in self.chain.sources() {
            if let Some((left, why)) = self.cooldowns.paused(source) {
                let reason = format!("paused for {} s more after: {why}", left.as_secs().max(1));
                tried.push(entry(source, Outcome::Skipped, Some(reason)));
                continue;
            }
            match self.try_source(source, team, league, force).await {
                Tried::Answered {
                    mut record,
                    players,
                } => {
                    tried.push(entry(source, Outcome::Answered, None));
                    record.sources_tried = tried;
                    record.fallback_reason = dotabuff_failure;
                    return Ok((record, players));
                }
                Tried::Uncovered { record, reason } => {
                    tried.push(entry(source, Outcome::Uncovered, Some(reason)));
                    if first_uncovered.is_none() {
                        first_uncovered = record;
                    }
                }
                Tried::Failed {
                    reason,
                    cool_down,
                    retry: again,
                } => {
                    tracing::warn!(%source, %reason, "team source failed; trying the next");
                    if cool_down {
                        self.cooldowns.pause(source, self.cooldown, reason.clone());
                    }
                    if source == Source::Dotabuff {
                        dotabuff_failure = Some(reason.clone());
                    }
                    tried.push(entry(source, Outcome::Failed, Some(reason)));
                    retry = again.or(retry);
                }
            }
        }
        let mut record = match (first_uncovered, retry) {
            (Some(record), _) => record,
            (None, Some(err)) => return Err(err),
            (None, None) => {
                let last = tried.last().map_or(Source::OpenDota, |t| t.source);
                TeamRecord::from_matches(
                    team,
                    league,
                    None,
                    &Default::default(),
                    Vec::new(),
                    last,
                    0,
                )
            }
        };
        record.sources_tried = tried;
        record.fallback_reason = dotabuff_failure;
        Ok((record, Vec::new()))
    }

    async fn try_source(
        &self,
        source: Source,
        team: TeamId,
        league: LeagueId,
        force: bool,
    ) -> Tried {
        match source {
            Source::Dotabuff => match self.scrape(team, league, force).await {
                Ok(record) => covered_if_listed(record, "dotabuff"),
                Err(ScrapeError::EmptyFirstPage) => Tried::Uncovered {
                    record: None,
                    reason: "page 1 lists no matches".to_string(),
                },
                Err(err) => {
                    let cool_down = err.cools_down();
                    let upstream = match err {
                        ScrapeError::Upstream(ref e) => Some(e.clone()),
                        _ => None,
                    };
                    failed(err.to_string(), cool_down, upstream)
                }
            },
            Source::OpenDota => match self.opendota_record(team, league).await {
                Ok(record) => covered_if_listed(record, "opendota"),
                Err(err) => failed(err.to_string(), false, Some(err)),
            },
            Source::Steam | Source::Stratz => {
                let configured = match source {
                    Source::Steam => self.steam.as_ref(),
                    _ => self.stratz.as_ref(),
                };
                let Some(history) = configured else {
                    return Tried::Failed {
                        reason: format!("{source}: not configured (no key)"),
                        cool_down: false,
                        retry: None,
                    };
                };
                self.try_history(history, team, league, force).await
            }
        }
    }

    async fn try_history(
        &self,
        source: &HistorySource,
        team: TeamId,
        league: LeagueId,
        force: bool,
    ) -> Tried {
        match self.history_record(source, team, league, force).await {
            Ok(FromHistory::Listed { record, players }) => Tried::Answered {
                record: *record,
                players,
            },
            Ok(FromHistory::Empty) => Tried::Uncovered {
                record: None,
                reason: format!("{}: the league history is empty", source.service()),
            },
            Err(err) => history_failure(err),
        }
    }
}

/// A list with a match of the league is an answer; one without is not (the source does not
/// cover the league), though the record (the team's name, other leagues) is kept.
fn covered_if_listed(record: TeamRecord, name: &str) -> Tried {
    if record.match_ids.is_empty() {
        Tried::Uncovered {
            record: Some(record),
            reason: format!("{name}: no match of the league listed for the team"),
        }
    } else {
        Tried::Answered {
            record,
            players: Vec::new(),
        }
    }
}

/// A refused key and a server that says it is down cool the source down; a private history
/// is the source's permanent answer (not retried); anything else may be retried.
fn history_failure(err: HistoryError) -> Tried {
    let reason = err.to_string();
    match err {
        HistoryError::Steam(SteamError::KeyRefused)
        | HistoryError::Stratz(StratzError::TokenRefused(_)) => failed(reason, true, None),
        HistoryError::Steam(SteamError::Refused(_)) => failed(reason, false, None),
        HistoryError::Steam(ref e) if e.is_down() => failed(reason, true, None),
        HistoryError::Steam(SteamError::Upstream(e))
        | HistoryError::Stratz(StratzError::Upstream(e)) => {
            let down = matches!(e, UpstreamError::Status { status, .. } if status >= 500);
            failed(reason, down, Some(e))
        }
    }
}
