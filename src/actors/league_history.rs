//! A league's whole history from an API source (Steam or STRATZ), fetched once per league and
//! kept page by page in the raw page cache (`history:{service}:{league}:{n}`, fresh for
//! `--league-history-ttl-secs`). Every team import of the league and the league fetcher read it
//! through [`LeagueHistories::load`], so a second team of the same league costs no call.
//!
//! Paging resumes: each page is cached as soon as it arrives, with the request (cursor) that
//! fetched it, and a load walks the cached pages first. A restart in the middle of paging
//! therefore fetches only the pages not yet cached. A cached page is reused only for the same
//! request, so a history that grew (Steam pages from the newest match down) is re-read from
//! the first page that no longer lines up. Loads of one league by one source are serialised
//! within this process (a lock per league), so two imports of one league do not both page it.
//!
//! A history is streamed, never held whole: a load hands each page's rows to its caller, which
//! keeps what it needs (a team's rows, the match IDs), and drops the page before the next one
//! (a league may list 30,000 matches). Only `--record-dir` keeps the raw rows of a load, to
//! write them as one file.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use actix::Addr;
use bytes::Bytes;

use super::cache_keeper::{CacheKeeper, StorePage};
use crate::config::SourceSettings;
use crate::domain::{LeagueId, Service};
use crate::store::{Store, now_ms};
use crate::upstream::client::UpstreamClient;
use crate::upstream::league_history::{Cursor, HistoryPage, HistoryRow};
use crate::upstream::recorder::Recorder;
use crate::upstream::steam::{Steam, SteamError};
use crate::upstream::stratz::{Stratz, StratzError};

/// Pages read per league at most (30,000 matches): a paging bug must not loop forever.
pub const MAX_HISTORY_PAGES: u32 = 300;

/// An API source of league histories.
#[derive(Clone)]
pub enum HistorySource {
    Steam(Steam),
    Stratz(Stratz),
}

impl HistorySource {
    pub fn service(&self) -> Service {
        match self {
            HistorySource::Steam(_) => Service::Steam,
            HistorySource::Stratz(_) => Service::Stratz,
        }
    }

    async fn page(&self, league: LeagueId, at: Cursor) -> Result<HistoryPage, HistoryError> {
        match self {
            HistorySource::Steam(steam) => Ok(steam.history_page(league, at).await?),
            HistorySource::Stratz(stratz) => Ok(stratz.history_page(league, at).await?),
        }
    }
}

/// The configured API sources (each only with its key) and where their answers are recorded.
#[derive(Clone)]
pub struct HistorySources {
    pub steam: Option<HistorySource>,
    pub stratz: Option<HistorySource>,
    pub recorder: Option<Recorder>,
}

impl HistorySources {
    pub fn new(
        settings: &SourceSettings,
        client: &UpstreamClient,
        recorder: Option<Recorder>,
    ) -> Self {
        let steam = settings.steam_api_key.clone().map(|key| {
            let steam = Steam::new(client.clone(), &settings.steam_url, key);
            HistorySource::Steam(steam.recording(recorder.clone()))
        });
        let stratz = settings.stratz_token.clone().map(|token| {
            HistorySource::Stratz(Stratz::new(client.clone(), &settings.stratz_url, token))
        });
        Self {
            steam,
            stratz,
            recorder,
        }
    }
}

/// Why a history could not be read.
#[derive(Debug, Clone, thiserror::Error)]
pub enum HistoryError {
    #[error(transparent)]
    Steam(#[from] SteamError),
    #[error(transparent)]
    Stratz(#[from] StratzError),
}

/// What a load went through: the rows themselves went to the caller, page by page.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Loaded {
    /// Rows in the whole history.
    pub rows: usize,
    /// Pages it spans.
    pub pages: u32,
    /// Of those, pages fetched by this load (the others came from the cache).
    pub fetched: u32,
}

/// The history pages of every league, cached. Cheap to clone.
#[derive(Clone)]
pub struct LeagueHistories {
    store: Store,
    keeper: Addr<CacheKeeper>,
    ttl: Duration,
    recorder: Option<Recorder>,
    locks: Arc<Mutex<HashMap<(Service, LeagueId), LoadLock>>>,
}

/// Held while one league's history is loaded from one source.
type LoadLock = Arc<tokio::sync::Mutex<()>>;

impl LeagueHistories {
    pub fn new(
        store: Store,
        keeper: Addr<CacheKeeper>,
        ttl: Duration,
        recorder: Option<Recorder>,
    ) -> Self {
        Self {
            store,
            keeper,
            ttl,
            recorder,
            locks: Arc::default(),
        }
    }

