//! The supervisor of the service's background tasks: every one is spawned through one
//! [`TaskTracker`] and told to stop by one [`CancellationToken`], so `Application::stop` is
//! "cancel, then wait with one deadline". A task that panics is logged (with its name) and
//! counted (`dota_task_panics_total{task}`); a long-running loop started with
//! [`Tasks::spawn_restarting`] is started again after a pause that doubles up to
//! [`MAX_BACKOFF`]. Nothing is detached: a task's panic is never dropped with its handle.
//!
//! At the bottom layer (beside `metrics`) so that any module that starts a task can take the
//! handle; modules that only need to hear "stop" take the token alone.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use futures::FutureExt;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::metrics::{TASK_PANICS, TaskName};

/// First pause before a panicked task is started again.
pub const FIRST_BACKOFF: Duration = Duration::from_secs(1);
/// Longest pause between restarts of a task that keeps panicking.
pub const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// The supervisor. Cheap to clone: clones share the tracker and the token.
#[derive(Clone)]
pub struct Tasks {
    tracker: TaskTracker,
    /// "Stop": every task ends at its next chance.
    token: CancellationToken,
    /// Fired once the stop deadline has passed: what still runs is dropped at its next poll.
    abandon: CancellationToken,
    /// Tasks running now, by name (for the warning when the deadline passes).
    running: Arc<Mutex<Vec<TaskName>>>,
    first_backoff: Duration,
}

impl Default for Tasks {
    fn default() -> Self {
        Self::with_backoff(FIRST_BACKOFF)
    }
}

impl Tasks {
    /// A supervisor whose restarts pause `first_backoff` first (tests shorten it).
    pub fn with_backoff(first_backoff: Duration) -> Self {
        Self {
            tracker: TaskTracker::new(),
            token: CancellationToken::new(),
            abandon: CancellationToken::new(),
            running: Arc::default(),
            first_backoff,
        }
    }

    /// The token every task watches; cancelled by [`Tasks::stop`].
    pub fn token(&self) -> CancellationToken {
        self.token.clone()
    }

    /// Runs `task` once. A panic is logged and counted; the task is not started again (it
    /// holds what it was started with, e.g. a bound listener).
    pub fn spawn<F>(&self, name: TaskName, task: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let mut task = Some(task);
        self.spawn_inner(name, false, move || task.take());
    }

    /// Runs `make()` until it returns. When it panics before the stop, it is logged, counted
    /// and started again from `make()` after a pause ([`FIRST_BACKOFF`] doubling up to
    /// [`MAX_BACKOFF`], and back to the first after a run longer than that).
    pub fn spawn_restarting<F, Fut>(&self, name: TaskName, mut make: F)
    where
        F: FnMut() -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.spawn_inner(name, true, move || Some(make()));
    }

    fn spawn_inner<F, Fut>(&self, name: TaskName, restart: bool, mut make: F)
    where
        F: FnMut() -> Option<Fut> + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let (token, abandon) = (self.token.clone(), self.abandon.clone());
        let running = Running::enter(&self.running, name);
        let first_backoff = self.first_backoff;
        let mut backoff = first_backoff;
        self.tracker.spawn(async move {
            let _running = running;
            while let Some(task) = make() {
                let started = Instant::now();
                let outcome = tokio::select! {
                    outcome = AssertUnwindSafe(task).catch_unwind() => outcome,
                    () = abandon.cancelled() => return,
                };
                let Err(panic) = outcome else { return };
                panicked(name, panic.as_ref());
                if !restart || token.is_cancelled() {
                    return;
                }
                // A run that lasted a while starts the pauses over.
                if started.elapsed() > MAX_BACKOFF {
                    backoff = first_backoff;
                }
                tracing::warn!(
                    task = name.as_str(),
                    pause_ms = backoff.as_millis() as u64,
                    "restarting the task"
                );
                tokio::select! {
                    () = tokio::time::sleep(backoff) => {}
                    () = token.cancelled() => return,
                }
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        });
    }

    /// Cancels the token, then waits for every task to end until `deadline`; what still runs
    /// then is dropped, with a warning naming it. Returns whether every task ended in time.
    pub async fn stop(&self, deadline: Instant) -> bool {
        self.token.cancel();
        self.tracker.close();
        if tokio::time::timeout_at(deadline, self.tracker.wait())
            .await
            .is_ok()
        {
            return true;
        }
        let left: Vec<&str> = self
            .running
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .map(|name| name.as_str())
            .collect();
        tracing::warn!(tasks = ?left, "background tasks did not end in time; dropping them");
        self.abandon.cancel();
        self.tracker.wait().await;
        false
    }
}

