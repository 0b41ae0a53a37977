//! The Server-Sent Event streams: `GET /api/events` and `GET /api/queue/events`.
//!
//! `GET /api/events` relays the core-NATS result events (`dota.ready.>`, `dota.failed.>`) to
//! HTTP clients as Server-Sent Events, so a browser can follow the pipeline without a NATS
//! client. Each SSE event is named `ready` or `failed` and carries the event JSON exactly as
//! published (see [`crate::bus::wire`]) and, as its `id:`, the event's CloudEvents `ce-id`
//! (the same ID the NATS headers, `DOTA_EVENTS` and webhooks carry; the type is
//! `com.dota-orchestrator.<kind>.<event name>`). `Last-Event-ID` is not replayed: a consumer that
//! must not miss events uses a durable consumer on `DOTA_EVENTS` or a webhook. `?kind=match,player` keeps only those
//! resource kinds; unknown kinds or query keys are a 400.
//!
//! Every connection owns two NATS subscriptions and one forwarding task that drains them into a
//! bounded channel of [`EVENT_BUFFER`] events. A client that reads slower than events arrive
//! loses events rather than growing memory: the forwarder counts what it dropped and, once there
//! is room again, sends a `lagged` event `{"dropped": n}`.
//!
//! `GET /api/queue/events` carries the queue status on every change, at most once a second
//! (`read::live::status_changes`), as `status` events.
//!
//! Every stream takes a slot of the server's one stream cap (`http::streams`, shared with the
//! WebSocket; 503 beyond it).

use std::collections::BTreeSet;
use std::convert::Infallible;
use std::time::Duration;

use futures::StreamExt;
use tokio::sync::{OwnedSemaphorePermit, mpsc, watch};
use warp::reply::{Reply, Response};
use warp::sse::Event;

use crate::bus::results;
use crate::domain::ResourceKind;
use crate::http::ApiState;
use crate::http::openapi::responses::{BadRequest, Unavailable};
use crate::http::reply::ApiError;
use crate::http::router::Request;
use crate::http::streams::Streams;
use crate::read::live::status_changes;

/// Events buffered per connection between NATS and the client's socket. A page renders a
/// handful of events per second; 256 absorbs a burst (a team import finishing dozens of players
/// at once) while keeping a stalled client's cost around 256 × ~200 bytes.
pub const EVENT_BUFFER: usize = 256;
/// Silence after which a keep-alive comment is sent, so proxies keep the connection open and a
/// vanished client is noticed on the next write.
pub const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// Whether a relayed event announces a stored resource or a permanent failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Ready,
    Failed,
}

impl Outcome {
    fn as_str(self) -> &'static str {
        match self {
            Outcome::Ready => "ready",
            Outcome::Failed => "failed",
        }
    }
}

/// One frame for the client.
#[derive(Debug)]
enum Frame {
    Relayed {
        outcome: Outcome,
        /// The event's `ce-id`, sent as the SSE `id`.
        id: Option<String>,
        data: String,
    },
    /// `n` events were dropped because the client did not keep up.
    Lagged(u64),
}

impl Frame {
    fn into_event(self) -> Event {
        match self {
            Frame::Relayed { outcome, id, data } => {
                let event = Event::default().event(outcome.as_str()).data(data);
                match id {
                    Some(id) => event.id(id),
                    None => event,
                }
            }
            Frame::Lagged(n) => Event::default()
                .event("lagged")
                .data(format!("{{\"dropped\":{n}}}")),
        }
    }
}

/// The kinds a client asked for; `None` means all of them.
#[derive(Debug, Clone, PartialEq, Eq)]
struct KindFilter(Option<BTreeSet<ResourceKind>>);

impl KindFilter {
    /// Accepts only `kind=<k>[,<k>...]` (repeatable); anything else is a 400.
    fn parse(query: &[(String, String)]) -> Result<Self, ApiError> {
        let mut kinds: Option<BTreeSet<ResourceKind>> = None;
        for (key, value) in query {
            if key != "kind" {
                return Err(ApiError::BadRequest(format!(
                    "unknown query parameter {:?}; only \"kind\" is accepted",
                    truncate(key)
                )));
            }
            let set = kinds.get_or_insert_with(BTreeSet::new);
            for raw in value.split(',') {
                let kind = ResourceKind::ALL
                    .into_iter()
                    .find(|k| k.as_str() == raw)
                    .ok_or_else(|| {
                        ApiError::BadRequest(format!(
                            "unknown kind {:?}; expected some of match, player, player-stats, team, league",
                            truncate(raw)
                        ))
                    })?;
                set.insert(kind);
            }
        }
        Ok(KindFilter(kinds))
    }

    fn admits(&self, kind: ResourceKind) -> bool {
        self.0.as_ref().is_none_or(|kinds| kinds.contains(&kind))
    }
}

/// Client input echoed in an error, cut short so an error body stays small.
fn truncate(raw: &str) -> String {
    raw.chars().take(40).collect()
}

