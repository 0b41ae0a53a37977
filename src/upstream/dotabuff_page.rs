//! Pure parser for Dotabuff's team matches page (`/esports/teams/{id}/matches?page=N`): HTML text
//! in, a typed [`TeamMatchesPage`] out, no I/O. The Dotabuff client calls it on each fetched page;
//! the team importer reads the rows of one league and follows `has_next_page`.
//!
//! Failure semantics: a page is rejected as a whole only when it cannot be a team matches page
//! ([`PageError`]); inside an accepted page a row that cannot be read is skipped, never guessed.
//! Every [`PageError`] means "Dotabuff gave no usable list for this page": re-parsing the same text
//! cannot help, so the caller gives up on this page and falls back to OpenDota
//! (`/teams/{id}/matches`, `/leagues/{id}/matchIds`).
//!
//! Empty versus broken: a matches table with an empty body is a valid empty page (`Ok`, no rows).
//! A page without the table is always [`PageError::NoMatchesTable`], even if it might be a team
//! with no matches: that page cannot be told apart from a bot-challenge page or a new layout, and
//! a false "no matches" would silently drop data while a false error only costs a fallback fetch.
//! Likewise a table whose rows carry links but none of which can be read is
//! [`PageError::NoReadableRows`] (a layout change), not an empty page.

use std::str::FromStr;
use std::sync::LazyLock;

use chrono::{DateTime, Utc};
use scraper::{ElementRef, Html, Selector};

use crate::domain::{LeagueId, MatchId, TeamId};

/// Largest page accepted; the real pages are ~40 KB.
pub const MAX_PAGE_BYTES: usize = 2 * 1024 * 1024;

/// One page of a team's matches, newest first as Dotabuff lists them.
#[derive(Debug, Clone, PartialEq)]
pub struct TeamMatchesPage {
    /// The page's `h1` without its `<small>` subtitle ("Matches"); `None` when absent or empty.
    pub team_name: Option<String>,
    /// The readable rows, in page order; unreadable rows are left out.
    pub rows: Vec<TeamMatchRow>,
    /// true when the pagination block has a next/last link (more pages follow)
    pub has_next_page: bool,
}

/// One match of the team. Only the match and league IDs are required; the rest is best effort.
#[derive(Debug, Clone, PartialEq)]
pub struct TeamMatchRow {
    pub match_id: MatchId,
    pub league_id: LeagueId,
    /// From the league link's `img[alt]`, else the link's text (`span.league-text`).
    pub league_name: Option<String>,
    /// From `time[datetime]` in the result cell (RFC 3339, converted to UTC).
    pub start_time: Option<DateTime<Utc>>,
    /// `Some(true)` for `a.won`, `Some(false)` for `a.lost`, `None` when the link has neither class.
    pub won: Option<bool>,
    pub opponent_id: Option<TeamId>,
    /// From the opponent's `img[alt]`, which holds the full name; the link text
    /// (`span.team-text-full`) is only a fallback because Dotabuff cuts long names with "…".
    pub opponent_name: Option<String>,
}

/// Why a page yields no usable match list. See the module docs for what the caller does.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum PageError {
    #[error("Dotabuff page is {bytes} bytes, over the {max}-byte limit", max = MAX_PAGE_BYTES)]
    TooLarge { bytes: usize },
    #[error(
        "Dotabuff page has no team matches table (table.recent-esports-matches): \
         not a team matches page, or the layout changed"
    )]
    NoMatchesTable,
    #[error(
        "Dotabuff matches table has {rows} rows with links but none could be read \
         (no league link or match link): the layout probably changed"
    )]
    NoReadableRows { rows: usize },
}

impl TeamMatchesPage {
    /// The rows played in `league`, in page order.
    pub fn rows_in_league(&self, league: LeagueId) -> impl Iterator<Item = &TeamMatchRow> {
        self.rows.iter().filter(move |row| row.league_id == league)
    }
}

// Selectors are parsed once. Invariant: every literal below is a valid CSS selector, so the
// `expect` cannot fire; `every_selector_literal_is_valid` forces them all in tests.

