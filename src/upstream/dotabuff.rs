//! Dotabuff page fetches: the team matches pages (`/esports/teams/{id}/matches?page=N`),
//! through the rate-limited client with a browser-like User-Agent. Dotabuff's bot protection
//! escalates when pushed, so a 403/429 is not retried here: the caller falls back to OpenDota.
//! Whether a page is usable is known only once the team importer parsed it, so it is recorded
//! (`--record-dir`) from there, through [`Dotabuff::record_page`].

use bytes::Bytes;

use super::client::{Request, UpstreamClient};
use super::dotabuff_page::MAX_PAGE_BYTES;
use super::error::UpstreamError;
use super::recorder::Recorder;
use crate::domain::{Service, TeamId};

#[derive(Clone)]
pub struct Dotabuff {
    client: UpstreamClient,
    base_url: String,
    /// `--record-dir`: where pages that parsed are also written.
    recorder: Option<Recorder>,
}

impl Dotabuff {
    pub fn new(client: UpstreamClient, base_url: &str) -> Self {
        Self {
            client,
            base_url: base_url.trim_end_matches('/').to_string(),
            recorder: None,
        }
    }

    /// Also writes every page passed to [`Self::record_page`] to `recorder` (none: nothing).
    pub fn recording(mut self, recorder: Option<Recorder>) -> Self {
        self.recorder = recorder;
        self
    }

    /// Path of a team's matches page.
    pub fn team_matches_path(team: TeamId) -> String {
        format!("/esports/teams/{team}/matches")
    }

    /// Key of page `page` of a team's matches in the raw page cache
    /// (`dotabuff:/esports/teams/{team}/matches?page={page}`); built only here.
    pub fn team_page_key(team: TeamId, page: u32) -> String {
        format!("{}?page={page}", Self::team_pages_key_prefix(team))
    }

    /// What every cached matches page key of `team` starts with (invalidation drops them all).
    pub fn team_pages_key_prefix(team: TeamId) -> String {
        format!("dotabuff:{}", Self::team_matches_path(team))
    }

    /// Fetches page `page` (1-based) of a team's matches as text.
    pub async fn team_matches_page(
        &self,
        team: TeamId,
        page: u32,
    ) -> Result<String, UpstreamError> {
        let body = self
            .client
            .get(Request {
                service: Service::Dotabuff,
                url: format!("{}{}", self.base_url, Self::team_matches_path(team)),
                query: page_query(page),
                max_bytes: MAX_PAGE_BYTES,
            })
            .await?;
        String::from_utf8(Vec::from(body)).map_err(|e| UpstreamError::Unreadable {
            service: Service::Dotabuff,
            reason: format!("page is not UTF-8: {e}"),
        })
    }

    /// Records page `page` of a team's matches as the answer to the request
    /// [`Self::team_matches_page`] sends for it. Call only with a page that parsed.
    pub async fn record_page(&self, team: TeamId, page: u32, html: &str) {
        if let Some(recorder) = &self.recorder {
            let path = Self::team_matches_path(team);
            let tail = path.trim_start_matches('/');
            let body = Bytes::copy_from_slice(html.as_bytes());
            recorder
                .record(Service::Dotabuff, tail, &page_query(page), body)
                .await;
        }
    }
}

/// The query of a matches page request: none for page 1 (the URL a browser shows), else `page`.
fn page_query(page: u32) -> Vec<(&'static str, String)> {
    if page > 1 {
        vec![("page", page.to_string())]
    } else {
        Vec::new()
    }
}