/// Reads `dota.<ready|failed>.<kind>.<id>`; `None` for any other subject.
fn parse_subject(subject: &str) -> Option<(Outcome, ResourceKind)> {
    let mut parts = subject.splitn(4, '.');
    if parts.next() != Some("dota") {
        return None;
    }
    let outcome = match parts.next()? {
        "ready" => Outcome::Ready,
        "failed" => Outcome::Failed,
        _ => return None,
    };
    let kind = parts.next()?;
    let kind = ResourceKind::ALL.into_iter().find(|k| k.as_str() == kind)?;
    parts.next()?;
    Some((outcome, kind))
}

#[utoipa::path(
    get,
    path = "/api/events",
    tag = "events",
    summary = "Server-sent events as resources become ready or fail",
    description = "A `text/event-stream`. Each event is named `ready` (data: a `ReadyEvent` \
        JSON), `failed` (data: a `FailedEvent` JSON) or `lagged` (data: `{\"dropped\": n}`, \
        events this client lost because it read too slowly).",
    params(("kind" = Option<Vec<ResourceKind>>, Query, style = Form, explode = false,
        description = "Only these kinds (comma-separated); all kinds when absent.")),
    responses(
        (status = 200, description = "The event stream; it stays open.", body = String,
            content_type = "text/event-stream",
            example = "event: ready\ndata: {\"fetchedAt\":\"2026-11-29T03:00:00+00:00\",\"id\":\"8054301932\",\"kind\":\"match\",\"signature\":\"match:8054301932\"}\n\n"),
        BadRequest, Unavailable
    )
)]
pub async fn get_events(
    state: ApiState,
    req: Request,
    streams: Streams,
) -> Result<Response, ApiError> {
    let query = req.query()?;
    let filter = KindFilter::parse(query)?;
    let permit = streams.acquire()?;
    // Subscribe before answering, so every event published after the client sees the
    // response headers reaches it.
    let nats = &state.pipeline.nats;
    let subscribe_error = |e: async_nats::SubscribeError| {
        ApiError::Unavailable(format!("could not subscribe to events: {e}"))
    };
    let events = results::follow(nats).await.map_err(subscribe_error)?;
    let (tx, mut rx) = mpsc::channel(EVENT_BUFFER);
    tokio::spawn(forward(events, filter, tx, state.closing.clone(), permit));
    let frames = futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
        .map(|frame: Frame| Ok::<_, Infallible>(frame.into_event()));
    let stream = warp::sse::keep_alive().interval(KEEP_ALIVE).stream(frames);
    Ok(warp::sse::reply(stream).into_response())
}

/// Moves events from NATS to one client until the client goes away, the subscriptions end or
/// the server starts closing (graceful shutdown waits for open responses, so a stream that
/// never ended would hold up every stop). Never waits on the client: a full buffer drops the
/// event.
async fn forward(
    mut messages: impl futures::Stream<Item = async_nats::Message> + Unpin,
    filter: KindFilter,
    tx: mpsc::Sender<Frame>,
    mut closing: watch::Receiver<bool>,
    _permit: OwnedSemaphorePermit,
) {
    let mut dropped: u64 = 0;
    loop {
        let message = tokio::select! {
            message = messages.next() => message,
            _ = tx.closed() => return,
            _ = closing.wait_for(|closing| *closing) => return,
        };
        let Some(message) = message else { return };
        let Some((outcome, kind)) = parse_subject(&message.subject) else {
            tracing::debug!(subject = %message.subject, "ignoring event on an unexpected subject");
            continue;
        };
        if !filter.admits(kind) {
            continue;
        }
        let Ok(data) = String::from_utf8(message.payload.to_vec()) else {
            tracing::warn!(subject = %message.subject, "ignoring event that is not UTF-8");
            continue;
        };
        if dropped > 0 {
            match tx.try_send(Frame::Lagged(dropped)) {
                Ok(()) => dropped = 0,
                Err(mpsc::error::TrySendError::Full(_)) => {
                    dropped += 1;
                    continue;
                }
                Err(mpsc::error::TrySendError::Closed(_)) => return,
            }
        }
        let id = message
            .headers
            .as_ref()
            .and_then(crate::events::Envelope::from_headers)
            .map(|e| e.id);
        match tx.try_send(Frame::Relayed { outcome, id, data }) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => dropped += 1,
            Err(mpsc::error::TrySendError::Closed(_)) => return,
        }
    }
}

