//! Where the answer to one upstream request lives below a data directory: the one mapping
//! from a request to a file, used in both directions. The fixture upstream
//! (`fixture-upstream --dir`, `serve --demo`) reads the files [`AnswerFile::candidates`] names;
//! the [`super::recorder`] (`serve --record-dir`) writes [`AnswerFile::record_path`], which is
//! the first of those candidates, so a recorded answer is the one a replay serves.
//!
//! Layout (relative to the data directory):
//! - `GET {opendota}/P?any` → `opendota/P.json` (the query string, `api_key` included, is
//!   ignored);
//! - `GET {dotabuff}/P` → `dotabuff/P.html`; `?page=N` → `dotabuff/P.page-N.html`, and for
//!   `N = 1` also `dotabuff/P.html` when the numbered file is absent.
//! - Steam and STRATZ page their answers by cursor, so their files hold the whole of what the
//!   pages hold, and the fixture upstream pages them as the real services do:
//!   `steam/leagues/L.json` (a league's history, `{"matches":[rows as GetMatchHistory sends
//!   them]}`), `steam/teams/T.json` (the GetTeamInfoByTeamID answer for team T) and
//!   `stratz/leagues/L.json` (the league's matches, as STRATZ's `league.matches` lists them).
//!   Their tails are these paths (`leagues/L`, `teams/T`); the query is ignored.
//!
//! Safety: the request path is parsed once into validated segments; an empty segment (which
//! covers absolute paths and `//`), `.`/`..`, backslashes, colons, NUL and percent-escapes are
//! refused, so no request can name a file outside the data directory. A refused path names no
//! file: the fixture answers it like a missing file (404), the recorder skips it.

use std::path::{Path, PathBuf};

use crate::domain::Service;

/// The file side of one upstream request, parsed once.
#[derive(Debug, Clone)]
pub struct AnswerFile {
    service: Service,
    /// Raw value of the first `page` query parameter (Dotabuff only).
    page: Option<String>,
    /// Validated path segments below the service prefix; `None` when the path is unsafe or empty.
    segments: Option<Vec<String>>,
}

impl AnswerFile {
    /// `tail` is the request path below the service's base URL (`matches/1`,
    /// `esports/teams/5/matches`); `query` the raw query string without `?`, possibly empty.
    pub fn parse(service: Service, tail: &str, query: &str) -> Self {
        let page = match service {
            Service::OpenDota | Service::Steam | Service::Stratz => None,
            Service::Dotabuff => query_param(query, "page").map(str::to_owned),
        };
        Self {
            service,
            page,
            segments: safe_segments(tail),
        }
    }

    /// The raw `page` parameter of a Dotabuff request.
    pub fn page(&self) -> Option<&str> {
        self.page.as_deref()
    }

    /// Files that may answer this request, in the order to try them. Empty when the path is
    /// unsafe or the page number is not a positive integer.
    pub fn candidates(&self, dir: &Path) -> Vec<PathBuf> {
        let Some(segments) = &self.segments else {
            return Vec::new();
        };
        let Some((last, parents)) = segments.split_last() else {
            return Vec::new();
        };
        let mut base = dir.join(self.service.as_str());
        base.extend(parents);
        let file = |suffix: &str| base.join(format!("{last}{suffix}"));
        match (self.service, &self.page) {
            (Service::OpenDota | Service::Steam | Service::Stratz, _) => vec![file(".json")],
            (Service::Dotabuff, None) => vec![file(".html")],
            (Service::Dotabuff, Some(raw)) => match raw.parse::<u32>() {
                Ok(1) => vec![file(".page-1.html"), file(".html")],
                Ok(n) if n > 1 => vec![file(&format!(".page-{n}.html"))],
                _ => Vec::new(),
            },
        }
    }

    /// Where a recorded answer to this request goes: the file a replay tries first. `None`
    /// exactly when no file could answer the request.
    pub fn record_path(&self, dir: &Path) -> Option<PathBuf> {
        self.candidates(dir).into_iter().next()
    }
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
/// parameters the layout reads are plain digits).
fn query_param<'q>(query: &'q str, name: &str) -> Option<&'q str> {
    query.split('&').find_map(|pair| {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        (key == name).then_some(value)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(service: Service, tail: &str, query: &str) -> Vec<String> {
        AnswerFile::parse(service, tail, query)
            .candidates(Path::new("/data"))
            .iter()
            .map(|p| p.display().to_string())
            .collect()
    }

    #[test]
    fn opendota_paths_map_to_json_files_and_ignore_the_query() {
        assert_eq!(
            names(Service::OpenDota, "players/5/wl", "api_key=k&page=3"),
            ["/data/opendota/players/5/wl.json"]
        );
    }

    #[test]
    fn dotabuff_pages_map_to_numbered_files_with_page_one_falling_back() {
        assert_eq!(
            names(Service::Dotabuff, "esports/teams/5/matches", "page=1"),
            [
                "/data/dotabuff/esports/teams/5/matches.page-1.html",
                "/data/dotabuff/esports/teams/5/matches.html"
            ]
        );
        assert_eq!(
            names(Service::Dotabuff, "t/matches", "x=y&page=2"),
            ["/data/dotabuff/t/matches.page-2.html"]
        );
        assert_eq!(
            names(Service::Dotabuff, "t/matches", ""),
            ["/data/dotabuff/t/matches.html"]
        );
    }

    #[test]
    fn invalid_page_numbers_find_no_file() {
        for page in ["0", "-1", "two", ""] {
            let query = format!("page={page}");
            assert!(names(Service::Dotabuff, "t/matches", &query).is_empty());
            let file = AnswerFile::parse(Service::Dotabuff, "t/matches", &query);
            assert_eq!(file.record_path(Path::new("/data")), None, "page={page}");
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
            assert!(
                names(Service::OpenDota, tail, "").is_empty(),
                "{tail:?} must be refused"
            );
            let file = AnswerFile::parse(Service::OpenDota, tail, "");
            assert_eq!(file.record_path(Path::new("/data")), None, "{tail:?}");
        }
    }

    /// The recorder writes where a replay looks first, for every request the service sends.
    #[test]
    fn the_record_path_is_the_first_file_a_replay_reads() {
        let dir = Path::new("/data");
        for (service, tail, query, want) in [
            (
                Service::OpenDota,
                "matches/7",
                "api_key=secret",
                "opendota/matches/7.json",
            ),
            (
                Service::OpenDota,
                "players/5/heroes",
                "",
                "opendota/players/5/heroes.json",
            ),
            (
                Service::OpenDota,
                "leagues/9/matchIds",
                "",
                "opendota/leagues/9/matchIds.json",
            ),
            (
                Service::Dotabuff,
                "esports/teams/5/matches",
                "",
                "dotabuff/esports/teams/5/matches.html",
            ),
            (
                Service::Dotabuff,
                "esports/teams/5/matches",
                "page=3",
                "dotabuff/esports/teams/5/matches.page-3.html",
            ),
        ] {
            let file = AnswerFile::parse(service, tail, query);
            let recorded = file.record_path(dir);
            assert_eq!(recorded, Some(dir.join(want)), "{tail}?{query}");
            assert_eq!(recorded.as_ref(), file.candidates(dir).first());
        }
    }
}
