//! [`AppError`]: why the application did not start, each variant saying what to fix.

use std::net::SocketAddr;

use crate::actors::pipeline::PipelineError;
use crate::bus::embedded::EmbeddedNatsError;
use crate::bus::queue::BusError;
#[cfg(feature = "fixture-upstream")]
use crate::fixture_upstream::FixtureError;
use crate::metrics::MetricsError;
use crate::store::StoreError;
use crate::upstream::error::UpstreamError;
use crate::upstream::recorder::RecordDirError;

/// Start-up failures, each saying what to fix.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("could not create the data directory {path}: {source}")]
    DataDir {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    EmbeddedNats(#[from] EmbeddedNatsError),
    #[error("could not read or create the instance ID {path}: {reason}")]
    InstanceId {
        path: std::path::PathBuf,
        reason: String,
    },
    #[error("invalid --nats-url {url:?}: {source}")]
    NatsUrl { url: String, source: std::io::Error },
    #[error("could not connect to NATS at {url}: {source} ({hint})")]
    NatsConnect {
        url: String,
        source: async_nats::ConnectError,
        hint: &'static str,
    },
    #[error("could not read the NATS {what} {path}: {source}")]
    NatsFile {
        what: &'static str,
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("could not open the database: {0}")]
    Store(#[from] StoreError),
    #[error("could not set up the JetStream queue: {0}")]
    Queue(#[from] BusError),
    #[error("could not bind the HTTP address {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[cfg(feature = "fixture-upstream")]
    #[error("demo fixture upstream: {0}")]
    Demo(#[from] FixtureError),
    /// Demo mode serves its data set through the fixture upstream, which this build left out.
    #[cfg(not(feature = "fixture-upstream"))]
    #[error(
        "demo mode needs the fixture upstream, and this build lacks the `fixture-upstream` \
         cargo feature; rebuild with default features (or `--features fixture-upstream`)"
    )]
    DemoUnavailable,
    #[error(transparent)]
    Metrics(#[from] MetricsError),
    #[error("could not build the upstream HTTP client: {0}")]
    UpstreamClient(#[source] UpstreamError),
    #[error("re-queuing left-over work: {0}")]
    Requeue(#[source] PipelineError),
    #[error(transparent)]
    RecordDir(#[from] RecordDirError),
    #[error("shared store: {0}")]
    Shared(#[from] crate::shared::SharedError),
    #[error("shared rate budget: {0}")]
    SharedBudget(#[from] crate::upstream::budget::shared::SharedBudgetError),
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error(transparent)]
    Events(#[from] crate::events::EventsError),
}
