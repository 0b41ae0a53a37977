//! The one way upstream calls are made: take a call slot ([`InFlight`]: at most
//! `--max-in-flight` per service), wait for the [`Budget`]'s grant, send, report the
//! upstream's remaining-budget headers back, pause on 429, classify the outcome and record
//! metrics. The client knows the budget only as the trait `upstream` owns, so it runs (and is
//! tested) without an actix System. Bodies are read with a size cap. The OpenDota and Steam keys
//! travel as query parameters and the STRATZ token as a bearer header; none reaches an error or
//! a log line (errors drop the URL, logs carry the path only). A Dotabuff answer that is a bot
//! challenge page is told apart from other refusals ([`UpstreamError::Challenge`]).

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use reqwest::StatusCode;

use super::budget::{Budget, Remaining};
use super::error::{UpstreamError, invalid_id_message};
use super::in_flight::InFlight;
use crate::domain::Service;
use crate::metrics as m;

/// Per-request timeout, connect included.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// 429s absorbed within one attempt (each pauses until the next window) before the attempt
/// counts as a transient failure.
pub const MAX_RATE_LIMITED_TRIES: u32 = 5;
/// Of a 4xx answer (other than 404/429) only this much is read: enough for OpenDota's
/// `{"error":"invalid match_id"}`, too little for a CDN's error page to cost memory.
const MAX_ERROR_BODY_BYTES: usize = 4 * 1024;
/// Sent to OpenDota, which asks API users to identify themselves.
const API_USER_AGENT: &str = concat!("dota-orchestrator/", env!("CARGO_PKG_VERSION"));
/// STRATZ asks API clients to send this User-Agent.
const STRATZ_USER_AGENT: &str = "STRATZ_API";
/// Dotabuff answers unknown user agents with 429; look like a browser.
const BROWSER_USER_AGENT: &str = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36";

/// HTTP client shared by every upstream call.
#[derive(Clone)]
pub struct UpstreamClient {
    http: reqwest::Client,
    budget: Arc<dyn Budget>,
    in_flight: InFlight,
}

/// One request: where, and the query pairs. The URL is never logged with its query.
pub struct Request<'a> {
    pub service: Service,
    pub url: String,
    pub query: Vec<(&'a str, String)>,
    pub max_bytes: usize,
}

/// What makes a request a POST: a JSON body and the bearer token it is sent with (STRATZ).
pub struct Post<'a> {
    pub json: serde_json::Value,
    pub bearer: &'a str,
}

impl UpstreamClient {
    pub fn new(budget: Arc<dyn Budget>, in_flight: InFlight) -> Result<Self, UpstreamError> {
        Self::with_timeout(budget, in_flight, REQUEST_TIMEOUT)
    }

