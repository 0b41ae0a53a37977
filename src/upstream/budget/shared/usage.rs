//! What every instance has spent of the shared budget, for the queue status (`scope:
//! cluster`): each window's counter, read for the windows holding "now" on the budget's clock.

use std::time::SystemTime;

use super::SharedBudget;
use super::counter::CounterError;
use super::share::counter_subject;
use crate::domain::Service;
use crate::upstream::budget::WindowUsage;

/// A service's shared counters at one instant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterUsage {
    /// The instant whose windows were read (the budget's clock).
    pub at: SystemTime,
    /// Every window of the service's budget, shortest first.
    pub windows: Vec<WindowUsage>,
}

impl SharedBudget {
    /// Reads every window's counter of `service` at "now", all at once.
    pub async fn usage(&self, service: Service) -> Result<ClusterUsage, CounterError> {
        let inner = &self.inner;
        let at = inner.clock.now();
        let identity = inner.identity(service);
        let reads = inner
            .limits
            .of(service)
            .windows
            .iter()
            .map(|limit| async move {
                let subject = counter_subject(service, identity, limit.window, at);
                Ok::<_, CounterError>(WindowUsage {
                    window: limit.window,
                    limit: limit.limit,
                    used: inner.counters.read(&subject).await?,
                })
            });
        let windows = futures::future::try_join_all(reads).await?;
        Ok(ClusterUsage { at, windows })
    }
}
