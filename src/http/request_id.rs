//! Per-request tracing: every request runs in an `http` span (method, path, request ID), and the
//! request ID is echoed in `X-Request-Id` — the client's own when it sent a sane one, else a new
//! UUID — so a frontend report can be matched to the service's log lines.
//!
//! The router ([`super::router::serve`]) makes the ID and the span once it has the request's
//! head, runs the whole request inside the span and puts the header on the response.
//!
//! Formatting the span's three fields for the log cost a fifth of a small poll (at ~100k polls a
//! second), and almost no request logs anything. So where the binary installs
//! [`RequestSpans`], the span is made with its fields empty and the values wait in the span's
//! registry data; the first log line inside the request records them, just before the log
//! layer formats that line, so every line a request logs still carries method, path and
//! request ID. Under any other subscriber (tests) the fields are recorded at once.

use std::cell::RefCell;
use std::marker::PhantomData;

use tracing::field::{self, Empty};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Metadata, Subscriber};
use tracing_subscriber::fmt::FormattedFields;
use tracing_subscriber::fmt::format::FormatFields;
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::registry::LookupSpan;
use warp::http::header::HeaderName;
use warp::http::{HeaderMap, HeaderValue, Method};
use warp::reply::Response;

/// Header carrying the request ID both ways.
pub const HEADER: HeaderName = HeaderName::from_static("x-request-id");
/// Longest client-supplied ID that is trusted (anything else is replaced).
const MAX_CLIENT_ID: usize = 128;
/// The span's name; with this module as its target it marks a request span.
const SPAN_NAME: &str = "http";

fn sane(id: &[u8]) -> bool {
    !id.is_empty()
        && id.len() <= MAX_CLIENT_ID
        && id
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(b))
}

/// A new request ID: a v4 UUID, formatted on the stack straight into the header value (one
/// allocation per request, not three).
fn new_id() -> HeaderValue {
    let mut buf = [0u8; uuid::fmt::Hyphenated::LENGTH];
    let id = uuid::Uuid::new_v4().hyphenated().encode_lower(&mut buf);
    // A hyphenated UUID is always a valid header value.
    HeaderValue::from_str(id).unwrap_or_else(|_| HeaderValue::from_static("unknown"))
}

/// The request's ID: the client's `X-Request-Id` when it is sane, else a new UUID.
pub fn of(headers: &HeaderMap) -> HeaderValue {
    headers
        .get(&HEADER)
        .filter(|given| sane(given.as_bytes()))
        .cloned()
        .unwrap_or_else(new_id)
}

/// A request span's field values, kept until a log line needs them.
struct Fields {
    method: Method,
    path: Box<str>,
    id: HeaderValue,
}

impl Fields {
    fn id(&self) -> &str {
        // ASCII by construction (see `of`).
        self.id.to_str().unwrap_or("unknown")
    }

    /// Records the values into `span` through the current subscriber.
    fn record_in(&self, span: &tracing::Span) {
        span.record("method", field::display(&self.method));
        span.record("path", field::display(&self.path));
        span.record("request_id", field::display(self.id()));
    }

    /// Records the values into a request span's fields as the log layer formatted them.
    fn add_to<N>(
        &self,
        meta: &'static Metadata<'static>,
        format: &N,
        formatted: &mut FormattedFields<N>,
    ) where
        N: for<'w> FormatFields<'w> + 'static,
    {
        let fields = meta.fields();
        let (Some(method), Some(path), Some(id)) = (
            fields.field("method"),
            fields.field("path"),
            fields.field("request_id"),
        ) else {
            return;
        };
        let (m, p, i) = (
            field::display(&self.method),
            field::display(&*self.path),
            field::display(self.id()),
        );
        let values = [
            (&method, Some(&m as &dyn field::Value)),
            (&path, Some(&p as &dyn field::Value)),
            (&id, Some(&i as &dyn field::Value)),
        ];
        let set = fields.value_set(&values);
        // A failed write leaves the line without these fields; it never fails a request.
        let _ = format.add_fields(formatted, &Record::new(&set));
    }
}

thread_local! {
    /// Handed from [`span`] to [`RequestSpans::on_new_span`], which runs inside the span's
    /// creation on the same thread.
    static HANDOFF: RefCell<Option<Fields>> = const { RefCell::new(None) };
}

