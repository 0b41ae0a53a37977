//! The committed demo data set (`fixtures/demo/`, made by `fixtures/generate_demo.py`) is
//! internally consistent when served by the fixture upstream: every Dotabuff row of league 16435
//! has an OpenDota match, every named player has their four player files, and the special
//! cases the README promises are present. Parses pages with the selectors the README documents.

use std::collections::BTreeSet;

use dota_orchestrator::fixture_upstream::{FixtureConfig, FixtureUpstream};
use reqwest::StatusCode;
use scraper::{ElementRef, Html, Selector};
use serde_json::Value;
use tokio::net::TcpListener;

const MAPLE_SYRUP: u64 = 9517508;
const FROST_GIANTS: u64 = 9517693;
const LEAGUE: u64 = 16435;
/// Upper bound on pages followed, so a broken pagination footer fails instead of looping.
const MAX_PAGES: u32 = 10;

struct Demo {
    upstream: FixtureUpstream,
    client: reqwest::Client,
}

impl Demo {
    async fn start() -> Demo {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let config = FixtureConfig {
            dir: concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/demo").into(),
            ..FixtureConfig::default()
        };
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let upstream = FixtureUpstream::start(config, listener)
            .await
            .expect("fixture starts on the demo data set");
        Demo {
            upstream,
            client: reqwest::Client::new(),
        }
    }

    async fn fetch(&self, url: String) -> String {
        let response = self.client.get(&url).send().await.expect("request");
        assert_eq!(response.status(), StatusCode::OK, "{url}");
        response.text().await.expect("body")
    }

    async fn opendota(&self, path: &str) -> Value {
        let body = self
            .fetch(format!("{}/{path}", self.upstream.opendota_url()))
            .await;
        serde_json::from_str(&body).expect("OpenDota JSON")
    }

    async fn team_page(&self, team: u64, page: u32) -> Html {
        let url = format!(
            "{}/esports/teams/{team}/matches?page={page}",
            self.upstream.dotabuff_url()
        );
        Html::parse_document(&self.fetch(url).await)
    }
}

fn selector(css: &str) -> Selector {
    Selector::parse(css).expect("valid selector")
}

/// Number after `prefix` in an href such as `/esports/leagues/16435-rd2l-season-33`.
fn id_after(href: &str, prefix: &str) -> u64 {
    let rest = href.strip_prefix(prefix).expect("href prefix");
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().expect("numeric id")
}

