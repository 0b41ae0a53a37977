//! The one wait loop every [`Budget`] runs: ask for a grant, and when told to wait, sleep
//! (at most [`MAX_SLEEP`] at a time), or less when the clock is moved meanwhile, then ask again.

use std::time::Duration;

use super::{Budget, BudgetUnavailable, Grant};
use crate::clock::Clock;
use crate::domain::Service;

/// Longest a waiting caller sleeps before it asks again, however long it was told to wait
/// (up to a day when the day budget is spent). The sleep runs on the monotonic clock, which
/// stops while the host is suspended and does not follow a stepped wall clock; asking again
/// every minute keeps a resume at most this late, for one question per waiting caller a minute.
pub const MAX_SLEEP: Duration = Duration::from_secs(60);

/// Loops until `ask` grants a call to `service`; returns the total time waited. Before each
/// ask, `beneath` (the local budget under the shared one) must grant first, and its waits count
/// too. Fails only when a budget cannot answer.
pub async fn until_granted<A, F>(
    clock: &Clock,
    beneath: Option<&dyn Budget>,
    service: Service,
    mut ask: A,
) -> Result<Duration, BudgetUnavailable>
where
    A: FnMut() -> F,
    F: Future<Output = Result<Grant, BudgetUnavailable>>,
{
    let mut waited = Duration::ZERO;
    loop {
        if let Some(beneath) = beneath {
            waited += beneath.acquire(service).await?;
        }
        // Subscribed before asking, so a move between the answer and the sleep is seen.
        let mut moves = clock.subscribe();
        match ask().await? {
            Grant::Granted => return Ok(waited),
            Grant::Wait(wait) => {
                let wait = wait.min(MAX_SLEEP);
                let started = tokio::time::Instant::now();
                waited += tokio::select! {
                    () = tokio::time::sleep(wait) => wait,
                    () = moves.moved() => started.elapsed(),
                };
            }
        }
    }
}
