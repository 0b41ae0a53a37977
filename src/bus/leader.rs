//! Waits until a JetStream stream has a leader. On a cluster a stream (a KV bucket, the job
//! queue) that was just created answers "no stream found" to writes until its RAFT group has
//! elected a leader and every node knows its subjects; start-up waits for that here rather
//! than failing the first requests. On a single node the leader is there at once.

use std::time::Duration;

use async_nats::jetstream;

/// Longest start-up waits for a stream's leader: an election takes seconds.
pub const LEADER_WAIT: Duration = Duration::from_secs(30);
const POLL: Duration = Duration::from_millis(100);

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
