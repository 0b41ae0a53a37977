//! The one place CPU-heavy upstream work leaves the thread that awaits it: parsing and checking
//! JSON bodies ([`super::opendota`]) and scraping Dotabuff pages (the team importer) run on
//! tokio's blocking pool. Every fetcher runs on the one actix System thread (its futures are
//! `spawn_local`), so a parse there (a ~450 KB match takes milliseconds; a body near the 32 MB
//! cap takes seconds in a debug build) would hold up every other fetch, the rate limiter and
//! every timer on that thread. Network I/O stays where it is; only the CPU step moves.
//!
//! Why the blocking pool rather than a fixed pool (rayon) or an Arbiter per fetcher (measured,
//! see the offthread branch's report): each parse gets a thread of its own and the OS shares
//! the cores among them, so a 1 KB player body is never queued behind a 30 MB match, as it is
//! in a pool of two threads; and an Arbiter per fetcher would still make the other workers of
//! the same fetcher (and their progress acks) wait for one slow parse. A hand-off costs ~6 µs.
//!
//! Bound: every caller awaits its closure, so the blocking threads in use for this are at most
//! the fetcher workers plus the degraded-mode bypass fetches in flight (each resource at most
//! once); tokio's own cap on the pool is 512 threads.

use super::error::UpstreamError;
use crate::domain::Service;

/// Runs `work` (pure CPU on data it owns: no I/O, no locks held across it) on the blocking
/// pool and returns its result. `service` names the upstream in the error should `work` panic
/// (refetching the same body would panic again, so it is permanent) or the runtime stop
/// before it ran (the job is handed back and retried).
pub async fn run<T, F>(service: Service, work: F) -> Result<T, UpstreamError>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    tokio::task::spawn_blocking(work).await.map_err(|err| {
        if err.is_panic() {
            tracing::error!(%service, %err, "parsing an upstream body panicked");
            UpstreamError::Unreadable {
                service,
                reason: "parsing the body panicked".into(),
            }
        } else {
            UpstreamError::Interrupted { service }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::upstream::error::Disposition;

    #[tokio::test]
    async fn the_work_runs_on_another_thread_and_its_result_comes_back() {
        let caller = std::thread::current().id();
        let worker = run(Service::OpenDota, || std::thread::current().id())
            .await
            .unwrap();
        assert_ne!(worker, caller);
    }

    #[tokio::test]
    async fn a_panicking_parse_is_a_permanent_failure_not_a_lost_task() {
        let err = run(Service::Dotabuff, || -> u32 { panic!("parser bug") })
            .await
            .unwrap_err();
        assert!(
            matches!(
                err,
                UpstreamError::Unreadable {
                    service: Service::Dotabuff,
                    ..
                }
            ),
            "{err}"
        );
        assert_eq!(err.disposition(), Disposition::GiveUp { not_found: false });
    }
}