    /// A client whose requests give up after `timeout` (tests use a short one).
    pub fn with_timeout(
        budget: Arc<dyn Budget>,
        in_flight: InFlight,
        timeout: Duration,
    ) -> Result<Self, UpstreamError> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .build()
            .map_err(|e| transport(Service::OpenDota, e))?;
        Ok(Self {
            http,
            budget,
            in_flight,
        })
    }

    /// Sends `req` within the rate budget and returns the body of a 2xx answer.
    pub async fn get(&self, req: Request<'_>) -> Result<Bytes, UpstreamError> {
        self.call(req, None).await
    }

    /// POSTs `post`'s JSON body with its bearer token, as [`Self::get`] sends a GET.
    pub async fn post(&self, req: Request<'_>, post: Post<'_>) -> Result<Bytes, UpstreamError> {
        self.call(req, Some(post)).await
    }

    async fn call(&self, req: Request<'_>, post: Option<Post<'_>>) -> Result<Bytes, UpstreamError> {
        let service = req.service;
        let mut tries = 0;
        loop {
            tries += 1;
            // The slot before the grant: a grant held while waiting for a slot could be spent
            // in a later window than the one that counted it.
            let mut slot = self.in_flight.lane(service).call().await;
            let waited = self.budget.acquire(service).await?;
            slot.granted();
            metrics::histogram!(m::RATE_LIMIT_WAIT_SECONDS, "service" => service.as_str())
                .record(waited.as_secs_f64());
            if !waited.is_zero() {
                metrics::counter!(m::RATE_LIMIT_WAITS, "service" => service.as_str()).increment(1);
            }
            // Dotabuff is not asked twice: its 429 means "go away", and the caller has a fallback.
            // Steam and STRATZ: twice, then the chain moves on to the next source.
            let max_tries = match service {
                Service::OpenDota => MAX_RATE_LIMITED_TRIES,
                Service::Dotabuff => 1,
                Service::Steam | Service::Stratz => 2,
            };
            let sent = self.send_once(&req, post.as_ref()).await;
            slot.answered();
            drop(slot);
            match sent {
                Err(UpstreamError::RateLimited { .. }) if tries < max_tries => {
                    tracing::warn!(%service, tries, "upstream rate limit hit; pausing until its next window");
                    self.budget.rate_limited(service);
                }
                Err(UpstreamError::RateLimited { .. }) => {
                    self.budget.rate_limited(service);
                    return Err(UpstreamError::RateLimited { service, tries });
                }
                other => return other,
            }
        }
    }

    async fn send_once(
        &self,
        req: &Request<'_>,
        post: Option<&Post<'_>>,
    ) -> Result<Bytes, UpstreamError> {
        let service = req.service;
        let user_agent = match service {
            Service::OpenDota | Service::Steam => API_USER_AGENT,
            Service::Stratz => STRATZ_USER_AGENT,
            Service::Dotabuff => BROWSER_USER_AGENT,
        };
        let started = Instant::now();
        let builder = match post {
            Some(post) => self
                .http
                .post(&req.url)
                .bearer_auth(post.bearer)
                .json(&post.json),
            None => self.http.get(&req.url),
        };
        let sent = builder
            .query(&req.query)
            .header(reqwest::header::USER_AGENT, user_agent)
            .send()
            .await;
        let result = match sent {
            Ok(resp) => {
                if let Some(remaining) = Remaining::from_headers(resp.headers()) {
                    self.budget.observe(service, remaining);
                }
                read_response(service, resp, req.max_bytes).await
            }
            Err(e) => Err(transport(service, e)),
        };
        let class = match &result {
            Ok(_) => m::STATUS_2XX,
            Err(UpstreamError::RateLimited { .. }) => m::STATUS_429,
            Err(UpstreamError::NotFound { .. } | UpstreamError::InvalidId { .. }) => m::STATUS_4XX,
            Err(UpstreamError::Status { status, .. } | UpstreamError::Challenge { status, .. })
                if *status < 500 =>
            {
                m::STATUS_4XX
            }
            Err(UpstreamError::Challenge { .. }) => m::STATUS_5XX,
            Err(UpstreamError::Status { .. }) => m::STATUS_5XX,
            Err(_) => m::STATUS_ERROR,
        };
        metrics::counter!(m::UPSTREAM_REQUESTS, "service" => service.as_str(), "status_class" => class)
            .increment(1);
        let elapsed = started.elapsed();
        metrics::histogram!(m::UPSTREAM_LATENCY, "service" => service.as_str())
            .record(elapsed.as_secs_f64());
        // The path only: the query may carry the API key.
        tracing::debug!(
            %service,
            path = reqwest::Url::parse(&req.url).map(|u| u.path().to_string()).unwrap_or_default(),
            status_class = class,
            elapsed_ms = u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX),
            "upstream call"
        );
        result
    }
}

async fn read_response(
    service: Service,
    mut resp: reqwest::Response,
    max_bytes: usize,
) -> Result<Bytes, UpstreamError> {
    let status = resp.status();
    if status == StatusCode::NOT_FOUND {
        return Err(UpstreamError::NotFound { service });
    }
    if status == StatusCode::TOO_MANY_REQUESTS {
        return Err(UpstreamError::RateLimited { service, tries: 1 });
    }
    if service == Service::Dotabuff && (status.as_u16() == 403 || status.as_u16() == 503) {
        // A challenge page ("Just a moment...") is a refusal of programs, not a broken page.
        if let Ok(body) = read_body(service, &mut resp, MAX_ERROR_BODY_BYTES * 16).await
            && is_challenge_page(&body)
        {
            return Err(UpstreamError::Challenge {
                service,
                status: status.as_u16(),
            });
        }
        return Err(UpstreamError::Status {
            service,
            status: status.as_u16(),
        });
    }
    if status.is_client_error() && service == Service::OpenDota {
        // A short error body may be OpenDota's verdict on the ID; anything else is a status.
        if let Ok(body) = read_body(service, &mut resp, MAX_ERROR_BODY_BYTES).await
            && let Some(message) = invalid_id_message(&body)
        {
            return Err(UpstreamError::InvalidId { service, message });
        }
    }
    if !status.is_success() {
        return Err(UpstreamError::Status {
            service,
            status: status.as_u16(),
        });
    }
    if resp
        .content_length()
        .is_some_and(|len| len > max_bytes as u64)
    {
        return Err(UpstreamError::TooLarge {
            service,
            limit: max_bytes,
        });
    }
    read_body(service, &mut resp, max_bytes).await
}

