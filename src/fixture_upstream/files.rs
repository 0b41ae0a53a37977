//! Answers an upstream request from the data directory. Called by [`super::routes`] for every
//! `/opendota` and `/dotabuff` request that is not answered by a fault, a rate limit or a
//! random failure. Which file answers which request is [`crate::upstream::layout`], the
//! mapping the recorder (`serve --record-dir`) writes by; it is documented there. A refused
//! (unsafe) path is answered like a missing file (404).

use std::io;
use std::path::Path;

use bytes::Bytes;

use crate::domain::Service;
use crate::upstream::layout::AnswerFile;

/// Which imitated service a request is addressed to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Upstream {
    OpenDota,
    Dotabuff,
    Steam,
    Stratz,
}

impl Upstream {
    /// First path segment of the service on the fixture server, also its data subdirectory.
    pub(crate) fn segment(self) -> &'static str {
        self.service().as_str()
    }

    /// Content type of a served file. JSON carries no charset parameter (it is UTF-8 by
    /// definition, RFC 8259); Dotabuff pages contain non-ASCII team names, so HTML says so.
    pub(crate) fn content_type(self) -> &'static str {
        match self {
            Upstream::OpenDota | Upstream::Steam | Upstream::Stratz => "application/json",
            Upstream::Dotabuff => "text/html; charset=utf-8",
        }
    }

    /// The real service this one imitates.
    fn service(self) -> Service {
        match self {
            Upstream::OpenDota => Service::OpenDota,
            Upstream::Dotabuff => Service::Dotabuff,
            Upstream::Steam => Service::Steam,
            Upstream::Stratz => Service::Stratz,
        }
    }
}

/// One upstream request, parsed once at the edge.
#[derive(Debug, Clone)]
pub(crate) struct UpstreamRequest {
    pub(crate) upstream: Upstream,
    /// The request path as received, e.g. `/opendota/matches/123`.
    path: String,
    /// The raw query string without `?`, possibly empty.
    query: String,
    /// The file that answers it (and the `page` parameter).
    file: AnswerFile,
}

impl UpstreamRequest {
    /// `tail` is the path after `/opendota/` or `/dotabuff/`; `query` the raw query string.
    pub(crate) fn parse(upstream: Upstream, tail: &str, query: &str) -> Self {
        Self {
            upstream,
            path: format!("/{}/{}", upstream.segment(), tail),
            query: query.to_owned(),
            file: AnswerFile::parse(upstream.service(), tail, query),
        }
    }

    /// Key under which `/_stats` counts this request: the bare path for OpenDota, the path plus
    /// `?page=N` for a Dotabuff request that names a page, the path plus the query without the
    /// key for Steam (`...GetMatchHistory/v1/?league_id=L&start_at_match_id=M`), and
    /// `/stratz/graphql?id=L&skip=S` for STRATZ.
    pub(crate) fn stats_key(&self) -> String {
        if matches!(self.upstream, Upstream::Steam | Upstream::Stratz) {
            let public: Vec<&str> = self
                .query
                .split('&')
                .filter(|pair| !pair.is_empty() && !pair.starts_with("key="))
                .collect();
            return match public.is_empty() {
                true => self.path.clone(),
                false => format!("{}?{}", self.path, public.join("&")),
            };
        }
        match self.file.page() {
            Some(page) => format!("{}?page={}", self.path, page),
            None => self.path.clone(),
        }
    }

    /// The path below the service, as received.
    pub(crate) fn tail(&self) -> &str {
        let prefix = self.upstream.segment().len() + 2;
        self.path.get(prefix..).unwrap_or_default()
    }

    /// The raw query string.
    pub(crate) fn query(&self) -> &str {
        &self.query
    }

    /// Fault paths that match this request, most specific first. OpenDota faults match the bare
    /// path only; Dotabuff faults also match the exact path+query and the normalized `?page=N`.
    pub(crate) fn fault_keys(&self) -> Vec<String> {
        let mut keys = Vec::with_capacity(3);
        if matches!(self.upstream, Upstream::Steam | Upstream::Stratz) {
            keys.push(self.stats_key());
        }
        if self.upstream == Upstream::Dotabuff {
            if !self.query.is_empty() {
                keys.push(format!("{}?{}", self.path, self.query));
            }
            let page_key = self.stats_key();
            if !keys.contains(&page_key) {
                keys.push(page_key);
            }
        }
        if !keys.contains(&self.path) {
            keys.push(self.path.clone());
        }
        keys
    }

    /// Reads the first existing candidate file. `Ok(None)` means not found (or refused path).
    pub(crate) async fn load(&self, dir: &Path) -> io::Result<Option<Bytes>> {
        for candidate in self.file.candidates(dir) {
            match tokio::fs::read(&candidate).await {
                Ok(body) => return Ok(Some(Bytes::from(body))),
                Err(e) if is_absent(&e) => continue,
                Err(e) => return Err(e),
            }
        }
        Ok(None)
    }
}

/// Errors that mean "no such file" for a lookup, as opposed to a broken data directory.
fn is_absent(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::NotFound | io::ErrorKind::IsADirectory | io::ErrorKind::NotADirectory
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    // The path → file mapping itself is tested in `crate::upstream::layout`.

    #[test]
    fn opendota_requests_are_counted_and_faulted_by_their_bare_path() {
        let req = UpstreamRequest::parse(Upstream::OpenDota, "players/5/wl", "api_key=k&page=3");
        assert_eq!(req.stats_key(), "/opendota/players/5/wl");
        assert_eq!(req.fault_keys(), ["/opendota/players/5/wl"]);
    }

    #[test]
    fn dotabuff_requests_are_counted_by_page_and_faulted_most_specific_first() {
        let second = UpstreamRequest::parse(Upstream::Dotabuff, "t/matches", "x=y&page=2");
        assert_eq!(second.stats_key(), "/dotabuff/t/matches?page=2");
        assert_eq!(
            second.fault_keys(),
            [
                "/dotabuff/t/matches?x=y&page=2",
                "/dotabuff/t/matches?page=2",
                "/dotabuff/t/matches"
            ]
        );
        let bare = UpstreamRequest::parse(Upstream::Dotabuff, "t/matches", "");
        assert_eq!(bare.fault_keys(), ["/dotabuff/t/matches"]);
    }

    #[tokio::test]
    async fn a_request_loads_its_file_and_page_one_falls_back_to_the_bare_page() {
        let dir = tempfile::tempdir().unwrap();
        let pages = dir.path().join("dotabuff/t");
        std::fs::create_dir_all(&pages).unwrap();
        std::fs::write(pages.join("matches.html"), "first").unwrap();
        let load = |query: &'static str| {
            let req = UpstreamRequest::parse(Upstream::Dotabuff, "t/matches", query);
            let dir = dir.path().to_path_buf();
            async move { req.load(&dir).await.unwrap() }
        };
        assert_eq!(load("page=1").await, Some(Bytes::from("first")));
        assert_eq!(load("page=2").await, None);
        let refused = UpstreamRequest::parse(Upstream::Dotabuff, "../t/matches", "");
        assert_eq!(refused.load(dir.path()).await.unwrap(), None);
    }
}
