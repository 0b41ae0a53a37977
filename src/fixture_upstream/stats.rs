//! Request counters of the fixture upstream, served as JSON by `GET /_stats` and cleared by
//! `POST /_reset`. Owned by the request state in [`super::routes`]; every answered `/opendota`
//! and `/dotabuff` request is recorded once, whatever produced the answer (file, fault,
//! rate limit, random failure). Control endpoints (`/_*`) are not counted.
//!
//! `faulted` counts the answers that were not the file's: an injected fault (`/_faults`, any
//! kind, also those with status 200 such as `truncate` or `html`) or a random failure
//! (`fail_rate`). So `requests - faulted - rateLimited` is what the file answered (a 200, or a
//! 404 where there is no file), which is how a caller counts real fetches under a fault mix.
//!
//! `inFlightMax` is the most upstream requests ever answered at once (from arrival until the
//! answer leaves, latency included), so a test can check how many calls the service had in
//! flight without timing anything.
//!
//! Path keys are the request path; Dotabuff keys add `?page=N` when the request had a page
//! (see [`super::files::UpstreamRequest::stats_key`]). Maps are ordered so the JSON is stable.

use std::collections::BTreeMap;

use serde::Serialize;
use warp::http::StatusCode;

/// Counters for one path key.
#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
struct PathStats {
    requests: u64,
    rate_limited: u64,
    /// Answers made by a fault or a random failure instead of the file (see the module docs).
    faulted: u64,
    /// Status code (as a decimal string) → responses with that status.
    status: BTreeMap<String, u64>,
}

/// All counters. Serialized as
/// `{"total":N,"rateLimited":N,"failed":N,"faulted":N,"inFlightMax":N,"paths":{KEY:{"requests":N,"rateLimited":N,"faulted":N,"status":{"200":N}}}}`.
#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Stats {
    total: u64,
    /// Responses with status 429 (budget exhausted or an injected 429 fault).
    rate_limited: u64,
    /// Responses with a 5xx status (random failures, injected faults, unreadable files).
    failed: u64,
    /// Answers made by a fault or a random failure instead of the file.
    faulted: u64,
    /// Most requests in progress at once since start (or the last reset).
    in_flight_max: u64,
    /// Requests in progress now; kept across a reset.
    #[serde(skip)]
    in_flight: u64,
    paths: BTreeMap<String, PathStats>,
}

impl Stats {
    /// Counts one answer; `faulted` when a fault or a random failure made it, not the file.
    pub(crate) fn record(&mut self, key: &str, status: StatusCode, faulted: bool) {
        let limited = status == StatusCode::TOO_MANY_REQUESTS;
        self.total += 1;
        self.faulted += u64::from(faulted);
        if limited {
            self.rate_limited += 1;
        }
        if status.is_server_error() {
            self.failed += 1;
        }
        let path = self.paths.entry(key.to_owned()).or_default();
        path.requests += 1;
        path.faulted += u64::from(faulted);
        if limited {
            path.rate_limited += 1;
        }
        *path.status.entry(status.as_u16().to_string()).or_default() += 1;
    }

    /// A request arrived.
    pub(crate) fn begin(&mut self) {
        self.in_flight += 1;
        self.in_flight_max = self.in_flight_max.max(self.in_flight);
    }

    /// A request's answer left (or its connection went away).
    pub(crate) fn end(&mut self) {
        self.in_flight = self.in_flight.saturating_sub(1);
    }

    pub(crate) fn reset(&mut self) {
        let in_flight = self.in_flight;
        *self = Self {
            in_flight,
            in_flight_max: in_flight,
            ..Self::default()
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_serialize_in_the_documented_shape() {
        let mut s = Stats::default();
        s.begin();
        s.begin();
        s.end();
        s.begin();
        s.end();
        s.record("/opendota/matches/1", StatusCode::OK, false);
        s.record("/opendota/matches/1", StatusCode::TOO_MANY_REQUESTS, false);
        s.record("/opendota/matches/1", StatusCode::OK, true);
        s.record(
            "/dotabuff/x?page=2",
            StatusCode::INTERNAL_SERVER_ERROR,
            true,
        );
        let json = serde_json::to_value(&s).expect("stats serialize");
        assert_eq!(
            json,
            serde_json::json!({
                "total": 4, "rateLimited": 1, "failed": 1, "faulted": 2, "inFlightMax": 2,
                "paths": {
                    "/opendota/matches/1": {"requests": 3, "rateLimited": 1, "faulted": 1, "status": {"200": 2, "429": 1}},
                    "/dotabuff/x?page=2": {"requests": 1, "rateLimited": 0, "faulted": 1, "status": {"500": 1}}
                }
            })
        );
        s.reset();
        assert_eq!(
            serde_json::to_value(&s).expect("stats serialize")["total"],
            0
        );
    }
}