/// Whether `body` is a bot challenge page (Cloudflare's "Just a moment..." interstitial and its
/// kin) rather than the page asked for. Used on error answers and on 200 pages that do not parse.
pub fn is_challenge_page(body: &[u8]) -> bool {
    const MARKERS: [&str; 4] = [
        "just a moment...",
        "challenge-platform",
        "cf-chl",
        "checking your browser",
    ];
    let text = String::from_utf8_lossy(&body[..body.len().min(64 * 1024)]).to_ascii_lowercase();
    MARKERS.iter().any(|marker| text.contains(marker))
}

/// The whole body, at most `max_bytes` of it.
async fn read_body(
    service: Service,
    resp: &mut reqwest::Response,
    max_bytes: usize,
) -> Result<Bytes, UpstreamError> {
    let mut body = Vec::new();
    loop {
        match resp.chunk().await {
            Ok(Some(chunk)) => {
                if body.len() + chunk.len() > max_bytes {
                    return Err(UpstreamError::TooLarge {
                        service,
                        limit: max_bytes,
                    });
                }
                body.extend_from_slice(&chunk);
            }
            Ok(None) => return Ok(Bytes::from(body)),
            // A connection cut mid-body is a transport failure: worth another attempt.
            Err(e) => return Err(transport(service, e)),
        }
    }
}

