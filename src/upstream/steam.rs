//! Steam Web API calls (`IDOTA2Match_570`): one page of a league's history
//! (`GetMatchHistory/v1/?league_id=L[&start_at_match_id=M]`) and a team's name
//! (`GetTeamInfoByTeamID/v1/?start_at_team_id=T&teams_requested=1`). The key travels as `key`
//! and never reaches an error, a log line or a recorded file. `GetMatchDetails` is not used: it
//! has answered 500 for every match since patch 7.36; match bodies come from OpenDota.
//!
//! Steam's ways of saying no, each typed here ([`SteamError`]): a refused key is HTTP 403 with
//! an HTML page; a busy server is 503 (and sometimes 429), retried here with a short backoff a
//! few times before giving up; a private history is `status` 15 and another error `status` 2,
//! both sent with HTTP 200.

use std::time::Duration;

use serde_json::Value;

use super::client::{Request, UpstreamClient};
use super::error::UpstreamError;
use super::league_history::{Cursor, HistoryPage, SteamRefusal, read_steam_page};
use super::off_thread;
use super::recorder::Recorder;
use crate::config::SteamKey;
use crate::domain::{LeagueId, Service, TeamId};

/// A history page of 100 matches is ~60 KB; a team answer a few hundred bytes.
const MAX_BODY_BYTES: usize = 4 * 1024 * 1024;
/// Calls answered 503 (busy) tried at most this often, waiting [`BUSY_BACKOFF`] doubling in
/// between. Valve's guidance is to wait about 30 s: an import does not wait that long for one
/// source; it moves on, and the source cools down (`--source-cooldown-secs`).
const BUSY_TRIES: u32 = 3;
const BUSY_BACKOFF: Duration = Duration::from_millis(500);

/// Why a Steam call gave no answer.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SteamError {
    /// HTTP 403: the key is wrong, revoked or missing.
    #[error("steam: the API key was refused (HTTP 403)")]
    KeyRefused,
    /// Steam said no with HTTP 200 (a private history, or `status` 2).
    #[error("steam: {0}")]
    Refused(SteamRefusal),
    #[error(transparent)]
    Upstream(#[from] UpstreamError),
}

impl SteamError {
    /// Steam said it is down (503 after the retries, or 5xx): the source cools down.
    pub fn is_down(&self) -> bool {
        matches!(self, SteamError::Upstream(UpstreamError::Status { status, .. }) if *status >= 500)
    }
}

/// Steam client bound to a base URL (`https://api.steampowered.com` or a fixture) and a key.
#[derive(Clone)]
pub struct Steam {
    client: UpstreamClient,
    base_url: String,
    key: SteamKey,
    /// `--record-dir`: team answers are also written there (league histories are recorded
    /// whole by their loader, `actors::league_history`).
    recorder: Option<Recorder>,
}

impl Steam {
    pub fn new(client: UpstreamClient, base_url: &str, key: SteamKey) -> Self {
        Self {
            client,
            base_url: base_url.trim_end_matches('/').to_string(),
            key,
            recorder: None,
        }
    }

    /// Also writes accepted team answers to `recorder` (none: nothing).
    pub fn recording(mut self, recorder: Option<Recorder>) -> Self {
        self.recorder = recorder;
        self
    }

    /// Where accepted answers are recorded, if anywhere.
    pub fn recorder(&self) -> Option<&Recorder> {
        self.recorder.as_ref()
    }

    /// One page of `league`'s history, starting at `at`.
    pub async fn history_page(
        &self,
        league: LeagueId,
        at: Cursor,
    ) -> Result<HistoryPage, SteamError> {
        let mut query = vec![("league_id", league.to_string())];
        if let Cursor::Steam {
            start_at_match_id: Some(start),
        } = at
        {
            query.push(("start_at_match_id", start.to_string()));
        }
        let body = self.call("GetMatchHistory/v1/", query).await?;
        off_thread::run(Service::Steam, move || read_steam_page(at, &body))
            .await??
            .map_err(SteamError::Refused)
    }

    /// The name of `team`, `None` when Steam does not know the team (the call means "start
    /// at": an unknown ID answers with the next team, which is not taken for this one).
    pub async fn team_name(&self, team: TeamId) -> Result<Option<String>, SteamError> {
        let query = vec![
            ("start_at_team_id", team.to_string()),
            ("teams_requested", "1".to_string()),
        ];
        let body = self.call("GetTeamInfoByTeamID/v1/", query).await?;
        let first = body.pointer("/result/teams/0");
        let id = first.and_then(|t| t.get("team_id")).and_then(Value::as_u64);
        if id != Some(team.get()) {
            return Ok(None);
        }
        if let Some(recorder) = &self.recorder {
            let raw = bytes::Bytes::from(body.to_string());
            recorder
                .record_file(Service::Steam, &format!("teams/{team}"), raw)
                .await;
        }
        Ok(first
            .and_then(|t| t.get("name"))
            .and_then(Value::as_str)
            .map(str::to_string))
    }

    /// GETs `IDOTA2Match_570/{method}` with the key, retrying a busy answer (503) a few times.
    async fn call(
        &self,
        method: &str,
        mut query: Vec<(&'static str, String)>,
    ) -> Result<Value, SteamError> {
        query.push(("key", self.key.0.clone()));
        let mut wait = BUSY_BACKOFF;
        for tries in 1..=BUSY_TRIES {
            let sent = self
                .client
                .get(Request {
                    service: Service::Steam,
                    url: format!("{}/IDOTA2Match_570/{method}", self.base_url),
                    query: query.clone(),
                    max_bytes: MAX_BODY_BYTES,
                })
                .await;
            match sent {
                Ok(raw) => {
                    return serde_json::from_slice(&raw).map_err(|e| {
                        SteamError::Upstream(UpstreamError::Garbled {
                            service: Service::Steam,
                            reason: format!("not JSON: {e}"),
                        })
                    });
                }
                Err(UpstreamError::Status { status: 403, .. }) => {
                    return Err(SteamError::KeyRefused);
                }
                Err(UpstreamError::Status { status: 503, .. }) if tries < BUSY_TRIES => {
                    tracing::warn!(tries, "steam is busy (503); retrying");
                    tokio::time::sleep(wait).await;
                    wait *= 2;
                }
                Err(err) => return Err(err.into()),
            }
        }
        Err(SteamError::Upstream(UpstreamError::Status {
            service: Service::Steam,
            status: 503,
        }))
    }
}