#[utoipa::path(
    get,
    path = "/api/queue/events",
    tag = "events",
    summary = "Server-sent queue status, on every change",
    description = "A `text/event-stream` of `status` events, each carrying the body \
        `/api/queue/status` would answer: one at once, then one whenever a service's queue, \
        work or budget changes, at most one a second.",
    responses(
        (status = 200, description = "The status stream; it stays open.", body = String,
            content_type = "text/event-stream",
            example = "event: status\ndata: {\"asOf\":\"2026-11-30T03:00:00.000Z\",\"services\":{},\"timestamp\":\"2026-11-30T03:00:00.100+00:00\"}\n\n"),
        Unavailable
    )
)]
pub async fn get_queue_events(
    state: ApiState,
    req: Request,
    streams: Streams,
) -> Result<Response, ApiError> {
    if !req.query()?.is_empty() {
        return Err(ApiError::BadRequest(
            "this stream takes no query parameters".to_string(),
        ));
    }
    let permit = streams.acquire()?;
    let frames =
        status_changes(state.queue_status.clone(), state.closing.clone()).map(move |body| {
            let _held = &permit;
            Ok::<_, Infallible>(Event::default().event("status").data(body))
        });
    let stream = warp::sse::keep_alive().interval(KEEP_ALIVE).stream(frames);
    Ok(warp::sse::reply(stream).into_response())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use tokio::sync::Semaphore;

    use super::*;

    fn q(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn kind_filter_accepts_known_kinds_and_rejects_the_rest() {
        let all = KindFilter::parse(&[]).unwrap();
        assert!(ResourceKind::ALL.into_iter().all(|k| all.admits(k)));

        let some = KindFilter::parse(&q(&[("kind", "match,player-stats")])).unwrap();
        assert!(some.admits(ResourceKind::Match));
        assert!(some.admits(ResourceKind::PlayerStats));
        assert!(!some.admits(ResourceKind::Player));

        for bad in [
            q(&[("kind", "bogus")]),
            q(&[("kind", "match,")]),
            q(&[("kind", "")]),
            q(&[("color", "blue")]),
        ] {
            assert!(
                matches!(KindFilter::parse(&bad), Err(ApiError::BadRequest(_))),
                "{bad:?}"
            );
        }
    }

    fn message(subject: &str, payload: &str) -> async_nats::Message {
        async_nats::Message {
            subject: subject.into(),
            reply: None,
            payload: payload.to_string().into(),
            headers: None,
            status: None,
            description: None,
            length: payload.len(),
        }
    }

    fn data(frame: Option<Frame>) -> String {
        match frame {
            Some(Frame::Relayed { data, .. }) => data,
            other => panic!("expected a relayed event, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn a_slow_client_loses_events_and_is_told_how_many() {
        let (reached_tx, reached_rx) = tokio::sync::oneshot::channel::<()>();
        let (go_tx, go_rx) = tokio::sync::oneshot::channel::<()>();
        let burst = (1..=4).map(|i| message(&format!("dota.ready.match.{i}"), &i.to_string()));
        // After the burst the source waits until the test has drained the buffer.
        let later = futures::stream::once(async move {
            let _ = reached_tx.send(());
            let _ = go_rx.await;
            message("dota.failed.match.5", "5")
        });
        let messages = Box::pin(futures::stream::iter(burst).chain(later));
        let (tx, mut rx) = mpsc::channel(2);
        let (_stop_tx, stop_rx) = watch::channel(false);
        let permit = Arc::new(Semaphore::new(1)).try_acquire_owned().unwrap();
        let task = tokio::spawn(forward(messages, KindFilter(None), tx, stop_rx, permit));

        reached_rx.await.unwrap();
        assert_eq!(data(rx.recv().await), "1");
        assert_eq!(data(rx.recv().await), "2");
        go_tx.send(()).unwrap();
        assert!(matches!(rx.recv().await, Some(Frame::Lagged(2))));
        match rx.recv().await {
            Some(Frame::Relayed { outcome, data, .. }) => {
                assert_eq!(outcome, Outcome::Failed);
                assert_eq!(data, "5");
            }
            other => panic!("expected failed event 5, got {other:?}"),
        }
        // The source ended, so the stream ends too.
        assert!(rx.recv().await.is_none());
        task.await.unwrap();
    }

    #[tokio::test]
    async fn forwarding_stops_when_the_client_goes_away() {
        let messages = Box::pin(futures::stream::pending::<async_nats::Message>());
        let (tx, rx) = mpsc::channel(2);
        let (_stop_tx, stop_rx) = watch::channel(false);
        let slots = Arc::new(Semaphore::new(1));
        let permit = slots.clone().try_acquire_owned().unwrap();
        let task = tokio::spawn(forward(messages, KindFilter(None), tx, stop_rx, permit));
        drop(rx);
        task.await.unwrap();
        assert_eq!(slots.available_permits(), 1, "the stream slot is released");
    }

    #[test]
    fn subjects_are_read_back_into_outcome_and_kind() {
        assert_eq!(
            parse_subject("dota.ready.match.7"),
            Some((Outcome::Ready, ResourceKind::Match))
        );
        assert_eq!(
            parse_subject("dota.failed.player-stats.9"),
            Some((Outcome::Failed, ResourceKind::PlayerStats))
        );
        assert_eq!(
            parse_subject("dota.ready.team.1.2"),
            Some((Outcome::Ready, ResourceKind::Team))
        );
        assert_eq!(parse_subject("dota.ready.match"), None);
        assert_eq!(parse_subject("dota.jobs.bulk.match"), None);
        assert_eq!(parse_subject("dota.ready.hero.1"), None);
    }
}
