//! Keeps glibc's heap from holding on to what the service freed, so RSS follows what is held
//! (baseline + hot cache + store cache, each bounded) instead of the largest burst of work
//! seen. Two steps, both no-ops off glibc: fewer malloc arenas ([`limit_malloc_arenas`]), and
//! handing the free pages of every arena back to the OS now and then ([`trim_periodically`]).
//!
//! Why: a team import parses and compresses dozens of bodies at once on tokio's blocking
//! pool. glibc gives those threads arenas of their own (up to eight per core) and keeps every
//! freed page in them; only the main arena's top is ever returned by itself. Measured on the
//! 1,000-match import of `bench/scale.py` (BENCHMARKS.md "Scale and cost"): RSS after it
//! 208-228 MiB with glibc's defaults, 166-210 MiB with the arenas capped, and a
//! `malloc_trim(0)` then took it from 217 to 159 MiB.

use std::time::{Duration, Instant};

use crate::metrics::TaskName;
use crate::tasks::Tasks;

/// How often free heap pages are handed back: often enough that RSS settles within seconds
/// of a burst, rarely enough that the pages re-faulted during a busy import cost little.
const TRIM_EVERY: Duration = Duration::from_secs(5);

/// Caps glibc's malloc arenas at one per core, unless `MALLOC_ARENA_MAX` says otherwise.
/// Call it first thing in `main`: a thread that allocated before it keeps its own arena.
pub fn limit_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        if std::env::var_os("MALLOC_ARENA_MAX").is_some() {
            return;
        }
        let cores = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
        let arenas = libc::c_int::try_from(cores).unwrap_or(libc::c_int::MAX);
        // SAFETY: mallopt only sets one of the allocator's tunables; glibc allows it at any
        // time from any thread, and it reads no memory of ours.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, arenas);
        }
    }
}

/// Whether a trim task runs in this process: the heap is the process's, so one is enough
/// however many applications run in it (the integration tests start several).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
static TRIMMING: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Every [`TRIM_EVERY`] until shutdown, on the blocking pool (it takes each arena's lock in
/// turn): hands the free pages of every arena back to the OS. Only the first application of
/// the process starts it; the next one does after that one's task ended.
pub(super) fn trim_periodically(tasks: &Tasks) {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if !TRIMMING.swap(true, std::sync::atomic::Ordering::AcqRel) {
        use std::sync::atomic::Ordering;
        let token = tasks.token();
        tasks.spawn_restarting(TaskName::MallocTrim, move || {
            let token = token.clone();
            async move {
                let mut every = tokio::time::interval(TRIM_EVERY);
                every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    tokio::select! {
                        _ = every.tick() => {}
                        () = token.cancelled() => {
                            TRIMMING.store(false, Ordering::Release);
                            return;
                        }
                    }
                    match tokio::task::spawn_blocking(trim).await {
                        Ok((released, took)) => tracing::trace!(
                            released,
                            took_us = took.as_micros() as u64,
                            "free heap pages handed back"
                        ),
                        // Only a runtime shutting down gets here.
                        Err(_) => {
                            TRIMMING.store(false, Ordering::Release);
                            return;
                        }
                    }
                }
            }
        });
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    let _ = tasks;
}

/// One `malloc_trim(0)`: whether it released anything, and how long it took.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn trim() -> (bool, Duration) {
    let started = Instant::now();
    // SAFETY: malloc_trim only returns free pages of the allocator's own heaps to the OS; it
    // takes each arena's lock, so it is safe beside allocations on other threads.
    let released = unsafe { libc::malloc_trim(0) } == 1;
    (released, started.elapsed())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    #[test]
    fn freed_heap_pages_go_back_to_the_os() {
        fn rss_kb() -> u64 {
            let status = std::fs::read_to_string("/proc/self/status").unwrap();
            let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
            line.split_whitespace().nth(1).unwrap().parse().unwrap()
        }
        // Many small blocks (below the mmap threshold, so they live in the heap), touched,
        // then freed but one in 64, which pins the heap's top: glibc keeps the rest.
        let mut blocks: Vec<Vec<u8>> = (0..16 * 1024).map(|_| vec![1u8; 8 * 1024]).collect();
        let pinned: Vec<Vec<u8>> = blocks.iter().step_by(64).cloned().collect();
        blocks.clear();
        blocks.shrink_to_fit();
        let before = rss_kb();
        let (released, _) = trim();
        let after = rss_kb();
        assert!(released);
        // 128 MiB were freed; at least half of it must leave RSS.
        assert!(
            before.saturating_sub(after) > 64 * 1024,
            "{before} -> {after} kB"
        );
        drop(pinned);
    }
}
