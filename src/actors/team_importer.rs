//! `TeamImporter`: turns a team import job (`team:{teamId}:{leagueId}`) into a stored team
//! record and one match job per match of that league. It reads every Dotabuff matches page
//! (`?page=N` until the last, raw HTML cached for the team TTL; a forced import or a scheduled
//! refresh reads them afresh), and falls back to OpenDota's
//! `/teams/{id}/matches` when Dotabuff refuses (403/429), errs, or sends a page the parser
//! cannot read; or uses OpenDota alone when configured so. The record says which source won.
//! Pages are scraped, and OpenDota's match list read, on the blocking pool
//! ([`crate::upstream::off_thread`]), never on the System thread the fetchers share.

use std::collections::BTreeMap;
use std::time::Duration;

use actix::Addr;
use serde_json::Value;

use super::cache_keeper::{CacheKeeper, Child, StorePage};
use super::fetcher::{FetchJobs, Fetcher, wrong_kind};
use super::pipeline::Fetched;
use crate::config::{PlayerSides, TeamSource};
use crate::domain::{Job, LeagueId, MatchId, Priority, ResourceKind, Service, Signature, TeamId};
use crate::store::{Store, now_ms};
use crate::team::record::{Source, TeamMatch, TeamRecord};
use crate::team::view::import_fanout;
use crate::upstream::dotabuff::Dotabuff;
use crate::upstream::dotabuff_page::{PageError, TeamMatchesPage, parse_team_matches_page};
use crate::upstream::error::UpstreamError;
use crate::upstream::off_thread;
use crate::upstream::opendota::OpenDota;

/// The supervised team importer actor.
pub type TeamImporter = Fetcher<TeamJobs>;

/// Pages read per team at most; a team with more than 50 pages (~1,000 matches) is cut there
/// rather than letting a pagination bug loop forever.
pub const MAX_PAGES: u32 = 50;

/// Why the Dotabuff pages could not be used; its text becomes the record's `fallbackReason`.
#[derive(Debug, thiserror::Error)]
pub enum ScrapeError {
    #[error(transparent)]
    Upstream(#[from] UpstreamError),
    #[error("page {page}: {source}")]
    Unparsable { page: u32, source: PageError },
    #[error("cached page is not UTF-8: {0}")]
    CachedNotUtf8(#[from] std::string::FromUtf8Error),
    /// More often a layout change or a bot check than a team without matches.
    #[error("page 1 lists no matches")]
    EmptyFirstPage,
}

#[derive(Clone)]
pub struct TeamJobs {
    pub dotabuff: Dotabuff,
    pub opendota: OpenDota,
    pub store: Store,
    pub keeper: Addr<CacheKeeper>,
    pub source: TeamSource,
    pub sides: PlayerSides,
    /// How long a cached Dotabuff page is reused.
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
            let record = match this.source {
                // A forced import and a scheduled refresh (due before the pages' cache
                // expires) must see what Dotabuff lists now.
                TeamSource::Dotabuff => match this.scrape(team, league, rescrape(&job)).await {
                    Ok(record) => record,
                    Err(reason) => {
                        tracing::warn!(%reason, "Dotabuff failed; falling back to OpenDota");
                        let mut record = this.opendota_record(team, league).await?;
                        record.fallback_reason = Some(reason.to_string());
                        record
                    }
                },
                TeamSource::Opendota => this.opendota_record(team, league).await?,
            };
            let fanout = import_fanout(team, this.sides);
            let children = record
                .match_ids
                .iter()
                .map(|id| Child {
                    signature: Signature::Match(*id),
                    fanout,
                })
                .collect();
            let body = serde_json::to_vec(&record).map_err(|e| UpstreamError::Unreadable {
                service: Service::Dotabuff,
                reason: e.to_string(),
            })?;
            Ok(Fetched::new(body, children))
        }
    }
}

impl TeamJobs {
    /// One page, parsed: from the cache when fresh (and not forced), else from Dotabuff.
    async fn page(
        &self,
        team: TeamId,
        page: u32,
        force: bool,
    ) -> Result<TeamMatchesPage, ScrapeError> {
        let key = Dotabuff::team_page_key(team, page);
        let ttl_ms = i64::try_from(self.page_ttl.as_millis()).unwrap_or(i64::MAX);
        if !force
            && let Ok(Some((fetched_at, body))) = self.store.page(&key)
            && now_ms() < fetched_at.saturating_add(ttl_ms)
        {
            let (_, parsed) = parse(String::from_utf8(body)?, page).await?;
            return Ok(parsed);
        }
        let html = self.dotabuff.team_matches_page(team, page).await?;
        // Cache and record only what parses: a bot-check page must not be served for two hours.
        let (html, parsed) = parse(html, page).await?;
        self.dotabuff.record_page(team, page, &html).await;
        match self
            .keeper
            .send(StorePage {
                key,
                body: html.into_bytes(),
            })
            .await
        {
            Ok(Ok(())) => {}
            Ok(Err(err)) => tracing::warn!(%err, "could not cache a Dotabuff page"),
            Err(err) => tracing::warn!(%err, "could not cache a Dotabuff page"),
        }
        Ok(parsed)
    }