/// The league overview page reuses `recent-esports-matches` for its series tables; those rows
/// have another shape, so they are excluded rather than read as unreadable rows.
static MATCHES_TABLE: LazyLock<Selector> = LazyLock::new(|| {
    // The literal is a valid selector.
    Selector::parse("table.recent-esports-matches:not(.series-table)").expect("valid selector")
});
/// Body rows of the table itself, not of any table nested in a cell.
static ROWS: LazyLock<Selector> = LazyLock::new(|| {
    // The literal is a valid selector.
    Selector::parse(":scope > tbody > tr").expect("valid selector")
});
static LEAGUE_LINK: LazyLock<Selector> = LazyLock::new(|| {
    // The literal is a valid selector.
    Selector::parse(r#"a[href^="/esports/leagues/"]"#).expect("valid selector")
});
static MATCH_LINK: LazyLock<Selector> = LazyLock::new(|| {
    // The literal is a valid selector.
    Selector::parse(r#"a[href^="/matches/"]"#).expect("valid selector")
});
static TEAM_LINK: LazyLock<Selector> = LazyLock::new(|| {
    // The literal is a valid selector.
    Selector::parse(r#"a[href^="/esports/teams/"]"#).expect("valid selector")
});
static ANY_LINK: LazyLock<Selector> = LazyLock::new(|| {
    // The literal is a valid selector.
    Selector::parse("a[href]").expect("valid selector")
});
static TIME: LazyLock<Selector> = LazyLock::new(|| {
    // The literal is a valid selector.
    Selector::parse("time[datetime]").expect("valid selector")
});
static IMG_WITH_ALT: LazyLock<Selector> = LazyLock::new(|| {
    // The literal is a valid selector.
    Selector::parse("img[alt]").expect("valid selector")
});
static TEAM_TEXT_FULL: LazyLock<Selector> = LazyLock::new(|| {
    // The literal is a valid selector.
    Selector::parse(".team-text-full").expect("valid selector")
});
static HEADING: LazyLock<Selector> = LazyLock::new(|| {
    // The literal is a valid selector.
    Selector::parse("h1").expect("valid selector")
});
/// Dotabuff's (Kaminari) pagination drops `span.next` and `span.last` on the last page; the
/// `rel="next"` link to the following page number goes with them.
static NEXT_PAGE_LINK: LazyLock<Selector> = LazyLock::new(|| {
    // The literal is a valid selector.
    Selector::parse(
        r#"nav.pagination span.next a, nav.pagination span.last a, nav.pagination a[rel~="next"]"#,
    )
    .expect("valid selector")
});

/// Parses one team matches page. Pages over [`MAX_PAGE_BYTES`] are refused before any parsing.
pub fn parse_team_matches_page(html: &str) -> Result<TeamMatchesPage, PageError> {
    if html.len() > MAX_PAGE_BYTES {
        return Err(PageError::TooLarge { bytes: html.len() });
    }
    let document = Html::parse_document(html);
    let table = document
        .select(&MATCHES_TABLE)
        .next()
        .ok_or(PageError::NoMatchesTable)?;

    let mut rows = Vec::new();
    let mut rows_with_links = 0;
    for tr in table.select(&ROWS) {
        if let Some(row) = parse_row(tr) {
            rows.push(row);
        } else if tr.select(&ANY_LINK).next().is_some() {
            rows_with_links += 1;
        }
        // A row without any link (a spacer or a "no matches" notice) is neither data nor breakage.
    }
    if rows.is_empty() && rows_with_links > 0 {
        return Err(PageError::NoReadableRows {
            rows: rows_with_links,
        });
    }

    Ok(TeamMatchesPage {
        team_name: document.select(&HEADING).next().and_then(heading_text),
        rows,
        has_next_page: document.select(&NEXT_PAGE_LINK).next().is_some(),
    })
}

/// Reads one row by cell position: 1 league, 2 result, last opponent. `None` when the league or
/// match link is missing or carries no valid ID.
fn parse_row(tr: ElementRef<'_>) -> Option<TeamMatchRow> {
    let cells: Vec<ElementRef<'_>> = tr
        .child_elements()
        .filter(|cell| cell.value().name() == "td")
        .collect();
    let (league_cell, result_cell) = (cells.first()?, cells.get(1)?);

    let (league_link, league_id) = league_cell.select(&LEAGUE_LINK).find_map(|link| {
        let id = id_in_path::<LeagueId>(link.attr("href")?, "/esports/leagues/")?;
        Some((link, id))
    })?;
    let (match_link, match_id) = result_cell.select(&MATCH_LINK).find_map(|link| {
        let id = id_in_path::<MatchId>(link.attr("href")?, "/matches/")?;
        Some((link, id))
    })?;

    let league_name = league_link
        .select(&IMG_WITH_ALT)
        .find_map(|img| clean_text(img.attr("alt")?))
        .or_else(|| clean_text(&league_link.text().collect::<String>()));
    let start_time = result_cell.select(&TIME).find_map(|time| {
        let raw = time.attr("datetime")?;
        DateTime::parse_from_rfc3339(raw.trim()).ok()
    });
    let won = match_link.value().classes().find_map(|class| match class {
        "won" => Some(true),
        "lost" => Some(false),
        _ => None,
    });

    // Only a cell after the result cell can be the opponent's.
    let (opponent_id, opponent_name) = match cells.get(2..).and_then(<[_]>::last) {
        Some(cell) => parse_opponent(*cell),
        None => (None, None),
    };

    Some(TeamMatchRow {
        match_id,
        league_id,
        league_name,
        start_time: start_time.map(|t| t.with_timezone(&Utc)),
        won,
        opponent_id,
        opponent_name,
    })
}

fn parse_opponent(cell: ElementRef<'_>) -> (Option<TeamId>, Option<String>) {
    let id = cell
        .select(&TEAM_LINK)
        .find_map(|link| id_in_path::<TeamId>(link.attr("href")?, "/esports/teams/"));
    let name = cell
        .select(&TEAM_LINK)
        .flat_map(|link| link.select(&IMG_WITH_ALT))
        .find_map(|img| clean_text(img.attr("alt")?))
        .or_else(|| {
            cell.select(&TEAM_TEXT_FULL)
                .find_map(|span| clean_text(&span.text().collect::<String>()))
        })
        .or_else(|| {
            cell.select(&TEAM_LINK)
                .find_map(|link| clean_text(&link.text().collect::<String>()))
        });
    (id, name)
}

/// The ID at the start of the path segment after `prefix`: `/esports/leagues/16435-rd2l` and
/// `/matches/7936128769?x` give 16435 and 7936128769. The digits must end the segment or be
/// followed by the slug's `-`, so `/matches/12abc` is rejected rather than read as 12.
fn id_in_path<T: FromStr>(href: &str, prefix: &str) -> Option<T> {
    let rest = href.strip_prefix(prefix)?;
    let end = rest
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(rest.len());
    let (digits, tail) = rest.split_at(end);
    let ends_segment = tail.is_empty() || tail.starts_with(['-', '/', '?', '#']);
    if ends_segment {
        digits.parse().ok()
    } else {
        None
    }
}

/// The heading's text without any `<small>` inside it (Dotabuff puts "Matches" there).
/// Walks the subtree with an explicit stack: the input is untrusted and may nest deeply.
fn heading_text(h1: ElementRef<'_>) -> Option<String> {
    let mut text = String::new();
    let mut pending: Vec<_> = h1.children().collect();
    pending.reverse();
    while let Some(node) = pending.pop() {
        if let Some(fragment) = node.value().as_text() {
            text.push_str(fragment);
        } else if ElementRef::wrap(node).is_some_and(|el| el.value().name() != "small") {
            pending.extend(node.children().rev());
        }
    }
    clean_text(&text)
}

/// Collapses whitespace runs to one space; `None` when nothing is left.
fn clean_text(raw: &str) -> Option<String> {
    let joined = raw.split_whitespace().collect::<Vec<_>>().join(" ");
    (!joined.is_empty()).then_some(joined)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIDDLE_PAGE: &str =
        include_str!("../../tests/data/dotabuff/team_matches_middle_page.html");
    const LAST_PAGE: &str = include_str!("../../tests/data/dotabuff/team_matches_last_page.html");
    const SHARED_TEAM_PAGE: &str = "/work/shared/fixtures/dotabuff/team_9517508_matches_page2.html";
    const SHARED_LEAGUE_PAGE: &str = "/work/shared/fixtures/dotabuff/league_16435_overview.html";

    fn league(id: u64) -> LeagueId {
        LeagueId::new(id).unwrap()
    }

    fn match_ids<'a>(rows: impl IntoIterator<Item = &'a TeamMatchRow>) -> Vec<u64> {
        rows.into_iter().map(|row| row.match_id.get()).collect()
    }

    /// A page with the given table body and no pagination.
    fn page_with_body(tbody: &str) -> String {
        format!(
            "<html><body><h1>T<small>Matches</small></h1>\
             <table class=\"table recent-esports-matches\"><tbody>{tbody}</tbody></table>\
             </body></html>"
        )
    }

    #[test]
    fn every_selector_literal_is_valid() {
        for selector in [
            &MATCHES_TABLE,
            &ROWS,
            &LEAGUE_LINK,
            &MATCH_LINK,
            &TEAM_LINK,
            &ANY_LINK,
            &TIME,
            &IMG_WITH_ALT,
            &TEAM_TEXT_FULL,
            &HEADING,
            &NEXT_PAGE_LINK,
        ] {
            LazyLock::force(selector);
        }
    }

    #[test]
    fn parses_every_field_of_a_row_in_the_real_structure() {
        let page = parse_team_matches_page(MIDDLE_PAGE).unwrap();
        assert_eq!(match_ids(&page.rows), [8000000003, 8000000002, 8000000001]);
        let first = &page.rows[0];
        assert_eq!(first.league_id, league(16435));
        assert_eq!(first.league_name.as_deref(), Some("RD2L Season 33"));
        assert_eq!(
            first.start_time,
            Some("2024-09-10T00:40:27Z".parse::<DateTime<Utc>>().unwrap())
        );
        assert_eq!(first.won, Some(true));
        assert_eq!(first.opponent_id, TeamId::new(9517701));
    }

    #[test]
    fn team_name_is_the_heading_without_its_small_subtitle() {
        let page = parse_team_matches_page(MIDDLE_PAGE).unwrap();
        assert_eq!(page.team_name.as_deref(), Some("Test Squad"));
    }

    #[test]
    fn league_name_falls_back_to_the_link_text_when_there_is_no_image() {
        let page = parse_team_matches_page(MIDDLE_PAGE).unwrap();
        assert_eq!(page.rows[1].league_id, league(15000));
        assert_eq!(page.rows[1].league_name.as_deref(), Some("Winter Cup"));
    }

    #[test]
    fn start_time_is_converted_to_utc() {
        let page = parse_team_matches_page(MIDDLE_PAGE).unwrap();
        assert_eq!(
            page.rows[1].start_time,
            Some("2024-08-26T23:28:29Z".parse::<DateTime<Utc>>().unwrap())
        );
    }

    #[test]
    fn won_is_read_from_the_result_link_class() {
        let page = parse_team_matches_page(MIDDLE_PAGE).unwrap();
        let won: Vec<_> = page.rows.iter().map(|row| row.won).collect();
        assert_eq!(won, [Some(true), Some(false), Some(false)]);
    }

    #[test]
    fn opponent_name_prefers_the_full_image_alt_over_the_shortened_link_text() {
        let page = parse_team_matches_page(MIDDLE_PAGE).unwrap();
        assert_eq!(
            page.rows[0].opponent_name.as_deref(),
            Some("SEA10KMMR Academy Reserves")
        );
        assert_eq!(page.rows[1].opponent_id, TeamId::new(9517703));
        assert_eq!(
            page.rows[1].opponent_name.as_deref(),
            Some("erock void pog")
        );
    }

    #[test]
    fn optional_fields_are_none_when_the_cells_are_empty() {
        let page = parse_team_matches_page(MIDDLE_PAGE).unwrap();
        let bare = &page.rows[2];
        assert_eq!(bare.match_id, MatchId::new(8000000001).unwrap());
        assert_eq!(bare.start_time, None);
        assert_eq!(bare.opponent_id, None);
        assert_eq!(bare.opponent_name, None);
    }

    #[test]
    fn league_filter_keeps_only_rows_of_that_league_in_page_order() {
        let page = parse_team_matches_page(MIDDLE_PAGE).unwrap();
        assert_eq!(
            match_ids(page.rows_in_league(league(16435))),
            [8000000003, 8000000001]
        );
        assert_eq!(match_ids(page.rows_in_league(league(15000))), [8000000002]);
        assert_eq!(page.rows_in_league(league(1)).count(), 0);
    }

    #[test]
    fn has_next_page_is_true_on_a_middle_page() {
        assert!(parse_team_matches_page(MIDDLE_PAGE).unwrap().has_next_page);
    }

    #[test]
    fn has_next_page_is_false_on_the_last_page() {
        let page = parse_team_matches_page(LAST_PAGE).unwrap();
        assert!(!page.has_next_page);
        assert_eq!(match_ids(&page.rows), [7900000000]);
    }

    #[test]
    fn has_next_page_is_false_without_a_pagination_block() {
        let page = parse_team_matches_page(&page_with_body("")).unwrap();
        assert!(!page.has_next_page);
    }

    #[test]
    fn rows_without_a_league_or_match_link_are_skipped() {
        let good = r#"<tr><td><a href="/esports/leagues/7-x">L</a></td>
            <td><a class="won" href="/matches/70">Won</a></td><td></td></tr>"#;
        let no_league = r#"<tr><td></td><td><a class="won" href="/matches/71">Won</a></td></tr>"#;
        let no_match = r#"<tr><td><a href="/esports/leagues/7-x">L</a></td><td>?</td></tr>"#;
        let bad_ids = r#"<tr><td><a href="/esports/leagues/0-x">L</a></td>
            <td><a href="/matches/72abc">Won</a></td></tr>"#;
        let html = page_with_body(&format!("{no_league}{good}{no_match}{bad_ids}"));
        let page = parse_team_matches_page(&html).unwrap();
        assert_eq!(match_ids(&page.rows), [70]);
    }

    #[test]
    fn an_empty_table_body_is_an_empty_page_not_an_error() {
        let notice = r#"<tr><td colspan="6">No matches found</td></tr>"#;
        for body in ["", notice] {
            let page = parse_team_matches_page(&page_with_body(body)).unwrap();
            assert!(page.rows.is_empty());
            assert_eq!(page.team_name.as_deref(), Some("T"));
        }
    }

    #[test]
    fn a_table_whose_linked_rows_are_all_unreadable_is_a_layout_change() {
        let moved = r#"<tr><td><a class="won" href="/matches/70">Won</a></td>
            <td><a href="/esports/leagues/7-x">L</a></td></tr>"#;
        let html = page_with_body(&format!("{moved}{moved}"));
        assert_eq!(
            parse_team_matches_page(&html),
            Err(PageError::NoReadableRows { rows: 2 })
        );
    }

    #[test]
    fn a_page_without_the_matches_table_is_rejected() {
        let html = "<html><body><h1>Too Many Requests</h1><p>Slow down.</p></body></html>";
        assert_eq!(
            parse_team_matches_page(html),
            Err(PageError::NoMatchesTable)
        );
    }

    #[test]
    fn a_league_series_table_is_not_taken_for_a_team_matches_table() {
        let html = r#"<table class="table recent-esports-matches series-table narrow"><tbody>
            <tr><td><a href="/esports/series/1-a-vs-b">BO3</a></td>
            <td><a href="/matches/8128232845">1</a></td></tr></tbody></table>"#;
        assert_eq!(
            parse_team_matches_page(html),
            Err(PageError::NoMatchesTable)
        );
    }

    #[test]
    fn empty_and_garbage_input_is_rejected_without_panicking() {
        let inputs = [
            "",
            "\0\0\0",
            "<<<>>><</>",
            "not html at all { \"json\": true }",
            "<table class=\"recent-esports-matches\"",
            "<table class=\"recent-esports-matches\"><tbody><tr><td><a href=\"/esports/leagues/\">",
            "<td><a href=\"/matches/99999999999999999999999999\" class=\"won\"></a></td>",
            "<h1><small><small></h1>",
        ];
        for input in inputs {
            // Any outcome is fine as long as it is a value, not a panic.
            let _ = parse_team_matches_page(input);
        }
        assert_eq!(parse_team_matches_page(""), Err(PageError::NoMatchesTable));
    }

    #[test]
    fn truncated_html_never_panics_and_keeps_the_complete_rows() {
        for cut in (0..MIDDLE_PAGE.len()).filter(|i| MIDDLE_PAGE.is_char_boundary(*i)) {
            let _ = parse_team_matches_page(&MIDDLE_PAGE[..cut]);
        }
        let cut = MIDDLE_PAGE.find("</tbody>").unwrap();
        let page = parse_team_matches_page(&MIDDLE_PAGE[..cut]).unwrap();
        assert_eq!(page.rows.len(), 3);
        assert!(!page.has_next_page);
    }

    #[test]
    fn a_page_over_the_size_limit_is_too_large_before_parsing() {
        let huge = "<tr>".repeat(5 * 1024 * 1024 / 4);
        assert_eq!(
            parse_team_matches_page(&huge),
            Err(PageError::TooLarge { bytes: huge.len() })
        );
        let at_limit = " ".repeat(MAX_PAGE_BYTES);
        assert_eq!(
            parse_team_matches_page(&at_limit),
            Err(PageError::NoMatchesTable)
        );
    }

    #[test]
    fn deeply_nested_heading_does_not_overflow_the_stack() {
        let depth = 100_000;
        let html = format!(
            "{}Deep{}<table class=\"recent-esports-matches\"></table>",
            "<h1>".to_owned() + &"<span>".repeat(depth),
            "</span>".repeat(depth) + "</h1>"
        );
        let page = parse_team_matches_page(&html).unwrap();
        assert_eq!(page.team_name.as_deref(), Some("Deep"));
    }

    #[test]
    fn id_in_path_reads_the_leading_id_of_the_segment() {
        assert_eq!(
            id_in_path::<LeagueId>("/esports/leagues/16435-rd2l-season-33", "/esports/leagues/"),
            LeagueId::new(16435)
        );
        assert_eq!(
            id_in_path::<MatchId>("/matches/7936128769", "/matches/"),
            MatchId::new(7936128769)
        );
        for bad in [
            "/matches/",
            "/matches/-1",
            "/matches/12abc",
            "/matches/0",
            "/heroes/1",
        ] {
            assert_eq!(id_in_path::<MatchId>(bad, "/matches/"), None, "{bad}");
        }
    }

    /// The recorded real page, when this machine has it (CI may not).
    #[test]
    fn parses_the_shared_real_team_page_when_present() {
        let Ok(html) = std::fs::read_to_string(SHARED_TEAM_PAGE) else {
            return;
        };
        let page = parse_team_matches_page(&html).unwrap();
        assert_eq!(page.rows_in_league(league(16435)).count(), 3);
        assert_eq!(page.rows.len(), 3);
        assert_eq!(page.team_name.as_deref(), Some("Maple Syrup блин"));
        assert!(!page.has_next_page);
        let first = &page.rows[0];
        assert_eq!(first.match_id, MatchId::new(7936128769).unwrap());
        assert_eq!(first.league_name.as_deref(), Some("RD2L Season 33"));
        assert_eq!(first.won, Some(false));
        assert_eq!(first.opponent_id, TeamId::new(9517701));
        assert_eq!(first.opponent_name.as_deref(), Some("SEA10KMMR"));
        assert!(page.rows.iter().all(|row| row.start_time.is_some()));
    }

    #[test]
    fn the_shared_real_league_overview_is_not_a_team_matches_page_when_present() {
        let Ok(html) = std::fs::read_to_string(SHARED_LEAGUE_PAGE) else {
            return;
        };
        assert_eq!(
            parse_team_matches_page(&html),
            Err(PageError::NoMatchesTable)
        );
    }
}
