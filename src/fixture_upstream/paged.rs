//! The fixture's Steam and STRATZ answers, paged from whole files as the real services page
//! (the files are named in `upstream::layout`):
//! - `GET /steam/IDOTA2Match_570/GetMatchHistory/v1/?key=K&league_id=L[&start_at_match_id=M]`:
//!   the league's rows with `match_id <= M`, newest first, at most 100, with `num_results`,
//!   `total_results` and `results_remaining`. A file whose `result.status` is not 1 (15:
//!   private) is answered as it is. No file: a history with no matches.
//! - `GET /steam/IDOTA2Match_570/GetTeamInfoByTeamID/v1/?key=K&start_at_team_id=T`: the file of
//!   the first team at or after T ("start at", as Steam does), or no team.
//! - `POST /stratz/graphql` with `variables {id, take, skip}`: the league's matches from `skip`
//!   on, at most `take`, as `{"data":{"league":{"matches":[...]}}}`; no file: `league: null`.
//!
//! Steam answers a missing key with its 403 page; STRATZ a missing bearer token with 403.
//! Called by [`super::routes`] in place of a plain file.

use std::path::Path;

use bytes::Bytes;
use serde_json::{Value, json};
use warp::http::StatusCode;

use super::faults::STEAM_FORBIDDEN_PAGE;

/// Rows per Steam page, as Steam sends them.
const STEAM_PAGE: usize = 100;

/// The answer: a status and a body (JSON unless `html`).
pub(crate) struct Paged {
    pub(crate) status: StatusCode,
    pub(crate) body: Bytes,
    pub(crate) html: bool,
}

fn json_answer(value: &Value) -> Paged {
    Paged {
        status: StatusCode::OK,
        body: Bytes::from(value.to_string()),
        html: false,
    }
}

fn param<'q>(query: &'q str, name: &str) -> Option<&'q str> {
    query.split('&').find_map(|pair| {
        let (key, value) = pair.split_once('=')?;
        (key == name).then_some(value)
    })
}

