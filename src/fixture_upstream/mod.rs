//! Fixture upstream: a real HTTP server that imitates OpenDota, Dotabuff, the Steam Web API and
//! STRATZ from files on disk.
//! Integration tests, benchmarks and `--demo` mode point the service's upstream URLs at it
//! ([`FixtureUpstream::opendota_url`], [`FixtureUpstream::dotabuff_url`]); tests script upstream
//! misbehaviour over HTTP (`/_faults`) and read what the service asked for (`/_stats`).
//!
//! Files: [`routes`] (HTTP surface and answer order), [`files`] (path → file mapping),
//! [`limits`] (OpenDota rate windows), [`paged`] (Steam and STRATZ pages), [`faults`]
//! (scripted faults), [`stats`] (counters).
//! The data layout is documented in `fixtures/demo/README.md`.
//!
//! Lifecycle: [`FixtureUpstream::start`] serves on a listener the caller bound (port 0 in tests);
//! [`FixtureUpstream::stop`] or dropping the handle starts a graceful shutdown: the listener
//! closes, in-flight requests finish, idle keep-alive connections are closed.

mod faults;
mod files;
mod limits;
mod paged;
mod routes;
mod stats;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// How long [`FixtureUpstream::stop`] waits for in-flight requests beyond the configured latency
/// before it aborts the server task. Fixture answers are local file reads, so this is generous.
const STOP_GRACE: Duration = Duration::from_secs(5);

/// How the fixture behaves. Every field is independent; the defaults serve the demo data set
/// with no latency, no limits and no failures.
#[derive(Debug, Clone)]
pub struct FixtureConfig {
    /// Data directory holding `opendota/` and `dotabuff/`.
    pub dir: PathBuf,
    /// Added before every `/opendota` and `/dotabuff` answer (not before `/_*` control answers).
    pub latency: Duration,
    /// Requests per calendar minute (UTC) to `/opendota`; `None` = unlimited.
    pub rate_limit_per_min: Option<u32>,
    /// Requests per UTC day to `/opendota`; `None` = unlimited.
    pub daily_limit: Option<u32>,
    /// Share (0.0..=1.0) of upstream requests answered 500 at random.
    pub fail_rate: f64,
    /// The wall clock of the OpenDota rate windows; tests share one with the service.
    pub clock: crate::clock::Clock,
}

impl Default for FixtureConfig {
    fn default() -> Self {
        Self {
            dir: PathBuf::from("fixtures/demo"),
            latency: Duration::ZERO,
            rate_limit_per_min: None,
            daily_limit: None,
            fail_rate: 0.0,
            clock: crate::clock::Clock::system(),
        }
    }
}

/// Why the fixture could not start. Each is a setup mistake to fix, never worth retrying.
#[derive(Debug, thiserror::Error)]
pub enum FixtureError {
    #[error("fixture data directory {0} does not exist or is not a directory")]
    DataDir(PathBuf),
    #[error("fail_rate must be within 0.0..=1.0, got {0}")]
    FailRate(f64),
    #[error("cannot read the listener's local address")]
    LocalAddr(#[source] std::io::Error),
}

/// A running fixture server. Stops gracefully on [`FixtureUpstream::stop`] or on drop.
#[derive(Debug)]
pub struct FixtureUpstream {
    addr: SocketAddr,
    latency: Duration,
    /// Sending (or dropping) it starts the graceful shutdown.
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<()>>,
}

impl FixtureUpstream {
    /// Serves on an already-bound listener (tests bind 127.0.0.1:0).
    pub async fn start(
        config: FixtureConfig,
        listener: tokio::net::TcpListener,
    ) -> Result<FixtureUpstream, FixtureError> {
        if !(0.0..=1.0).contains(&config.fail_rate) {
            return Err(FixtureError::FailRate(config.fail_rate));
        }
        if !tokio::fs::metadata(&config.dir)
            .await
            .is_ok_and(|m| m.is_dir())
        {
            return Err(FixtureError::DataDir(config.dir));
        }
        let addr = listener.local_addr().map_err(FixtureError::LocalAddr)?;
        let shared = Arc::new(routes::Shared::new(&config));
        let (shutdown, signal) = oneshot::channel::<()>();
        let server = warp::serve(routes::routes(shared))
            .incoming(listener)
            .graceful(async move {
                // Err means the handle was dropped, which also means "stop".
                let _ = signal.await;
            })
            .run();
        let server = tokio::spawn(server);
        tracing::info!(%addr, dir = %config.dir.display(), "fixture upstream listening");
        Ok(FixtureUpstream {
            addr,
            latency: config.latency,
            shutdown: Some(shutdown),
            server: Some(server),
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Base URL to use in place of `https://api.opendota.com/api`.
    pub fn opendota_url(&self) -> String {
        format!("http://{}/opendota", self.addr)
    }

    /// Base URL to use in place of `https://api.steampowered.com`.
    pub fn steam_url(&self) -> String {
        format!("http://{}/steam", self.addr)
    }

    /// Base URL to use in place of `https://api.stratz.com`.
    pub fn stratz_url(&self) -> String {
        format!("http://{}/stratz", self.addr)
    }

    /// Base URL to use in place of `https://www.dotabuff.com`.
    pub fn dotabuff_url(&self) -> String {
        format!("http://{}/dotabuff", self.addr)
    }

    /// Graceful stop: returns once the listener is closed and in-flight requests are answered
    /// (or after the latency plus [`STOP_GRACE`], when the server task is aborted).
    pub async fn stop(mut self) {
        self.signal_shutdown();
        let Some(mut server) = self.server.take() else {
            return;
        };
        match tokio::time::timeout(self.latency + STOP_GRACE, &mut server).await {
            Ok(Ok(())) => tracing::debug!(addr = %self.addr, "fixture upstream stopped"),
            Ok(Err(e)) => {
                tracing::warn!(addr = %self.addr, error = %e, "fixture upstream task failed")
            }
            Err(_) => {
                tracing::warn!(addr = %self.addr, "fixture upstream did not drain in time; aborting");
                server.abort();
            }
        }
    }

    fn signal_shutdown(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            // Err means the server already ended; nothing left to stop.
            let _ = shutdown.send(());
        }
    }
}

impl Drop for FixtureUpstream {
    /// Starts the graceful shutdown without waiting; the server task drains on its own.
    fn drop(&mut self) {
        self.signal_shutdown();
    }
}
