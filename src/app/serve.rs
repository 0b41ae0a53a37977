//! Start-up step: the read side and the HTTP server. Starts the recent-events list, takes the
//! first queue status snapshot, starts the gauges, then binds the address (port 0: any free
//! port) and serves the API. Every task runs on the supervisor's [`Tasks`]; when its token is
//! cancelled, open event streams are told to end and the server drains.

use std::net::SocketAddr;

use actix::Addr;
use metrics_exporter_prometheus::PrometheusHandle;
use tokio::sync::watch;

use super::start::Upstreams;
use super::{AppError, KINDS};
use crate::actors::cache_keeper::CacheKeeper;
use crate::actors::pipeline::Pipeline;
use crate::actors::refresh_scheduler::Rules;
use crate::config::Settings;
use crate::http::{self, ApiState, Shared};
use crate::metrics::TaskName;
use crate::read::bypass::Bypass;
use crate::read::hot::HotCache;
use crate::read::live::RecentEvents;
use crate::read::queue_snapshot::QueueCollector;
use crate::read::refresh::RefreshState;
use crate::store::Store;
use crate::tasks::Tasks;

/// What the API serves from, built by the earlier steps.
pub(super) struct Parts {
    pub store: Store,
    pub keeper: Addr<CacheKeeper>,
    pub pipeline: Pipeline,
    pub metrics: PrometheusHandle,
    pub upstreams: Upstreams,
    pub rules: Rules,
    pub webhooks: Option<crate::webhooks::Webhooks>,
    pub store_bounds: crate::actors::store_bounds::BoundsView,
}

/// Serves the API on `settings.http_addr`; returns the address bound and the hot cache.
pub(super) async fn http(
    settings: &Settings,
    parts: Parts,
    tasks: &Tasks,
) -> Result<(SocketAddr, HotCache), AppError> {
    let recent = recent_events(&parts.pipeline.nats, tasks);
    let collector = QueueCollector {
        queue: parts.pipeline.queue.clone(),
        kinds: KINDS.to_vec(),
        limiter: parts.upstreams.limiter,
        activity: parts.pipeline.activity.clone(),
        shared_budget: parts.upstreams.shared_budget,
    };
    let hot = HotCache::new(settings.hot_cache_mb.saturating_mul(1024 * 1024));
    let (closing, closing_rx) = watch::channel(false);
    let queue_status = collector.start(tasks).await;
    let state = ApiState::new(Shared {
        closing: closing_rx,
        queue_status,
        store: parts.store,
        keeper: parts.keeper,
        pipeline: parts.pipeline,
        metrics: parts.metrics,
        team_players: settings.team_players,
        admin_token: settings.admin_token.clone(),
        bypass: Bypass::new(parts.upstreams.opendota),
        hot: hot.clone(),
        recent,
        refresh: RefreshState::new(parts.rules, settings.auto_refresh),
        webhooks: parts.webhooks,
        store_bounds: parts.store_bounds,
    });
    let token = tasks.token();
    let gauges = state.clone();
    tasks.spawn_restarting(TaskName::Gauges, move || {
        http::routes::status::refresh_gauges(gauges.clone(), token.clone())
    });
    let addr = listen(settings.http_addr, state, closing, tasks).await?;
    Ok((addr, hot))
}

/// The last ready/failed events, kept filled from NATS until shutdown.
fn recent_events(nats: &async_nats::Client, tasks: &Tasks) -> RecentEvents {
    let recent = RecentEvents::default();
    let (list, nats, token) = (recent.clone(), nats.clone(), tasks.token());
    tasks.spawn_restarting(TaskName::RecentEvents, move || {
        let (list, nats, token) = (list.clone(), nats.clone(), token.clone());
        async move {
            if let Err(err) = list.follow(nats, token).await {
                tracing::warn!(%err, "the recent-events list stays empty");
            }
        }
    });
    recent
}

/// Binds `addr` and serves `state` on it until the token is cancelled: then `closing` turns
/// true (event streams end instead of holding up the drain) and the server drains.
async fn listen(
    addr: SocketAddr,
    state: ApiState,
    closing: watch::Sender<bool>,
    tasks: &Tasks,
) -> Result<SocketAddr, AppError> {
    let bind_error = |source| AppError::Bind { addr, source };
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(bind_error)?;
    let local = listener.local_addr().map_err(bind_error)?;
    let token = tasks.token();
    let server = warp::serve(http::routes(state))
        .incoming(listener)
        .graceful(async move {
            token.cancelled().await;
            let _ = closing.send(true);
        });
    tasks.spawn(TaskName::Http, server.run());
    Ok(local)
}