/// One `table.recent-esports-matches` row: (league id, match id, opponent team id).
fn parse_row(row: ElementRef<'_>) -> (u64, u64, u64) {
    let cells: Vec<_> = row.select(&selector("td")).collect();
    let league = cells[0]
        .select(&selector(r#"a[href^="/esports/leagues/"]"#))
        .next()
        .expect("league link");
    assert!(
        league.select(&selector("img[alt]")).next().is_some(),
        "league name in img[alt]"
    );
    let result = cells[1]
        .select(&selector("a.won, a.lost"))
        .next()
        .expect("result link");
    assert!(
        cells[1]
            .select(&selector("time[datetime]"))
            .next()
            .is_some()
    );
    let opponent = cells[cells.len() - 1]
        .select(&selector(r#"a[href^="/esports/teams/"]"#))
        .next()
        .expect("opponent link");
    (
        id_after(league.attr("href").expect("href"), "/esports/leagues/"),
        id_after(result.attr("href").expect("href"), "/matches/"),
        id_after(opponent.attr("href").expect("href"), "/esports/teams/"),
    )
}

/// All rows of a team, following `?page=N` until the footer has no "next" link.
async fn team_rows(demo: &Demo, team: u64) -> Vec<Vec<(u64, u64, u64)>> {
    let (row, mut pages) = (
        selector("table.recent-esports-matches tbody tr"),
        Vec::new(),
    );
    for page in 1..=MAX_PAGES {
        let html = demo.team_page(team, page).await;
        pages.push(html.select(&row).map(parse_row).collect());
        if html
            .select(&selector("nav.pagination span.next a"))
            .next()
            .is_none()
        {
            return pages;
        }
    }
    panic!("team {team} has more than {MAX_PAGES} pages");
}

fn players(game: &Value) -> &Vec<Value> {
    game["players"].as_array().expect("players array")
}

#[tokio::test]
async fn demo_dotabuff_rows_lead_to_complete_opendota_data() {
    let demo = Demo::start().await;
    let first = demo.team_page(MAPLE_SYRUP, 1).await;
    let h1 = first.select(&selector("h1")).next().expect("h1");
    let small: String = h1
        .select(&selector("small"))
        .flat_map(|s| s.text())
        .collect();
    let title: String = h1.text().collect();
    assert_eq!(title.strip_suffix(small.as_str()), Some("Maple Syrup"));

    let pages = team_rows(&demo, MAPLE_SYRUP).await;
    assert_eq!(pages.len(), 3);
    let leagues_on_page_2: BTreeSet<u64> = pages[1].iter().map(|r| r.0).collect();
    assert_eq!(leagues_on_page_2.len(), 2, "page 2 mixes leagues");
    let rows: Vec<_> = pages.into_iter().flatten().collect();
    let in_league: Vec<u64> = rows.iter().filter(|r| r.0 == LEAGUE).map(|r| r.1).collect();
    assert_eq!(in_league.len(), 9);
    assert_eq!(rows.len() - in_league.len(), 2);

    let league_ids: BTreeSet<u64> =
        serde_json::from_value(demo.opendota("leagues/16435/matchIds").await)
            .expect("array of ids");
    let team_matches = demo.opendota("teams/9517508/matches").await;
    let listed: BTreeSet<u64> = team_matches
        .as_array()
        .expect("array")
        .iter()
        .map(|m| m["match_id"].as_u64().expect("match_id"))
        .collect();
    assert_eq!(listed, rows.iter().map(|r| r.1).collect());

    let (mut anonymous, mut without_dire, mut accounts) = (0, 0, BTreeSet::new());
    for id in &in_league {
        assert!(league_ids.contains(id), "{id} in league matchIds");
        let game = demo.opendota(&format!("matches/{id}")).await;
        assert_eq!(game["leagueid"], LEAGUE);
        let teams = [&game["radiant_team_id"], &game["dire_team_id"]];
        assert!(
            teams.iter().any(|t| **t == MAPLE_SYRUP),
            "{id} involves Maple Syrup"
        );
        without_dire += usize::from(game.get("dire_team_id").is_none());
        assert_eq!(players(&game).len(), 10);
        for player in players(&game) {
            match player["account_id"].as_u64() {
                Some(account) => _ = accounts.insert(account),
                None => anonymous += 1,
            }
        }
    }
    assert!(anonymous >= 1, "an anonymous player");
    assert!(without_dire >= 1, "a match without dire_team_id");

    for account in &accounts {
        let profile = demo.opendota(&format!("players/{account}")).await;
        assert_eq!(profile["profile"]["account_id"], *account);
        demo.opendota(&format!("players/{account}/wl")).await;
        let heroes = demo.opendota(&format!("players/{account}/heroes")).await;
        assert_eq!(heroes.as_array().map(Vec::len), Some(10));
        let recent = demo
            .opendota(&format!("players/{account}/recentMatches"))
            .await;
        let recent = recent.as_array().map(Vec::len).expect("array");
        assert!(
            (5..=10).contains(&recent),
            "{account}: {recent} recent matches"
        );
    }
}

#[tokio::test]
async fn demo_second_team_shares_players_and_has_a_single_page() {
    let demo = Demo::start().await;
    let pages = team_rows(&demo, FROST_GIANTS).await;
    assert_eq!(pages.len(), 1);
    let rows = &pages[0];
    assert!(rows.iter().all(|r| r.0 == LEAGUE));
    assert!(
        rows.iter().any(|r| r.2 == MAPLE_SYRUP),
        "overlaps with Maple Syrup's matches"
    );

    let roster_of = |game: &Value, team: u64| -> BTreeSet<u64> {
        let radiant = game["radiant_team_id"] == team;
        players(game)
            .iter()
            .filter(|p| p["isRadiant"] == radiant)
            .filter_map(|p| p["account_id"].as_u64())
            .collect()
    };
    let (mut giants, mut syrup) = (BTreeSet::new(), BTreeSet::new());
    for (_, id, _) in rows {
        let game = demo.opendota(&format!("matches/{id}")).await;
        giants.extend(roster_of(&game, FROST_GIANTS));
    }
    let first_syrup_match = team_rows(&demo, MAPLE_SYRUP).await[0][0].1;
    let game = demo.opendota(&format!("matches/{first_syrup_match}")).await;
    syrup.extend(roster_of(&game, MAPLE_SYRUP));
    assert_eq!(giants.intersection(&syrup).count(), 2);
}
