//! The reserve of OpenDota's day budget kept for people (`--refresh-reserve`, a percentage of
//! the daily limit): scheduled work (refreshes of tracked team imports and their fan-out) only
//! starts while more than that is left today. [`watch_reserve`] reads the local budget (from
//! whoever owns it: [`ReadBudgets`]) every [`CHECK_EVERY`] and opens or closes the
//! [`SpareBudget`] gate the fetchers' dispatchers follow.

use std::time::Duration;

use futures::future::BoxFuture;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::BudgetUnavailable;
use super::snapshot::{BudgetSnapshot, DayBudget};
use crate::domain::Service;
use crate::metrics::TaskName;
use crate::tasks::Tasks;

/// Reads every service's budget (the `RateLimiter` actor's address implements it).
pub trait ReadBudgets: Clone + Send + 'static {
    fn read(&self) -> BoxFuture<'_, Result<Vec<BudgetSnapshot>, BudgetUnavailable>>;
}

/// How often the gate follows the day's budget. A scheduled job started just before the gate
/// closes still runs: the reserve is a target, not a hard limit.
pub const CHECK_EVERY: Duration = Duration::from_secs(1);

/// Open while scheduled work may start. Cheap to clone.
#[derive(Clone)]
pub struct SpareBudget(watch::Receiver<bool>);

impl SpareBudget {
    pub fn is_open(&self) -> bool {
        *self.0.borrow()
    }

    /// Marks the current state seen.
    pub fn borrow_and_update(&mut self) -> bool {
        *self.0.borrow_and_update()
    }

    /// Waits for the gate to open or close; an error once nobody updates it any more.
    pub async fn changed(&mut self) -> Result<(), watch::error::RecvError> {
        self.0.changed().await
    }
}

/// Whether `day` has more left than `reserve_percent` of its limit.
pub fn above_reserve(day: &DayBudget, reserve_percent: u8) -> bool {
    u64::from(day.remaining) * 100 > u64::from(day.limit) * u64::from(reserve_percent)
}

/// Whether the OpenDota budget in `budgets` can spare scheduled work (open when the snapshot
/// has no day budget for it: nothing to keep then).
fn spare(budgets: &[BudgetSnapshot], reserve_percent: u8) -> bool {
    budgets
        .iter()
        .find(|b| b.service == Service::OpenDota)
        .and_then(|b| b.day.as_ref())
        .is_none_or(|day| above_reserve(day, reserve_percent))
}

/// The gate, closed until the first reading, kept in step with the limiter by a task of
/// `tasks` until shutdown.
pub fn watch_reserve(limiter: impl ReadBudgets, reserve_percent: u8, tasks: &Tasks) -> SpareBudget {
    let (tx, rx) = watch::channel(false);
    let shutdown = tasks.token();
    tasks.spawn_restarting(TaskName::Reserve, move || {
        let (limiter, tx, shutdown) = (limiter.clone(), tx.clone(), shutdown.clone());
        async move { follow(limiter, reserve_percent, tx, shutdown).await }
    });
    SpareBudget(rx)
}

/// Reads the limiter every [`CHECK_EVERY`] and opens or closes the gate, until `shutdown`.
async fn follow(
    limiter: impl ReadBudgets,
    reserve_percent: u8,
    tx: watch::Sender<bool>,
    shutdown: CancellationToken,
) {
    let mut tick = tokio::time::interval(CHECK_EVERY);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        match limiter.read().await {
            Ok(budgets) => {
                let open = spare(&budgets, reserve_percent);
                tx.send_if_modified(|was| {
                    let changed = *was != open;
                    if changed {
                        tracing::info!(open, reserve_percent, "scheduled work gate");
                    }
                    *was = open;
                    changed
                });
            }
            Err(err) => tracing::warn!(err = %err.0, "rate limiter unavailable; gate unchanged"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(limit: u32, remaining: u32) -> DayBudget {
        DayBudget {
            limit,
            remaining,
            resets_at: String::new(),
        }
    }

    #[test]
    fn scheduled_work_needs_more_than_the_reserve_left() {
        assert!(above_reserve(&day(100, 21), 20));
        assert!(!above_reserve(&day(100, 20), 20));
        assert!(!above_reserve(&day(100, 0), 0));
        assert!(above_reserve(&day(100, 1), 0));
        assert!(!above_reserve(&day(100, 100), 100));
    }
}
