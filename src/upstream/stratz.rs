//! STRATZ GraphQL calls: one page of a league's matches (`league(id) { matches(request: {take,
//! skip}) { ... } }`), POSTed to `{stratz}/graphql` with the token as a bearer header and the
//! `User-Agent: STRATZ_API` STRATZ asks for. The token never reaches an error or a log line.
//! GraphQL errors arrive with HTTP 200 in an `errors` array and are garbled answers, like any
//! other unreadable body; a refused token is HTTP 403.

use serde_json::json;

use super::client::{Post, Request, UpstreamClient};
use super::error::UpstreamError;
use super::league_history::{Cursor, HistoryPage, PAGE_SIZE, read_stratz_page};
use super::off_thread;
use crate::config::StratzToken;
use crate::domain::{LeagueId, Service};

/// A page of 100 matches with ten players each is ~40 KB.
const MAX_BODY_BYTES: usize = 4 * 1024 * 1024;

/// The league matches query; `isRadiant` gives each player's side, which the player fan-out
/// rule (`--team-players team`) needs.
pub const LEAGUE_MATCHES_QUERY: &str = "query LeagueMatches($id: Int!, $take: Int!, $skip: Int!) { \
league(id: $id) { matches(request: {take: $take, skip: $skip}) { id startDateTime durationSeconds \
radiantTeam { id name } direTeam { id name } players { steamAccountId heroId isRadiant } } } }";

/// Why a STRATZ call gave no answer.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StratzError {
    /// HTTP 403 (or 401): the token is wrong or revoked.
    #[error("stratz: the API token was refused (HTTP {0})")]
    TokenRefused(u16),
    #[error(transparent)]
    Upstream(#[from] UpstreamError),
}

/// STRATZ client bound to a base URL (`https://api.stratz.com` or a fixture) and a token.
#[derive(Clone)]
pub struct Stratz {
    client: UpstreamClient,
    base_url: String,
    token: StratzToken,
}

impl Stratz {
    pub fn new(client: UpstreamClient, base_url: &str, token: StratzToken) -> Self {
        Self {
            client,
            base_url: base_url.trim_end_matches('/').to_string(),
            token,
        }
    }

    /// One page of `league`'s matches, starting at `at`.
    pub async fn history_page(
        &self,
        league: LeagueId,
        at: Cursor,
    ) -> Result<HistoryPage, StratzError> {
        let skip = match at {
            Cursor::Stratz { skip } => skip,
            Cursor::Steam { .. } => 0,
        };
        let post = Post {
            json: json!({
                "query": LEAGUE_MATCHES_QUERY,
                "variables": {"id": league.get(), "take": PAGE_SIZE, "skip": skip},
            }),
            bearer: &self.token.0,
        };
        let request = Request {
            service: Service::Stratz,
            url: format!("{}/graphql", self.base_url),
            query: Vec::new(),
            max_bytes: MAX_BODY_BYTES,
        };
        let raw = match self.client.post(request, post).await {
            Ok(raw) => raw,
            Err(UpstreamError::Status {
                status: status @ (401 | 403),
                ..
            }) => return Err(StratzError::TokenRefused(status)),
            Err(err) => return Err(err.into()),
        };
        let page = off_thread::run(Service::Stratz, move || {
            let body = serde_json::from_slice(&raw).map_err(|e| UpstreamError::Garbled {
                service: Service::Stratz,
                reason: format!("not JSON: {e}"),
            })?;
            read_stratz_page(at, &body)
        })
        .await??;
        Ok(page)
    }
}