    /// Reads every matches page. Any failure is returned as the reason to fall back.
    async fn scrape(
        &self,
        team: TeamId,
        league: LeagueId,
        force: bool,
    ) -> Result<TeamRecord, ScrapeError> {
        let mut all = Vec::new();
        let mut team_name = None;
        let mut league_names = BTreeMap::new();
        let mut pages = 0;
        for page in 1..=MAX_PAGES {
            let parsed = self.page(team, page, force).await?;
            pages = page;
            if team_name.is_none() {
                team_name = parsed.team_name.clone();
            }
            for row in &parsed.rows {
                if let Some(name) = &row.league_name {
                    league_names
                        .entry(row.league_id)
                        .or_insert_with(|| name.clone());
                }
                all.push(TeamMatch {
                    match_id: row.match_id,
                    league_id: row.league_id,
                    start_time: row.start_time.map(|t| t.to_rfc3339()),
                    opponent_id: row.opponent_id,
                    opponent_name: row.opponent_name.clone(),
                    won: row.won,
                });
            }
            if page == 1 && parsed.rows.is_empty() {
                // OpenDota's answer costs one call and settles it.
                return Err(ScrapeError::EmptyFirstPage);
            }
            if !parsed.has_next_page {
                break;
            }
        }
        Ok(TeamRecord::from_matches(
            team,
            league,
            team_name,
            &league_names,
            all,
            Source::Dotabuff,
            pages,
        ))
    }

    /// OpenDota's `/teams/{id}/matches` (it carries `leagueid`, `league_name` and the team's
    /// side) plus `/teams/{id}` for the name.
    async fn opendota_record(
        &self,
        team: TeamId,
        league: LeagueId,
    ) -> Result<TeamRecord, UpstreamError> {
        let (league_names, all) = self
            .opendota
            .get_team_matches(team, read_team_matches)
            .await?;
        let team_name = match self.opendota.get_team(team).await {
            Ok(info) => info.get("name").and_then(Value::as_str).map(str::to_string),
            Err(err) => {
                tracing::debug!(%err, "team name unavailable from OpenDota");
                None
            }
        };
        Ok(TeamRecord::from_matches(
            team,
            league,
            team_name,
            &league_names,
            all,
            Source::OpenDota,
            0,
        ))
    }
}

/// Whether `job` re-reads the Dotabuff pages instead of the page cache.
fn rescrape(job: &Job) -> bool {
    job.is_forced() || job.priority == Priority::Scheduled
}

/// The matches of OpenDota's `/teams/{id}/matches` rows (rows without a match or league ID
/// are skipped) and the league names they carry. Runs on the blocking pool.
fn read_team_matches(rows: Vec<Value>) -> (BTreeMap<LeagueId, String>, Vec<TeamMatch>) {
    let mut league_names = BTreeMap::new();
    let mut all = Vec::new();
    for row in rows {
        let Some(match_id) = row
            .get("match_id")
            .and_then(Value::as_u64)
            .and_then(MatchId::new)
        else {
            continue;
        };
        let Some(league_id) = row
            .get("leagueid")
            .and_then(Value::as_u64)
            .and_then(LeagueId::new)
        else {
            continue;
        };
        if let Some(name) = row.get("league_name").and_then(Value::as_str) {
            league_names
                .entry(league_id)
                .or_insert_with(|| name.to_string());
        }
        let radiant = row.get("radiant").and_then(Value::as_bool);
        let radiant_win = row.get("radiant_win").and_then(Value::as_bool);
        all.push(TeamMatch {
            match_id,
            league_id,
            start_time: row
                .get("start_time")
                .and_then(Value::as_i64)
                .and_then(|t| chrono::DateTime::from_timestamp(t, 0))
                .map(|t| t.to_rfc3339()),
            opponent_id: row
                .get("opposing_team_id")
                .and_then(Value::as_u64)
                .and_then(TeamId::new),
            opponent_name: row
                .get("opposing_team_name")
                .and_then(Value::as_str)
                .map(str::to_string),
            won: radiant.zip(radiant_win).map(|(r, w)| r == w),
        });
    }
    (league_names, all)
}

/// Parses page `page` of a team's matches on the blocking pool and hands the text back with
/// it (to be cached). `scraper`'s document is not `Send`: it is built, read and dropped there,
/// and only the plain [`TeamMatchesPage`] comes back.
async fn parse(html: String, page: u32) -> Result<(String, TeamMatchesPage), ScrapeError> {
    off_thread::run(Service::Dotabuff, move || {
        match parse_team_matches_page(&html) {
            Ok(parsed) => Ok((html, parsed)),
            Err(source) => Err(ScrapeError::Unparsable { page, source }),
        }
    })
    .await?
}