/// A failed send or body read, with what actually happened: reqwest's own message ("error
/// sending request") says little, the causes below it say "timed out" or "connection reset".
fn transport(service: Service, e: reqwest::Error) -> UpstreamError {
    let timed_out = e.is_timeout();
    let e = e.without_url();
    let mut reason = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        // Hyper and reqwest nest the same message; say each once.
        if !reason.contains(&cause_text) {
            reason.push_str(": ");
            reason.push_str(&cause_text);
        }
        source = cause.source();
    }
    if timed_out && !reason.contains("timed out") {
        reason.push_str(" (timed out)");
    }
    UpstreamError::Transport { service, reason }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use futures::future::BoxFuture;

    use super::*;
    use crate::fixture_upstream::{FixtureConfig, FixtureUpstream};
    use crate::upstream::budget::BudgetUnavailable;

    /// A budget that grants every call at once and keeps what the client reported.
    #[derive(Default)]
    struct Recorded {
        events: Mutex<Vec<String>>,
    }

    impl Budget for Recorded {
        fn acquire(&self, service: Service) -> BoxFuture<'_, Result<Duration, BudgetUnavailable>> {
            self.events
                .lock()
                .unwrap()
                .push(format!("acquire {service}"));
            Box::pin(async { Ok(Duration::ZERO) })
        }
        fn observe(&self, service: Service, remaining: Remaining) {
            let Remaining { minute, day, .. } = remaining;
            let event = format!("observe {service} {minute:?} {day:?}");
            self.events.lock().unwrap().push(event);
        }
        fn rate_limited(&self, service: Service) {
            self.events.lock().unwrap().push(format!("429 {service}"));
        }
    }

    /// No actix System here: the client needs only a tokio runtime and some [`Budget`].
    #[tokio::test]
    async fn the_client_reports_the_upstream_budget_and_its_429s_to_its_budget() {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("opendota/matches")).unwrap();
        std::fs::write(dir.path().join("opendota/matches/1.json"), "{}").unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let config = FixtureConfig {
            dir: dir.path().to_path_buf(),
            rate_limit_per_min: Some(1),
            // Mid-minute and standing still: both calls fall in one window.
            clock: crate::clock::Clock::fixed(
                std::time::UNIX_EPOCH + Duration::from_secs(1_728_000_030),
            ),
            ..FixtureConfig::default()
        };
        let upstream = FixtureUpstream::start(config, listener).await.unwrap();
        let budget = Arc::new(Recorded::default());
        let client = UpstreamClient::new(budget.clone(), InFlight::new(4, 60)).unwrap();
        let request = || Request {
            service: Service::OpenDota,
            url: format!("{}/matches/1", upstream.opendota_url()),
            query: Vec::new(),
            max_bytes: 1024,
        };

        assert_eq!(client.get(request()).await.unwrap(), Bytes::from("{}"));
        let second = client.get(request()).await;
        assert!(
            matches!(second, Err(UpstreamError::RateLimited { tries, .. }) if tries == MAX_RATE_LIMITED_TRIES),
            "{second:?}"
        );
        let events = budget.events.lock().unwrap().clone();
        assert_eq!(
            events[..2],
            ["acquire opendota", "observe opendota Some(0) None"]
        );
        let limited = events.iter().filter(|e| *e == "429 opendota").count();
        assert_eq!(limited, MAX_RATE_LIMITED_TRIES as usize, "{events:?}");
        upstream.stop().await;
    }

    /// Every fault kind of the fixture, seen through the real client and the OpenDota body
    /// checks, lands in the variant its disposition expects; the reason says what happened.
    #[tokio::test]
    async fn each_fault_kind_is_classified_by_what_the_client_saw() {
        use crate::upstream::error::Disposition;
        use crate::upstream::opendota::OpenDota;

        let _ = rustls::crypto::ring::default_provider().install_default();
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("opendota/matches")).unwrap();
        let body = r#"{"match_id":7,"players":[{"account_id":1,"player_slot":0}]}"#;
        std::fs::write(dir.path().join("opendota/matches/7.json"), body).unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let config = FixtureConfig {
            dir: dir.path().to_path_buf(),
            ..FixtureConfig::default()
        };
        let upstream = FixtureUpstream::start(config, listener).await.unwrap();
        let budget = Arc::new(Recorded::default());
        // Short, so a hang costs the test a fraction of a second.
        let client =
            UpstreamClient::with_timeout(budget, InFlight::new(4, 60), Duration::from_millis(300))
                .unwrap();
        let opendota = OpenDota::new(client, &upstream.opendota_url(), None);
        let faults = format!("http://{}/_faults", upstream.addr());
        let id = crate::domain::MatchId::new(7).unwrap();
        let cases = [
            (r#"{"kind":"truncate"}"#, "truncated JSON"),
            (r#"{"kind":"html"}"#, "HTML page"),
            (r#"{"kind":"reset"}"#, "could not reach"),
            (r#"{"kind":"hang","ms":2000}"#, "timed out"),
            (r#"{"status":503}"#, "HTTP 503"),
            (
                r#"{"status":200,"body":"{\"error\":\"oops\"}"}"#,
                "lacks the requested match_id",
            ),
        ];
        for (fault, reason) in cases {
            let mut spec: serde_json::Value = serde_json::from_str(fault).unwrap();
            spec["path"] = "/opendota/matches/7".into();
            spec["count"] = 1.into();
            let added = reqwest::Client::new()
                .post(&faults)
                .json(&spec)
                .send()
                .await;
            assert_eq!(added.unwrap().status(), 201, "{fault}");
            let err = opendota.get_match(id).await.err().expect(fault);
            assert_eq!(err.disposition(), Disposition::Retry, "{fault}: {err}");
            assert!(err.to_string().contains(reason), "{fault}: {err}");
        }
        // The faults are used up: the next answer is the file.
        assert_eq!(opendota.get_match(id).await.unwrap().raw, body.as_bytes());

        // OpenDota's explicit verdict on an id is permanent, as a 400 and as a 200.
        for status in [400, 200] {
            let spec = serde_json::json!({"path": "/opendota/matches/7", "count": 1,
                "status": status, "body": r#"{"error":"invalid match_id"}"#});
            reqwest::Client::new()
                .post(&faults)
                .json(&spec)
                .send()
                .await
                .unwrap();
            let err = opendota.get_match(id).await.err().expect("invalid id");
            assert!(
                matches!(err, UpstreamError::InvalidId { .. }),
                "{status}: {err}"
            );
            assert_eq!(err.disposition(), Disposition::GiveUp { not_found: true });
        }
        upstream.stop().await;
    }
}
