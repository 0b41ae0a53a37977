//! HTTP surface of the fixture upstream: the warp filters, the shared request state, and the
//! order in which one upstream request is answered. Built by [`super::FixtureUpstream::start`].
//!
//! Routes: `GET /opendota/*` and `GET /dotabuff/*` (see [`super::files`]), `GET /steam/*` and
//! `POST /stratz/graphql` (paged from files, see [`super::paged`]), `POST`/`DELETE /_faults`,
//! `GET /_stats`, `POST /_reset`; anything else is a 404 JSON body.
//!
//! An upstream request is answered by the first of these that applies:
//! 1. an injected fault with status 429 (consumes no rate budget, like a real 429);
//! 2. `/opendota` only: an exhausted minute or day budget → 429 `{"error":"rate limit exceeded"}`
//!    (consumes nothing, and leaves a pending fault in place);
//! 3. `/opendota` only: one unit of both budgets is consumed;
//! 4. any other injected fault (a status, a truncated file, an HTML bot check, a reset, a hang:
//!    see [`super::faults`]);
//! 5. a random 500 with probability `fail_rate`;
//! 6. the file on disk, or 404 `{"error":"Not Found"}`.
//!
//! Steps 1–4 run under one lock so concurrent requests see a consistent budget and fault table.
//! Every upstream answer is counted in the stats, then delayed by the configured latency.
//! `/opendota` answers carry `X-Rate-Limit-Remaining-Minute`/`-Day` for each configured limit;
//! an unlimited window's header is omitted. `/stratz` answers carry STRATZ's
//! `X-RateLimit-Remaining-{Second,Minute,Hour,Day}` (counted, never refused).

use std::convert::Infallible;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use warp::http::header::{CONTENT_TYPE, HeaderValue};
use warp::http::{HeaderName, StatusCode};
use warp::path::Tail;
use warp::reply::Response;
use warp::{Filter, Reply};

use super::FixtureConfig;
use super::faults::{FaultReply, FaultTable};
use super::files::{Upstream, UpstreamRequest};
use super::limits::{Admission, RateWindows, Remaining, unix_now};
use super::paged::{self, StratzAsk, StratzCounts};
use super::stats::Stats;
use crate::clock::Clock;

/// Largest accepted `POST /_faults` body; a fault spec is a few hundred bytes, custom bodies
/// (e.g. an HTML error page) a few KiB.
const MAX_FAULT_BODY_BYTES: u64 = 256 * 1024;

const REMAINING_MINUTE: HeaderName = HeaderName::from_static("x-rate-limit-remaining-minute");
const REMAINING_DAY: HeaderName = HeaderName::from_static("x-rate-limit-remaining-day");
const JSON: &str = "application/json";
const HTML: &str = "text/html; charset=utf-8";
/// What a CDN's bot check answers in place of the resource, with status 200.
const BOT_CHECK_PAGE: &str = "<!DOCTYPE html><html lang=\"en-US\"><head><title>Just a moment...</title></head>\
<body><h1>Checking your browser before accessing the site.</h1>\
<noscript>Enable JavaScript and cookies to continue</noscript></body></html>";

/// State shared by all connections. Locks are never held across an await.
#[derive(Debug)]
pub(crate) struct Shared {
    dir: PathBuf,
    latency: Duration,
    fail_rate: f64,
    /// What "now" is for the rate windows.
    clock: Clock,
    /// Faults and rate windows, decided together (steps 1–4 of the module docs).
    gate: Mutex<Gate>,
    stats: Mutex<Stats>,
    stratz: Mutex<StratzCounts>,
}

/// How a request that reaches its file is answered.
enum Serve {
    /// The file as it is (OpenDota, Dotabuff).
    File,
    /// A page of a Steam file.
    Steam,
    /// A page of a STRATZ file: what the body asked, and whether a token came with it.
    Stratz {
        ask: Option<StratzAsk>,
        authorized: bool,
    },
}

#[derive(Debug)]
struct Gate {
    faults: FaultTable,
    windows: RateWindows,
}

