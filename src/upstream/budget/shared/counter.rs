//! The JetStream counters behind the shared budget: stream [`BUDGET_STREAM`] with
//! `allow_msg_counter`, one subject per (service, identity, window). An increment is a publish
//! with `Nats-Incr: <delta>`; the server adds it to the subject's total atomically and returns the
//! new total in the ack (`PublishAck.value`). Each subject keeps only its latest message (the
//! total), and the stream's `max_age` of [`MAX_AGE`] (a day and two hours) removes a window's
//! counter once the window is past: nats-server refuses per-message TTLs on counter streams
//! ("counter stream cannot use message TTLs", 2.15), so a stream-wide age it is, long enough for
//! a day counter touched only at midnight. Minute counters linger as long, about 1,560 subjects
//! of ~100 bytes per service and identity. [`SharedBudget`](super::SharedBudget) is the only
//! caller.

use std::time::Duration;

use async_nats::HeaderMap;
use async_nats::jetstream::{self, stream};
use bytes::Bytes;

use crate::bus::subjects::{BUDGET_STREAM, BUDGET_SUBJECTS};

/// Longest a counter operation may take before the counters count as unreachable. A healthy
/// increment takes about a millisecond (3 nodes on loopback); the first write after a stream
/// leader dies takes 4-8 s, during which falling back to the local share is the right thing.
pub const OP_TIMEOUT: Duration = Duration::from_secs(2);

/// How long a counter outlives its last change: a UTC day plus two hours, so a day counter last
/// changed just after midnight still holds at the day's end (and a clock a little off too).
pub const MAX_AGE: Duration = Duration::from_secs(26 * 3600);
/// Bound on the stream's size. What it holds at MAX_AGE is ~1 MB per service and identity, so
/// this is never reached in practice; if it were, the oldest (past) windows go first.
const MAX_BYTES: i64 = 64 * 1024 * 1024;

/// A counter operation failed or took longer than [`OP_TIMEOUT`]: the caller falls back.
#[derive(Debug, thiserror::Error)]
pub enum CounterError {
    #[error("counter operation timed out after {0:?}")]
    TimedOut(Duration),
    #[error("publishing to the counter: {0}")]
    Publish(#[source] async_nats::jetstream::context::PublishError),
    #[error("reading the counter: {0}")]
    Read(#[source] async_nats::jetstream::stream::LastRawMessageError),
    #[error("the counter's value {0:?} is not an integer")]
    BadValue(String),
}

/// Creating or reaching the counter stream failed at start-up.
#[derive(Debug, thiserror::Error)]
#[error("creating stream {BUDGET_STREAM}: {0}")]
pub struct StreamSetupError(#[source] async_nats::jetstream::context::CreateStreamError);

/// Handle on the counter stream.
#[derive(Clone)]
pub struct Counters {
    js: jetstream::Context,
    stream: stream::Stream,
}

/// A counter message's body as the server writes it: `{"val":"<total>"}`.
#[derive(serde::Deserialize)]
struct CounterBody {
    val: String,
}

impl Counters {
    /// Creates [`BUDGET_STREAM`] with `replicas` copies, or reuses it as it is (another
    /// instance made it; its replica count wins).
    pub async fn open(js: jetstream::Context, replicas: usize) -> Result<Self, StreamSetupError> {
        let stream = crate::bus::setup::with_retries("create the budget stream", || {
            js.get_or_create_stream(stream::Config {
                name: BUDGET_STREAM.to_string(),
                description: Some("Shared upstream rate budget: one counter per window".into()),
                subjects: vec![BUDGET_SUBJECTS.to_string()],
                allow_message_counter: true,
                // Only the total matters; older increments are dropped as new ones land.
                max_messages_per_subject: 1,
                max_age: MAX_AGE,
                max_bytes: MAX_BYTES,
                num_replicas: replicas.max(1),
                storage: stream::StorageType::File,
                ..Default::default()
            })
        })
        .await
        .map_err(StreamSetupError)?;
        crate::bus::setup::wait_for_leader(&js, BUDGET_STREAM).await;
        Ok(Self { js, stream })
    }

    /// Adds `delta` to the counter on `subject` and returns the new total.
    pub async fn add(&self, subject: &str, delta: i64) -> Result<i64, CounterError> {
        let mut headers = HeaderMap::new();
        headers.insert("Nats-Incr", delta.to_string().as_str());
        let publish = async {
            let ack = self
                .js
                .publish_with_headers(subject.to_string(), headers, Bytes::new())
                .await
                .map_err(CounterError::Publish)?
                .await
                .map_err(CounterError::Publish)?;
            let value = ack.value.unwrap_or_default();
            value
                .trim()
                .parse::<i64>()
                .map_err(|_| CounterError::BadValue(value))
        };
        tokio::time::timeout(OP_TIMEOUT, publish)
            .await
            .map_err(|_| CounterError::TimedOut(OP_TIMEOUT))?
    }

    /// The counter's total on `subject`; 0 for a window nobody has counted in (or long gone).
    pub async fn read(&self, subject: &str) -> Result<i64, CounterError> {
        use async_nats::jetstream::stream::LastRawMessageErrorKind;
        let read = async {
            match self.stream.get_last_raw_message_by_subject(subject).await {
                Ok(message) => {
                    let body: CounterBody =
                        serde_json::from_slice(&message.payload).map_err(|_| {
                            CounterError::BadValue(
                                String::from_utf8_lossy(&message.payload).into_owned(),
                            )
                        })?;
                    body.val
                        .trim()
                        .parse::<i64>()
                        .map_err(|_| CounterError::BadValue(body.val))
                }
                Err(err) if err.kind() == LastRawMessageErrorKind::NoMessageFound => Ok(0),
                Err(err) => Err(CounterError::Read(err)),
            }
        };
        tokio::time::timeout(OP_TIMEOUT, read)
            .await
            .map_err(|_| CounterError::TimedOut(OP_TIMEOUT))?
    }
}
