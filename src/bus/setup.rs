//! Setting up JetStream objects (streams, buckets, consumers) at start-up on a cluster, where
//! instances starting together race to create the same objects: a setup step is retried with
//! backoff for a while ([`with_retries`]), and a new stream is waited for until it has a leader
//! ([`wait_for_leader`]): until then it answers "no stream found" to writes. On a single node
//! both are immediate.

use std::fmt::Display;
use std::future::Future;
use std::time::Duration;

use async_nats::jetstream;
use rand::Rng;

/// Longest start-up waits for a stream's leader, or retries one setup step: an election takes
/// seconds, and instances started together on a fresh cluster saw the stream API time out.
pub const LEADER_WAIT: Duration = Duration::from_secs(30);
const POLL: Duration = Duration::from_millis(100);
const RETRY_FIRST: Duration = Duration::from_millis(200);
const RETRY_MAX: Duration = Duration::from_secs(3);

/// Runs `step` until it succeeds, retrying a failure with backoff and jitter for up to
/// [`LEADER_WAIT`]; the last failure is returned.
pub async fn with_retries<T, E, F, Fut>(what: &str, mut step: F) -> Result<T, E>
where
    E: Display,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let deadline = tokio::time::Instant::now() + LEADER_WAIT;
    let mut delay = RETRY_FIRST;
    loop {
        match step().await {
            Ok(value) => return Ok(value),
            Err(err) if tokio::time::Instant::now() + delay < deadline => {
                tracing::warn!(what, %err, "JetStream setup failed; retrying");
                let jitter = delay.mul_f64(rand::rng().random_range(0.0..0.5));
                tokio::time::sleep(delay + jitter).await;
                delay = (delay * 2).min(RETRY_MAX);
            }
            Err(err) => return Err(err),
        }
    }
}

/// Resolves once `stream` reports a leader (or has no cluster info: a single server), or
/// after [`LEADER_WAIT`], logging a warning then: writes are retried anyway.
pub async fn wait_for_leader(js: &jetstream::Context, stream: &str) {
    let deadline = tokio::time::Instant::now() + LEADER_WAIT;
    loop {
        if let Ok(handle) = js.get_stream(stream).await {
            match handle.get_info().await {
                Ok(info) => match info.cluster {
                    Some(cluster) if cluster.leader.is_none() => {}
                    _ => return,
                },
                Err(err) => tracing::debug!(stream, %err, "stream info not available yet"),
            }
        }
        if tokio::time::Instant::now() >= deadline {
            tracing::warn!(stream, "the stream has no leader yet; going on");
            return;
        }
        tokio::time::sleep(POLL).await;
    }
}
