//! Following the result events: one subscription pair to `dota.ready.>` and `dota.failed.>`,
//! merged into one stream, for every reader in this process (the completion watcher, the SSE
//! and WebSocket relays, the recent-events list).

use async_nats::{Client, Message, SubscribeError};

use super::subjects;

/// Every ready and failed event published from now on, in arrival order.
pub async fn follow(
    nats: &Client,
) -> Result<impl futures::Stream<Item = Message> + Send + Unpin + 'static, SubscribeError> {
    let ready = nats.subscribe(subjects::READY_ALL).await?;
    let failed = nats.subscribe(subjects::FAILED_ALL).await?;
    Ok(futures::stream::select(ready, failed))
}