/// The `http` span a request runs in.
pub fn span(method: &Method, path: &str, id: &HeaderValue) -> tracing::Span {
    let fields = Fields {
        method: method.clone(),
        path: path.into(),
        id: id.clone(),
    };
    HANDOFF.with(|h| *h.borrow_mut() = Some(fields));
    let span = tracing::info_span!("http", method = Empty, path = Empty, request_id = Empty);
    // Still here: no `RequestSpans` layer took them, so the span gets them now.
    if let Some(fields) = HANDOFF.with(|h| h.borrow_mut().take())
        && !span.is_disabled()
    {
        fields.record_in(&span);
    }
    span
}

/// Puts the ID on the response and logs its status inside the request's span: a 5xx at error,
/// a 4xx at warn (as warp's `trace` wrapper did before the router made its own span), anything
/// else at debug.
pub fn answered(mut resp: Response, id: HeaderValue) -> Response {
    resp.headers_mut().insert(HEADER, id);
    let status = resp.status();
    if status.is_server_error() {
        tracing::error!(status = status.as_u16(), "unable to process request");
    } else if status.is_client_error() {
        tracing::warn!(status = status.as_u16(), "unable to serve request");
    } else {
        tracing::debug!(status = status.as_u16(), "answered");
    }
    resp
}

/// Whether [`answered`] logs nothing for a successful request (its `debug` line is off), so a
/// request answered at once from memory needs no span: nothing inside it logs.
pub fn quiet() -> bool {
    !tracing::enabled!(tracing::Level::DEBUG)
}

fn is_request_span(meta: &Metadata<'_>) -> bool {
    meta.name() == SPAN_NAME && meta.target() == module_path!()
}

/// The layer that defers a request span's fields to its first log line. `N` is the field
/// format of the log layer installed after it (`DefaultFields` for text, `JsonFields` for
/// JSON), whose formatted fields it completes.
pub struct RequestSpans<N> {
    format: N,
    _fields: PhantomData<fn(N)>,
}

impl<N> RequestSpans<N> {
    /// The layer for a log layer whose field format is `format`.
    pub fn new(format: N) -> Self {
        Self {
            format,
            _fields: PhantomData,
        }
    }
}