async fn read_json(path: &Path) -> Option<Value> {
    let bytes = tokio::fs::read(path).await.ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// A Steam request (`tail` below `/steam/`).
pub(crate) async fn steam(dir: &Path, tail: &str, query: &str) -> Paged {
    if param(query, "key").is_none_or(str::is_empty) {
        return Paged {
            status: StatusCode::FORBIDDEN,
            body: Bytes::from_static(STEAM_FORBIDDEN_PAGE.as_bytes()),
            html: true,
        };
    }
    let method = tail.trim_end_matches('/');
    let number = |name: &str| param(query, name).and_then(|v| v.parse::<u64>().ok());
    if method.ends_with("GetMatchHistory/v1") {
        let league = number("league_id").unwrap_or(0);
        let file = read_json(&dir.join(format!("steam/leagues/{league}.json"))).await;
        return json_answer(&history_page(file, number("start_at_match_id")));
    }
    if method.ends_with("GetTeamInfoByTeamID/v1") {
        let start = number("start_at_team_id").unwrap_or(0);
        return json_answer(&team_at_or_after(dir, start).await);
    }
    Paged {
        status: StatusCode::NOT_FOUND,
        body: Bytes::from_static(b"<html><body>Not Found</body></html>"),
        html: true,
    }
}

/// One page of a league file (`{"matches":[...]}` or a whole `{"result":{...}}` answer).
fn history_page(file: Option<Value>, start_at: Option<u64>) -> Value {
    let file = file.unwrap_or_else(|| json!({"matches": []}));
    if let Some(result) = file.get("result")
        && result.get("status").and_then(Value::as_i64) != Some(1)
    {
        return file;
    }
    let all = file
        .pointer("/result/matches")
        .or_else(|| file.get("matches"))
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let id = |m: &Value| m.get("match_id").and_then(Value::as_u64).unwrap_or(0);
    let mut rows: Vec<Value> = all
        .into_iter()
        .filter(|m| start_at.is_none_or(|s| id(m) <= s))
        .collect();
    rows.sort_by_key(|m| std::cmp::Reverse(id(m)));
    let total = rows.len();
    let page: Vec<Value> = rows.into_iter().take(STEAM_PAGE).collect();
    json!({"result": {"status": 1, "num_results": page.len(), "total_results": total,
        "results_remaining": total - page.len(), "matches": page}})
}

/// The first team file with an ID at or after `start`, as Steam's "start at" answers.
async fn team_at_or_after(dir: &Path, start: u64) -> Value {
    let mut ids = Vec::new();
    if let Ok(mut entries) = tokio::fs::read_dir(dir.join("steam/teams")).await {
        while let Ok(Some(entry)) = entries.next_entry().await {
            let name = entry.file_name().to_string_lossy().into_owned();
            if let Some(id) = name
                .strip_suffix(".json")
                .and_then(|n| n.parse::<u64>().ok())
            {
                ids.push(id);
            }
        }
    }
    let next = ids.into_iter().filter(|id| *id >= start).min();
    let team = match next {
        Some(id) => read_json(&dir.join(format!("steam/teams/{id}.json"))).await,
        None => None,
    };
    team.unwrap_or_else(|| json!({"result": {"status": 1, "teams": []}}))
}

/// What a STRATZ request asks for: league, how many, from where.
pub(crate) struct StratzAsk {
    pub(crate) league: u64,
    pub(crate) take: usize,
    pub(crate) skip: usize,
}

impl StratzAsk {
    /// The GraphQL body's variables; `None` for a body that is not such a request.
    pub(crate) fn parse(body: &[u8]) -> Option<Self> {
        let body: Value = serde_json::from_slice(body).ok()?;
        let vars = body.get("variables")?;
        let number = |name: &str| vars.get(name).and_then(Value::as_u64);
        Some(Self {
            league: number("id")?,
            take: usize::try_from(number("take").unwrap_or(100)).ok()?,
            skip: usize::try_from(number("skip").unwrap_or(0)).ok()?,
        })
    }

    /// The query string the fixture counts and faults this request by: `id=L&skip=S`.
    pub(crate) fn query(&self) -> String {
        format!("id={}&skip={}", self.league, self.skip)
    }
}

/// A STRATZ request: the page of the league file it asks for.
pub(crate) async fn stratz(dir: &Path, ask: Option<StratzAsk>, authorized: bool) -> Paged {
    if !authorized {
        return Paged {
            status: StatusCode::FORBIDDEN,
            body: Bytes::from_static(br#"{"message":"Forbidden"}"#),
            html: false,
        };
    }
    let Some(ask) = ask else {
        return json_answer(&json!({"errors": [{"message": "could not read the request"}]}));
    };
    let file = read_json(&dir.join(format!("stratz/leagues/{}.json", ask.league))).await;
    let Some(Value::Array(all)) = file else {
        return json_answer(&json!({"data": {"league": null}}));
    };
    let page: Vec<Value> = all.into_iter().skip(ask.skip).take(ask.take).collect();
    json_answer(&json!({"data": {"league": {"matches": page}}}))
}

/// STRATZ's published windows (seconds long, calls allowed), reported in its
/// `x-ratelimit-remaining-{second,minute,hour,day}` headers.
pub(crate) const STRATZ_WINDOWS: [(&str, u64, u32); 4] = [
    ("second", 1, 20),
    ("minute", 60, 250),
    ("hour", 3600, 2000),
    ("day", 86_400, 10_000),
];

/// The fixture's count of STRATZ calls per window (it reports what is left, and refuses
/// nothing: the service's budget is what is tested).
#[derive(Debug, Default)]
pub(crate) struct StratzCounts {
    /// Per window of [`STRATZ_WINDOWS`]: the window's index and the calls counted in it.
    windows: [(u64, u32); 4],
}

impl StratzCounts {
    /// Counts one call at `now` (unix seconds) and returns what each window has left.
    pub(crate) fn count(&mut self, now: u64) -> Vec<(&'static str, i64)> {
        let mut left = Vec::new();
        for (slot, (name, len, limit)) in self.windows.iter_mut().zip(STRATZ_WINDOWS) {
            let index = now / len;
            if slot.0 != index {
                *slot = (index, 0);
            }
            slot.1 = slot.1.saturating_add(1);
            left.push((name, i64::from(limit) - i64::from(slot.1)));
        }
        left
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steam_pages_newest_first_below_the_cursor() {
        let rows: Vec<Value> = (1..=250).map(|id| json!({"match_id": id})).collect();
        let file = Some(json!({ "matches": rows }));
        let first = history_page(file.clone(), None);
        assert_eq!(first["result"]["results_remaining"], 150);
        assert_eq!(first["result"]["matches"][0]["match_id"], 250);
        let third = history_page(file, Some(50));
        assert_eq!(third["result"]["num_results"], 50);
        assert_eq!(third["result"]["results_remaining"], 0);
        let private = Some(json!({"result": {"status": 15, "statusDetail": "private"}}));
        assert_eq!(history_page(private, None)["result"]["status"], 15);
    }
}
