//! Dotabuff page fetches: the team matches pages (`/esports/teams/{id}/matches?page=N`),
//! through the rate-limited client with a browser-like User-Agent. Dotabuff's bot protection
//! escalates when pushed, so a 403/429 is not retried here: the caller falls back to OpenDota.

use super::client::{Request, UpstreamClient};
use super::dotabuff_page::MAX_PAGE_BYTES;
use super::error::UpstreamError;
use crate::domain::{Service, TeamId};

#[derive(Clone)]
pub struct Dotabuff {
    client: UpstreamClient,
    base_url: String,
}

impl Dotabuff {
    pub fn new(client: UpstreamClient, base_url: &str) -> Self {
        Self {
            client,
            base_url: base_url.trim_end_matches('/').to_string(),
        }
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
        let query = if page > 1 {
            vec![("page", page.to_string())]
        } else {
            Vec::new()
        };
        let body = self
            .client
            .get(Request {
                service: Service::Dotabuff,
                url: format!("{}{}", self.base_url, Self::team_matches_path(team)),
                query,
                max_bytes: MAX_PAGE_BYTES,
            })
            .await?;
        String::from_utf8(Vec::from(body)).map_err(|e| UpstreamError::Unreadable {
            service: Service::Dotabuff,
            reason: format!("page is not UTF-8: {e}"),
        })
    }
}