    /// Key of page `n` (1-based) of `league`'s history from `service`; built only here.
    pub fn page_key(service: Service, league: LeagueId, n: u32) -> String {
        format!("history:{service}:{league}:{n}")
    }

    /// Every page of `league`'s history from `source`, in order: cached pages that are fresh
    /// (and not `force`d), the rest fetched in sequence from where the cache ends. Each page's
    /// rows go to `each` as the page arrives; on an error, `each` has seen the pages before it.
    pub async fn load(
        &self,
        source: &HistorySource,
        league: LeagueId,
        force: bool,
        mut each: impl FnMut(&[HistoryRow]),
    ) -> Result<Loaded, HistoryError> {
        let service = source.service();
        let lock = self.lock_of(service, league);
        let _held = lock.lock().await;
        let mut loaded = Loaded::default();
        // Only `--record-dir` writes the history out whole.
        let mut raw = self.recorder.as_ref().map(|_| Vec::new());
        let mut at = Some(Cursor::first(service));
        let mut n = 0;
        while let Some(cursor) = at {
            n += 1;
            if n > MAX_HISTORY_PAGES {
                tracing::warn!(%service, %league, "league history cut at {MAX_HISTORY_PAGES} pages");
                break;
            }
            let key = Self::page_key(service, league, n);
            let page = match self.cached(&key, cursor, force) {
                Some(page) => page,
                None => {
                    let page = source.page(league, cursor).await?;
                    self.keep(key, &page).await;
                    loaded.fetched += 1;
                    page
                }
            };
            each(&page.rows);
            loaded.rows += page.rows.len();
            loaded.pages = n;
            if let Some(raw) = raw.as_mut() {
                raw.extend(page.raw);
            }
            at = page.next;
        }
        if let Some(raw) = raw
            && loaded.fetched == loaded.pages
        {
            self.record(service, league, raw).await;
        }
        Ok(loaded)
    }

    fn lock_of(&self, service: Service, league: LeagueId) -> LoadLock {
        let mut locks = self.locks.lock().unwrap_or_else(PoisonError::into_inner);
        locks.entry((service, league)).or_default().clone()
    }

    /// Page `key` from the cache: fresh, fetched by the same request, and readable.
    fn cached(&self, key: &str, at: Cursor, force: bool) -> Option<HistoryPage> {
        if force {
            return None;
        }
        let ttl_ms = i64::try_from(self.ttl.as_millis()).unwrap_or(i64::MAX);
        let (fetched_at, body) = self.store.page(key).ok()??;
        if now_ms() >= fetched_at.saturating_add(ttl_ms) {
            return None;
        }
        let page: HistoryPage = serde_json::from_slice(&body).ok()?;
        (page.at == at).then_some(page)
    }

    /// Caches a fetched page; a failure costs only a refetch later.
    async fn keep(&self, key: String, page: &HistoryPage) {
        let body = match serde_json::to_vec(page) {
            Ok(body) => body,
            Err(err) => {
                tracing::warn!(%err, "could not encode a league history page");
                return;
            }
        };
        match self.keeper.send(StorePage { key, body }).await {
            Ok(Ok(())) => {}
            Ok(Err(err)) => tracing::warn!(%err, "could not cache a league history page"),
            Err(err) => tracing::warn!(%err, "could not cache a league history page"),
        }
    }

    /// `--record-dir`: a history fetched whole now is written as the data file the fixture
    /// upstream pages from (`steam/leagues/L.json`, `stratz/leagues/L.json`).
    async fn record(&self, service: Service, league: LeagueId, raw: Vec<serde_json::Value>) {
        let Some(recorder) = &self.recorder else {
            return;
        };
        let body = match service {
            Service::Steam => serde_json::json!({ "matches": raw }),
            _ => serde_json::Value::Array(raw),
        };
        let body = Bytes::from(body.to_string());
        recorder
            .record_file(service, &format!("leagues/{league}"), body)
            .await;
    }
}