/// What [`Shared::decide`] settled before any file is read.
enum Action {
    /// Answer this status; `None` body = default `{"error":"<reason>"}`.
    Reply(FaultReply),
    RateLimited,
    ServeFile,
}

impl Shared {
    pub(crate) fn new(config: &FixtureConfig) -> Self {
        Self {
            dir: config.dir.clone(),
            latency: config.latency,
            fail_rate: config.fail_rate,
            clock: config.clock.clone(),
            gate: Mutex::new(Gate {
                faults: FaultTable::default(),
                windows: RateWindows::new(config.rate_limit_per_min, config.daily_limit),
            }),
            stats: Mutex::new(Stats::default()),
            stratz: Mutex::new(StratzCounts::default()),
        }
    }

    /// Steps 1–5 of the module docs. Returns the action and, for `/opendota`, the budget left.
    fn decide(&self, req: &UpstreamRequest) -> (Action, Option<Remaining>) {
        let now = unix_now(&self.clock);
        let limited = req.upstream == Upstream::OpenDota;
        let mut gate = lock(&self.gate);
        let fault = gate.faults.find(&req.fault_keys());
        if let Some((index, reply)) = &fault
            && reply.is_rate_limit()
        {
            gate.faults.consume(*index);
            let remaining = limited.then(|| gate.windows.remaining(now));
            return (Action::Reply(reply.clone()), remaining);
        }
        let remaining = if limited {
            match gate.windows.admit(now) {
                Admission::Admitted(r) => Some(r),
                Admission::Refused(r) => return (Action::RateLimited, Some(r)),
            }
        } else {
            None
        };
        if let Some((index, reply)) = fault {
            gate.faults.consume(index);
            return (Action::Reply(reply), remaining);
        }
        drop(gate);
        if self.fail_rate > 0.0 && rand::random_bool(self.fail_rate) {
            let reply = FaultReply::Status {
                status: StatusCode::INTERNAL_SERVER_ERROR,
                body: None,
            };
            return (Action::Reply(reply), remaining);
        }
        (Action::ServeFile, remaining)
    }
}