/// Logs and counts a panic of `name`.
fn panicked(name: TaskName, panic: &(dyn std::any::Any + Send)) {
    let message = panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(no message)");
    tracing::error!(
        task = name.as_str(),
        panic = message,
        "background task panicked"
    );
    metrics::counter!(TASK_PANICS, "task" => name.as_str()).increment(1);
}

/// A task's entry in [`Tasks::running`], removed when the task ends however it ends.
struct Running {
    list: Arc<Mutex<Vec<TaskName>>>,
    name: TaskName,
}

impl Running {
    fn enter(list: &Arc<Mutex<Vec<TaskName>>>, name: TaskName) -> Self {
        list.lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(name);
        Self {
            list: list.clone(),
            name,
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let mut list = self.list.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(at) = list.iter().position(|n| *n == self.name) {
            list.swap_remove(at);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    // Log lines written while the test's subscriber is the default (on this thread, where a
    // current-thread runtime polls every task).
    use crate::test_log::Captured;

    fn panics_counted(rendered: &str, task: &str) -> u64 {
        let series = format!("{TASK_PANICS}{{task=\"{task}\"}} ");
        rendered
            .lines()
            .find_map(|l| l.strip_prefix(series.as_str()))
            .and_then(|n| n.trim().parse().ok())
            .unwrap_or(0)
    }

    #[tokio::test(start_paused = true)]
    async fn a_panicking_task_is_logged_counted_and_restarted() {
        let handle = crate::metrics::install().unwrap();
        let before = panics_counted(&handle.render(), "team_watch");
        let logs = Captured::default();
        let writer = logs.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .finish();
        let _default = tracing::subscriber::set_default(subscriber);

        let runs = Arc::new(AtomicUsize::new(0));
        let tasks = Tasks::with_backoff(Duration::from_millis(10));
        let (token, runs_in_task) = (tasks.token(), runs.clone());
        tasks.spawn_restarting(TaskName::TeamWatch, move || {
            let (runs, token) = (runs_in_task.clone(), token.clone());
            async move {
                if runs.fetch_add(1, Ordering::SeqCst) < 2 {
                    panic!("boom");
                }
                token.cancelled().await;
            }
        });
        while runs.load(Ordering::SeqCst) < 3 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert!(tasks.stop(Instant::now() + Duration::from_secs(1)).await);

        assert_eq!(
            runs.load(Ordering::SeqCst),
            3,
            "started again after each panic"
        );
        assert_eq!(panics_counted(&handle.render(), "team_watch") - before, 2);
        let logs = logs.text();
        let logged = logs
            .lines()
            .filter(|l| l.contains("ERROR") && l.contains("background task panicked"))
            .filter(|l| l.contains("task=\"team_watch\"") && l.contains("boom"))
            .count();
        assert_eq!(logged, 2, "{logs}");
    }

    #[tokio::test(start_paused = true)]
    async fn stop_drops_a_task_that_outlives_the_deadline() {
        let tasks = Tasks::default();
        tasks.spawn(TaskName::Http, std::future::pending());
        let ended = tasks.stop(Instant::now() + Duration::from_secs(1)).await;
        assert!(!ended, "the deadline passed");
        assert!(tasks.running.lock().unwrap().is_empty());
    }
}
