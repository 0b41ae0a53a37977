//! The one cap on long-lived replies: every open event stream (`/api/events`,
//! `/api/queue/events`) and WebSocket (`/api/ws`) of a server takes one of [`MAX_STREAMS`]
//! permits for its lifetime, and one more is answered 503. The route table holds a single
//! [`Streams`], so the feeds share the cap rather than having one each.

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::reply::ApiError;

/// Concurrent streams per instance, SSE and WebSocket together. An SSE event stream holds two
/// NATS subscriptions and a task, a WebSocket the same plus a writer task; the status page
/// needs one per open tab.
pub const MAX_STREAMS: usize = 64;

/// The open-stream budget of one server: [`MAX_STREAMS`] permits. Cheap to clone (clones share
/// the permits).
#[derive(Clone)]
pub struct Streams(Arc<Semaphore>);

impl Default for Streams {
    fn default() -> Self {
        Self(Arc::new(Semaphore::new(MAX_STREAMS)))
    }
}

impl Streams {
    /// A slot for one more open stream, or a 503 when all [`MAX_STREAMS`] are taken.
    pub fn acquire(&self) -> Result<OwnedSemaphorePermit, ApiError> {
        self.0
            .clone()
            .try_acquire_owned()
            .map_err(|_| ApiError::Unavailable("too many open event streams".to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clones_share_the_cap() {
        let sse = Streams::default();
        let ws = sse.clone();
        let held: Vec<_> = (0..MAX_STREAMS)
            .map(|i| {
                if i % 2 == 0 {
                    sse.acquire()
                } else {
                    ws.acquire()
                }
            })
            .collect::<Result<_, _>>()
            .unwrap();
        assert!(matches!(ws.acquire(), Err(ApiError::Unavailable(_))));
        assert!(matches!(sse.acquire(), Err(ApiError::Unavailable(_))));
        drop(held);
        assert!(ws.acquire().is_ok());
    }
}
