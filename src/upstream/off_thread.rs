//! The one place CPU-heavy upstream work leaves the thread that awaits it: parsing and checking
//! JSON bodies ([`super::opendota`]) and scraping Dotabuff pages (the team importer) run on
//! tokio's blocking pool. Every fetcher runs on the one actix System thread (its futures are
//! `spawn_local`), so a parse there (a ~450 KB match takes 4-9 ms in a release build, a body
//! near the 32 MB cap most of a second) would hold up every other fetch, the rate limiter and
//! every timer on that thread. Network I/O stays where it is; only the CPU step moves.
//!
//! Why the blocking pool. Measured with two 19 MB bodies parsing while small jobs ran (release
//! build, 2 cores): on the System thread, everything on it stopped for the whole 0.8-1.7 s; in
//! a fixed pool of two threads (rayon), every small parse queued behind the big ones (up to
//! 2.8 s); with an Arbiter per fetcher, the other workers of the match fetcher did not run at
//! all until the big parses ended. On the blocking pool each parse has a thread of its own and
//! the OS shares the cores among them: small jobs took ~1.5 ms at the median and 32-184 ms at
//! worst (two cores shared with the parses and with other builds). A hand-off costs ~6 µs.
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
