//! The Dotabuff source: every matches page of the team (`?page=N` until the last, raw HTML
//! cached for the team TTL; a forced import or a scheduled refresh reads them afresh), scraped
//! on the blocking pool. A bot challenge page, whatever its status, is recognised as one
//! ([`UpstreamError::Challenge`]) so the chain can move on at once and pause Dotabuff.

use std::collections::BTreeMap;

use super::TeamJobs;
use crate::actors::cache_keeper::StorePage;
use crate::domain::{LeagueId, Service, Source, TeamId};
use crate::store::now_ms;
use crate::team::record::{TeamMatch, TeamRecord};
use crate::upstream::client::is_challenge_page;
use crate::upstream::dotabuff::Dotabuff;
use crate::upstream::dotabuff_page::{PageError, TeamMatchesPage, parse_team_matches_page};
use crate::upstream::error::UpstreamError;
use crate::upstream::off_thread;

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

impl ScrapeError {
    /// Dotabuff refused programs (a challenge page, a 403) or said it is down (5xx): asking
    /// again soon cannot help, so it is paused.
    pub fn cools_down(&self) -> bool {
        match self {
            ScrapeError::Upstream(UpstreamError::Challenge { .. }) => true,
            ScrapeError::Upstream(UpstreamError::Status { status, .. }) => {
                *status == 403 || *status >= 500
            }
            _ => false,
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
        if is_challenge_page(html.as_bytes()) {
            return Err(UpstreamError::Challenge {
                service: Service::Dotabuff,
                status: 200,
            }
            .into());
        }
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

    /// Reads every matches page. Any failure is returned as the reason to move on.
    pub(super) async fn scrape(
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
                // The next source's answer settles it.
                return Err(ScrapeError::EmptyFirstPage);
            }
            if !parsed.has_next_page {
                break;
            }
            if page == MAX_PAGES {
                tracing::warn!(
                    team = %team,
                    league = %league,
                    pages = MAX_PAGES,
                    "the team's Dotabuff matches go on past the last page read; older matches of the league may be missing"
                );
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
