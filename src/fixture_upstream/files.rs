//! Maps an upstream request onto the data directory and reads the answer from disk. Called by
//! [`super::routes`] for every `/opendota` and `/dotabuff` request that is not answered by a
//! fault, a rate limit or a random failure.
//!
//! Layout (relative to the configured data directory):
//! - `GET /opendota/P?any` → `opendota/P.json` (the query string is ignored);
//! - `GET /dotabuff/P` → `dotabuff/P.html`; `?page=N` → `dotabuff/P.page-N.html`, and for
//!   `N = 1` also `dotabuff/P.html` when the numbered file is absent.
//!
//! Safety: the request path is parsed once into validated segments; an empty segment (which
//! covers absolute paths and `//`), `.`/`..`, backslashes, colons, NUL and percent-escapes are
//! refused, so no request can name a file outside the data directory. Refused paths are
//! answered like missing files (404).

use std::io;
use std::path::{Path, PathBuf};

use bytes::Bytes;

/// Which imitated service a request is addressed to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Upstream {
    OpenDota,
    Dotabuff,
}

impl Upstream {
    /// First path segment of the service on the fixture server, also its data subdirectory.
    pub(crate) fn segment(self) -> &'static str {
        match self {
            Upstream::OpenDota => "opendota",
            Upstream::Dotabuff => "dotabuff",
        }
    }

    /// Content type of a served file. JSON carries no charset parameter (it is UTF-8 by
    /// definition, RFC 8259); Dotabuff pages contain non-ASCII team names, so HTML says so.
    pub(crate) fn content_type(self) -> &'static str {
        match self {
            Upstream::OpenDota => "application/json",
            Upstream::Dotabuff => "text/html; charset=utf-8",
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
    /// Raw value of the first `page` query parameter (Dotabuff only).
    page: Option<String>,
    /// Validated path segments below the service prefix; `None` when the path is unsafe or empty.
    segments: Option<Vec<String>>,
}

impl UpstreamRequest {
    /// `tail` is the path after `/opendota/` or `/dotabuff/`; `query` the raw query string.
    pub(crate) fn parse(upstream: Upstream, tail: &str, query: &str) -> Self {
        let page = match upstream {
            Upstream::OpenDota => None,
            Upstream::Dotabuff => query_param(query, "page").map(str::to_owned),
        };
        Self {
            upstream,
            path: format!("/{}/{}", upstream.segment(), tail),
            query: query.to_owned(),
            page,
            segments: safe_segments(tail),
        }
    }

    /// Key under which `/_stats` counts this request: the bare path for OpenDota, the path plus
    /// `?page=N` for a Dotabuff request that names a page.
    pub(crate) fn stats_key(&self) -> String {
        match &self.page {
            Some(page) => format!("{}?page={}", self.path, page),
            None => self.path.clone(),
        }
    }

    /// Fault paths that match this request, most specific first. OpenDota faults match the bare
    /// path only; Dotabuff faults also match the exact path+query and the normalized `?page=N`.
    pub(crate) fn fault_keys(&self) -> Vec<String> {
        let mut keys = Vec::with_capacity(3);
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

    /// Files that may answer this request, in the order to try them. Empty when the path is
    /// unsafe or the page number is not a positive integer.
    fn candidates(&self, dir: &Path) -> Vec<PathBuf> {
        let Some(segments) = &self.segments else {
            return Vec::new();
        };
        let Some((last, parents)) = segments.split_last() else {
            return Vec::new();
        };
        let mut base = dir.join(self.upstream.segment());
        base.extend(parents);
        let file = |suffix: &str| base.join(format!("{last}{suffix}"));
        match (self.upstream, &self.page) {
            (Upstream::OpenDota, _) => vec![file(".json")],
            (Upstream::Dotabuff, None) => vec![file(".html")],
            (Upstream::Dotabuff, Some(raw)) => match raw.parse::<u32>() {
                Ok(1) => vec![file(".page-1.html"), file(".html")],
                Ok(n) if n > 1 => vec![file(&format!(".page-{n}.html"))],
                _ => Vec::new(),
            },
        }
    }

    /// Reads the first existing candidate file. `Ok(None)` means not found (or refused path).
    pub(crate) async fn load(&self, dir: &Path) -> io::Result<Option<Bytes>> {
        for candidate in self.candidates(dir) {
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

/// Splits `tail` into segments that are safe to join below the data directory.
fn safe_segments(tail: &str) -> Option<Vec<String>> {
    if tail.is_empty() {
        return None;
    }
    tail.split('/')
        .map(|segment| {
            let unsafe_segment = segment.is_empty()
                || segment == "."
                || segment == ".."
                || segment.contains(['\\', ':', '%', '\0']);
            (!unsafe_segment).then(|| segment.to_owned())
        })
        .collect()
}

/// Value of the first `name=value` pair in a raw query string (no percent-decoding: the
/// parameters the fixture reads are plain digits).
fn query_param<'q>(query: &'q str, name: &str) -> Option<&'q str> {
    query.split('&').find_map(|pair| {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        (key == name).then_some(value)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(req: &UpstreamRequest) -> Vec<String> {
        req.candidates(Path::new("/data"))
            .iter()
            .map(|p| p.display().to_string())
            .collect()
    }

    #[test]
    fn opendota_paths_map_to_json_files_and_ignore_the_query() {
        let req = UpstreamRequest::parse(Upstream::OpenDota, "players/5/wl", "api_key=k&page=3");
        assert_eq!(names(&req), ["/data/opendota/players/5/wl.json"]);
        assert_eq!(req.stats_key(), "/opendota/players/5/wl");
        assert_eq!(req.fault_keys(), ["/opendota/players/5/wl"]);
    }

    #[test]
    fn dotabuff_pages_map_to_numbered_files_with_page_one_falling_back() {
        let first = UpstreamRequest::parse(Upstream::Dotabuff, "esports/teams/5/matches", "page=1");
        assert_eq!(
            names(&first),
            [
                "/data/dotabuff/esports/teams/5/matches.page-1.html",
                "/data/dotabuff/esports/teams/5/matches.html"
            ]
        );
        let second = UpstreamRequest::parse(Upstream::Dotabuff, "t/matches", "x=y&page=2");
        assert_eq!(names(&second), ["/data/dotabuff/t/matches.page-2.html"]);
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
        assert_eq!(names(&bare), ["/data/dotabuff/t/matches.html"]);
        assert_eq!(bare.fault_keys(), ["/dotabuff/t/matches"]);
    }

    #[test]
    fn invalid_page_numbers_find_no_file() {
        for page in ["0", "-1", "two", ""] {
            let req =
                UpstreamRequest::parse(Upstream::Dotabuff, "t/matches", &format!("page={page}"));
            assert!(names(&req).is_empty(), "page={page}");
        }
    }

    #[test]
    fn traversal_and_odd_segments_are_refused() {
        for tail in [
            "",
            "../secret",
            "a/../../b",
            "/etc/passwd",
            "a//b",
            "a/./b",
            "a\\b",
            "c:x",
            "%2e%2e/x",
            "a/",
        ] {
            let req = UpstreamRequest::parse(Upstream::OpenDota, tail, "");
            assert!(names(&req).is_empty(), "{tail:?} must be refused");
        }
    }
}