/// A poisoned lock only means another request panicked mid-update; the counters and tables
/// stay usable, and a test fixture must keep answering.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// All routes, ending in a catch-all 404 so the server never answers with warp's defaults.
pub(crate) fn routes(
    shared: Arc<Shared>,
) -> impl Filter<Extract = (Response,), Error = Infallible> + Clone + Send + Sync + 'static {
    let state = warp::any().map(move || Arc::clone(&shared));
    let query = warp::query::raw().or(warp::any().map(String::new)).unify();

    let opendota = warp::get()
        .and(warp::path("opendota"))
        .and(warp::path::tail())
        .and(query)
        .and(state.clone())
        .then(|tail: Tail, query: String, shared: Arc<Shared>| {
            answer_upstream(shared, Upstream::OpenDota, tail, query, Serve::File)
        });
    let dotabuff = warp::get()
        .and(warp::path("dotabuff"))
        .and(warp::path::tail())
        .and(query)
        .and(state.clone())
        .then(|tail: Tail, query: String, shared: Arc<Shared>| {
            answer_upstream(shared, Upstream::Dotabuff, tail, query, Serve::File)
        });
    let fault_body = warp::body::content_length_limit(MAX_FAULT_BODY_BYTES)
        .and(warp::body::bytes())
        .map(Some)
        .or(warp::any().map(|| None))
        .unify();
    let add_fault = warp::post()
        .and(warp::path!("_faults"))
        .and(fault_body)
        .and(state.clone())
        .map(add_fault);
    let clear_faults = warp::delete()
        .and(warp::path!("_faults"))
        .and(state.clone())
        .map(|shared: Arc<Shared>| {
            lock(&shared.gate).faults.clear();
            json_response(StatusCode::OK, r#"{"ok":true}"#)
        });
    let stats = warp::get()
        .and(warp::path!("_stats"))
        .and(state.clone())
        .map(
            |shared: Arc<Shared>| match serde_json::to_string(&*lock(&shared.stats)) {
                Ok(body) => json_response(StatusCode::OK, body),
                Err(e) => error_response(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
            },
        );
    let reset = warp::post()
        .and(warp::path!("_reset"))
        .and(state.clone())
        .map(|shared: Arc<Shared>| {
            lock(&shared.stats).reset();
            json_response(StatusCode::OK, r#"{"ok":true}"#)
        });
    let sources = source_routes(state);
    let not_found = warp::any().map(|| error_response(StatusCode::NOT_FOUND, "Not Found"));

    opendota
        .or(dotabuff)
        .unify()
        .or(sources)
        .unify()
        .or(add_fault)
        .unify()
        .or(clear_faults)
        .unify()
        .or(stats)
        .unify()
        .or(reset)
        .unify()
        .or(not_found)
        .unify()
}

/// `GET /steam/*` and `POST /stratz/graphql`, answered from the paged files.
fn source_routes(
    state: impl Filter<Extract = (Arc<Shared>,), Error = Infallible> + Clone + Send + Sync + 'static,
) -> impl Filter<Extract = (Response,), Error = warp::Rejection> + Clone + Send + Sync + 'static {
    let query = warp::query::raw().or(warp::any().map(String::new)).unify();
    let steam = warp::get()
        .and(warp::path("steam"))
        .and(warp::path::tail())
        .and(query)
        .and(state.clone())
        .then(|tail: Tail, query: String, shared: Arc<Shared>| {
            answer_upstream(shared, Upstream::Steam, tail, query, Serve::Steam)
        });
    let stratz = warp::post()
        .and(warp::path!("stratz" / "graphql"))
        .and(warp::header::optional::<String>("authorization"))
        .and(warp::body::content_length_limit(MAX_FAULT_BODY_BYTES))
        .and(warp::body::bytes())
        .and(state.clone())
        .then(|auth: Option<String>, body: Bytes, shared: Arc<Shared>| {
            let ask = StratzAsk::parse(&body);
            let query = ask.as_ref().map(StratzAsk::query).unwrap_or_default();
            let authorized = auth.is_some_and(|a| a.len() > "Bearer ".len());
            let serve = Serve::Stratz { ask, authorized };
            answer_stratz(shared, query, serve)
        });

    steam.or(stratz).unify()
}

fn add_fault(body: Option<Bytes>, shared: Arc<Shared>) -> Response {
    let Some(body) = body else {
        let message = format!("fault body required, at most {MAX_FAULT_BODY_BYTES} bytes");
        return error_response(StatusCode::BAD_REQUEST, &message);
    };
    match lock(&shared.gate).faults.add(&body) {
        Ok(()) => json_response(StatusCode::CREATED, r#"{"ok":true}"#),
        Err(e) => error_response(StatusCode::BAD_REQUEST, &e.to_string()),
    }
}

async fn answer_stratz(shared: Arc<Shared>, query: String, serve: Serve) -> Response {
    let mut response = answer(shared.clone(), Upstream::Stratz, "graphql", query, serve).await;
    let now = unix_now(&shared.clock);
    for (window, left) in lock(&shared.stratz).count(now) {
        if let Ok(name) = HeaderName::try_from(format!("x-ratelimit-remaining-{window}")) {
            response.headers_mut().insert(name, HeaderValue::from(left));
        }
    }
    response
}

async fn answer_upstream(
    shared: Arc<Shared>,
    upstream: Upstream,
    tail: Tail,
    query: String,
    serve: Serve,
) -> Response {
    answer(shared, upstream, tail.as_str(), query, serve).await
}

async fn answer(
    shared: Arc<Shared>,
    upstream: Upstream,
    tail: &str,
    query: String,
    serve: Serve,
) -> Response {
    let _counted = InFlight::begin(&shared);
    let req = UpstreamRequest::parse(upstream, tail, &query);
    let (action, remaining) = shared.decide(&req);
    let faulted = matches!(action, Action::Reply(_));
    let mut response = match (action, serve) {
        (Action::Reply(reply), _) => fault_response(&shared, &req, reply).await,
        (Action::RateLimited, _) => {
            error_response(StatusCode::TOO_MANY_REQUESTS, "rate limit exceeded")
        }
        (Action::ServeFile, Serve::File) => serve_file(&shared, &req, |body| body).await,
        (Action::ServeFile, Serve::Steam) => {
            paged_response(paged::steam(&shared.dir, req.tail(), req.query()).await)
        }
        (Action::ServeFile, Serve::Stratz { ask, authorized }) => {
            paged_response(paged::stratz(&shared.dir, ask, authorized).await)
        }
    };
    lock(&shared.stats).record(&req.stats_key(), response.status(), faulted);
    if let Some(remaining) = remaining {
        let headers = response.headers_mut();
        if let Some(minute) = remaining.minute {
            headers.insert(REMAINING_MINUTE, HeaderValue::from(minute));
        }
        if let Some(day) = remaining.day {
            headers.insert(REMAINING_DAY, HeaderValue::from(day));
        }
    }
    if !shared.latency.is_zero() {
        tokio::time::sleep(shared.latency).await;
    }
    response
}

fn paged_response(paged: paged::Paged) -> Response {
    let content_type = if paged.html { HTML } else { JSON };
    let mut response = with_content_type(Response::new(paged.body.into()), content_type);
    *response.status_mut() = paged.status;
    response
}

/// One request counted in progress by the stats until dropped (also when hyper drops the
/// answer's future because the client went away).
struct InFlight<'a>(&'a Shared);

impl<'a> InFlight<'a> {
    fn begin(shared: &'a Shared) -> Self {
        lock(&shared.stats).begin();
        Self(shared)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        lock(&self.0.stats).end();
    }
}

/// The file of `req` passed through `edit`, or 404 when there is none.
async fn serve_file(
    shared: &Shared,
    req: &UpstreamRequest,
    edit: impl FnOnce(Bytes) -> Bytes,
) -> Response {
    match req.load(&shared.dir).await {
        Ok(Some(body)) => with_content_type(
            Response::new(edit(body).into()),
            req.upstream.content_type(),
        ),
        Ok(None) => error_response(StatusCode::NOT_FOUND, "Not Found"),
        Err(e) => {
            tracing::warn!(path = %req.stats_key(), error = %e, "fixture file unreadable");
            error_response(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error")
        }
    }
}

async fn fault_response(shared: &Shared, req: &UpstreamRequest, reply: FaultReply) -> Response {
    match reply {
        FaultReply::Status {
            status,
            body: Some(body),
        } => {
            let mut response =
                with_content_type(Response::new(body.into()), req.upstream.content_type());
            *response.status_mut() = status;
            response
        }
        FaultReply::Status { status, body: None } => {
            let reason = status.canonical_reason().unwrap_or("Unknown Status");
            error_response(status, reason)
        }
        // A complete, well-framed answer whose content stops halfway: only parsing notices.
        FaultReply::Truncate => serve_file(shared, req, |body| body.slice(..body.len() / 2)).await,
        FaultReply::Html => with_content_type(Response::new(BOT_CHECK_PAGE.into()), HTML),
        FaultReply::Page { status, body } => {
            let mut response = with_content_type(Response::new(body.into()), HTML);
            *response.status_mut() = status;
            response
        }
        FaultReply::Reset => reset_response(),
        FaultReply::Hang(duration) => {
            tokio::time::sleep(duration).await;
            reset_response()
        }
    }
}

/// 200 headers and then a failing body: hyper aborts the connection, so the client sees the
/// connection die before any body arrives, as with a TCP reset.
fn reset_response() -> Response {
    let cut = std::io::Error::new(
        std::io::ErrorKind::ConnectionReset,
        "fault: connection reset",
    );
    warp::reply::stream(futures::stream::iter([Err::<Bytes, _>(cut)])).into_response()
}

/// `{"error": message}`, the error shape of OpenDota, used for every error of the fixture.
fn error_response(status: StatusCode, message: &str) -> Response {
    json_response(status, serde_json::json!({ "error": message }).to_string())
}

fn json_response(status: StatusCode, body: impl Into<String>) -> Response {
    let mut response = with_content_type(Response::new(body.into().into()), JSON);
    *response.status_mut() = status;
    response
}

fn with_content_type(mut response: Response, content_type: &'static str) -> Response {
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}