impl<S, N> Layer<S> for RequestSpans<N>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'w> FormatFields<'w> + Send + Sync + 'static,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        if !is_request_span(attrs.metadata()) {
            return;
        }
        if let Some(fields) = HANDOFF.with(|h| h.borrow_mut().take())
            && let Some(span) = ctx.span(id)
        {
            span.extensions_mut().insert(fields);
        }
    }

    /// Runs before the log layer formats `event` (this layer is installed before it).
    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let Some(scope) = ctx.event_scope(event) else {
            return;
        };
        let Some(span) = scope
            .into_iter()
            .find(|span| is_request_span(span.metadata()))
        else {
            return;
        };
        let mut extensions = span.extensions_mut();
        let Some(fields) = extensions.remove::<Fields>() else {
            return;
        };
        if let Some(formatted) = extensions.get_mut::<FormattedFields<N>>() {
            fields.add_to(span.metadata(), &self.format, formatted);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_id_is_a_hyphenated_uuid() {
        let id = new_id();
        let text = id.to_str().unwrap();
        assert_eq!(text.len(), 36);
        assert!(uuid::Uuid::parse_str(text).is_ok());
    }

    #[test]
    fn only_sane_client_ids_are_kept() {
        assert!(sane(b"abc-123_x.y:z"));
        assert!(!sane(b""));
        assert!(!sane(b"has space"));
        assert!(!sane("a".repeat(200).as_bytes()));
        assert!(!sane("caf\u{e9}".as_bytes()));
    }

    use crate::test_log::Captured;

    /// Two requests, one of which logs twice: what the log shows of each.
    fn log_two_requests(subscriber: impl Subscriber + Send + Sync + 'static) {
        tracing::subscriber::with_default(subscriber, || {
            let id = HeaderValue::from_static("frontend-42");
            let quiet = span(&Method::GET, "/api/players/1/data", &new_id());
            quiet.in_scope(|| tracing::debug!("not shown at info"));
            let span = span(&Method::POST, "/api/matches/7", &id);
            span.in_scope(|| {
                tracing::warn!("first");
                tracing::error!("second");
            });
        });
    }

    #[test]
    fn every_line_a_request_logs_carries_its_fields_in_text_and_json() {
        use tracing_subscriber::fmt::format::{DefaultFields, JsonFields};
        use tracing_subscriber::layer::SubscriberExt;

        let text = Captured::default();
        let writer = text.clone();
        log_two_requests(
            tracing_subscriber::registry()
                .with(tracing_subscriber::filter::LevelFilter::INFO)
                .with(RequestSpans::new(DefaultFields::new()))
                .with(
                    tracing_subscriber::fmt::layer()
                        .with_ansi(false)
                        .with_writer(move || writer.clone()),
                ),
        );
        let out = text.text();
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 2, "{lines:?}");
        for line in &lines {
            assert!(
                line.contains("http{method=POST path=/api/matches/7 request_id=frontend-42}"),
                "{line}"
            );
        }

        let json = Captured::default();
        let writer = json.clone();
        log_two_requests(
            tracing_subscriber::registry()
                .with(tracing_subscriber::filter::LevelFilter::INFO)
                .with(RequestSpans::new(JsonFields::new()))
                .with(
                    tracing_subscriber::fmt::layer()
                        .json()
                        .with_writer(move || writer.clone()),
                ),
        );
        let lines: Vec<serde_json::Value> = json
            .text()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 2, "{lines:?}");
        for line in &lines {
            assert_eq!(line["span"]["name"], "http", "{line}");
            assert_eq!(line["span"]["method"], "POST", "{line}");
            assert_eq!(line["span"]["path"], "/api/matches/7", "{line}");
            assert_eq!(line["span"]["request_id"], "frontend-42", "{line}");
        }
    }

    #[test]
    fn client_and_server_errors_are_logged_with_the_request() {
        use tracing_subscriber::fmt::format::DefaultFields;
        use tracing_subscriber::layer::SubscriberExt;

        let text = Captured::default();
        let writer = text.clone();
        let subscriber = tracing_subscriber::registry()
            .with(tracing_subscriber::filter::LevelFilter::INFO)
            .with(RequestSpans::new(DefaultFields::new()))
            .with(
                tracing_subscriber::fmt::layer()
                    .with_ansi(false)
                    .with_writer(move || writer.clone()),
            );
        tracing::subscriber::with_default(subscriber, || {
            for (path, status) in [("/ok", 200), ("/gone", 404), ("/broken", 503)] {
                let id = HeaderValue::from_static("r-1");
                let span = span(&Method::GET, path, &id);
                let _in = span.enter();
                let mut resp = Response::new(Default::default());
                *resp.status_mut() = warp::http::StatusCode::from_u16(status).unwrap();
                assert_eq!(answered(resp, id).headers()[&HEADER], "r-1");
            }
        });
        let out = text.text();
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 2, "{out}");
        assert!(
            lines[0].contains(" WARN ") && lines[0].contains("path=/gone"),
            "{out}"
        );
        assert!(lines[0].contains("status=404"), "{out}");
        assert!(
            lines[1].contains("ERROR") && lines[1].contains("path=/broken"),
            "{out}"
        );
    }

    #[test]
    fn without_the_layer_the_fields_are_recorded_at_once() {
        use tracing_subscriber::layer::SubscriberExt;

        let text = Captured::default();
        let writer = text.clone();
        log_two_requests(
            tracing_subscriber::registry()
                .with(tracing_subscriber::filter::LevelFilter::INFO)
                .with(
                    tracing_subscriber::fmt::layer()
                        .with_ansi(false)
                        .with_writer(move || writer.clone()),
                ),
        );
        let out = text.text();
        assert_eq!(out.lines().count(), 2, "{out}");
        assert!(
            out.lines().all(|l| l.contains("request_id=frontend-42")),
            "{out}"
        );
    }

    #[test]
    fn a_sane_client_id_is_echoed_and_any_other_replaced() {
        let mut headers = HeaderMap::new();
        assert_eq!(of(&headers).len(), 36);
        headers.insert(HEADER, HeaderValue::from_static("frontend-42"));
        assert_eq!(of(&headers), "frontend-42");
        headers.insert(HEADER, HeaderValue::from_static("two words"));
        assert_eq!(of(&headers).len(), 36);
    }
}
