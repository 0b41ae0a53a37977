//! The start-up steps `Application::build` runs in order, one function each: the demo
//! fixture upstream, NATS, the rate limiter and upstream clients, the fetchers, re-queuing
//! left-over claims, and the HTTP server. Each returns what the running application keeps.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use actix::{Addr, Supervisor};
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;

use super::AppError;
use crate::actors::cache_keeper::{ForgetClaims, RequeueAll};
use crate::actors::fetcher::{FetchJobs, Fetcher};
use crate::actors::league_fetcher::{LeagueFetcher, LeagueJobs};
use crate::actors::match_fetcher::{MatchFetcher, MatchJobs};
use crate::actors::pipeline::Pipeline;
use crate::actors::player_fetcher::{PlayerFetcher, PlayerJobs};
use crate::actors::player_stats_fetcher::{PlayerStatsFetcher, PlayerStatsJobs};
use crate::actors::rate_limiter::{BudgetSnapshot, LimiterBudget, RateLimiter, Snapshot};
use crate::actors::reserve::SpareBudget;
use crate::actors::team_importer::{TeamImporter, TeamJobs};
use crate::bus::embedded::{EmbeddedNats, EmbeddedNatsConfig};
use crate::config::{NatsAuth, NatsMode, Settings, StoreBackend};
#[cfg(feature = "fixture-upstream")]
use crate::fixture_upstream::{FixtureConfig, FixtureUpstream};
use crate::http::queue_snapshot::{QueueCollector, QueueSnapshots};
use crate::http::{self, ApiState};
use crate::shared::SharedStore;
use crate::shared::mirror::Mirror;
use crate::upstream::budget::Budget;
use crate::upstream::client::UpstreamClient;
use crate::upstream::dotabuff::Dotabuff;
use crate::upstream::in_flight::{InFlight, Lane};
use crate::upstream::opendota::OpenDota;
use crate::upstream::recorder::Recorder;
use crate::upstream::shared_budget::{EgressIdentity, SharedBudget, SharedBudgetConfig};

/// With `--record-dir`, the recorder, once the directory proved writable. Before anything else
/// starts, so a wrong directory stops start-up at once.
pub(super) fn recorder(settings: &Settings) -> Result<Option<Recorder>, AppError> {
    let Some(dir) = &settings.record_dir else {
        return Ok(None);
    };
    let recorder = Recorder::open(dir)?;
    tracing::info!(dir = %dir.display(), "recording every accepted upstream answer");
    Ok(Some(recorder))
}

/// In demo mode, starts the fixture upstream over the demo data set on a free local port and
/// points both upstream URLs of `settings` at it. It reads the same clock as the service's
/// rate limiter.
#[cfg(feature = "fixture-upstream")]
pub(super) async fn demo_upstream(
    settings: &mut Settings,
) -> Result<Option<FixtureUpstream>, AppError> {
    let Some(dir) = settings.demo_data().map(std::path::Path::to_path_buf) else {
        return Ok(None);
    };
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
        .await
        .map_err(|source| AppError::Bind {
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            source,
        })?;
    let upstream = FixtureUpstream::start(
        FixtureConfig {
            dir: dir.to_path_buf(),
            clock: settings.clock.clone(),
            ..FixtureConfig::default()
        },
        listener,
    )
    .await?;
    settings.opendota_url = upstream.opendota_url();
    settings.dotabuff_url = upstream.dotabuff_url();
    tracing::info!(addr = %upstream.addr(), dir = %dir.display(), "demo mode: fixture upstream serving the bundled data set");
    Ok(Some(upstream))
}

/// Demo mode needs the fixture upstream, which this build left out.
#[cfg(not(feature = "fixture-upstream"))]
pub(super) fn no_demo(settings: &Settings) -> Result<(), AppError> {
    match settings.demo_data() {
        Some(_) => Err(AppError::DemoUnavailable),
        None => Ok(()),
    }
}

/// NATS as configured: our own nats-server, or an existing one. Returns the server we run
/// (if any), its URL and a connected client. A refused login or TLS handshake fails here, at
/// once, naming the URL: the client does not retry an initial connect.
pub(super) async fn nats(
    settings: &Settings,
) -> Result<(Option<EmbeddedNats>, String, async_nats::Client), AppError> {
    let base = async_nats::ConnectOptions::new().name("dota-orchestrator");
    let (embedded, url, options, tls) = match &settings.nats {
        NatsMode::Embedded { conf, port } => {
            let server = EmbeddedNats::start_with_server_bin(
                EmbeddedNatsConfig {
                    conf: conf.clone(),
                    store_dir: settings.data_dir.join("nats"),
                    port: *port,
                },
                settings.nats_server_bin.as_deref(),
            )
            .await?;
            let url = server.url().to_string();
            (Some(server), url, base, false)
        }
        NatsMode::External { url, auth, tls_ca } => {
            let tls = tls_ca.is_some() || url.split(',').any(|u| u.trim().starts_with("tls://"));
            let options = external_options(base, auth, tls_ca.as_deref()).await?;
            (None, url.clone(), options.require_tls(tls), tls)
        }
    };
    let client = options
        .connect(server_addrs(&url)?)
        .await
        .map_err(|source| AppError::NatsConnect {
            hint: connect_hint(source.kind(), tls),
            url: url.clone(),
            source,
        })?;
    Ok((embedded, url, client))
}

/// Name of the file in the data dir that holds this instance's ID.
pub const INSTANCE_ID_FILE: &str = "instance-id";

/// This data dir's instance ID (12 lowercase hex digits), made and kept in
/// [`INSTANCE_ID_FILE`] on the first start. It names the instance's own job queue on a shared
/// NATS server, so it must stay the same across restarts: queued work survives them.
pub fn instance_id(data_dir: &Path) -> Result<String, AppError> {
    let path = data_dir.join(INSTANCE_ID_FILE);
    let error = |reason: String| AppError::InstanceId {
        path: path.clone(),
        reason,
    };
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let id = text.trim();
            let valid = (1..=32).contains(&id.len())
                && id
                    .bytes()
                    .all(|b| b.is_ascii_digit() || b.is_ascii_lowercase());
            if valid {
                Ok(id.to_string())
            } else {
                Err(error(format!(
                    "{id:?} is not 1 to 32 lowercase letters and digits; remove the file to get a new one"
                )))
            }
        }
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            let id = uuid::Uuid::new_v4().simple().to_string()[..12].to_string();
            std::fs::write(&path, format!("{id}\n")).map_err(|e| error(e.to_string()))?;
            tracing::info!(%id, path = %path.display(), "new instance ID");
            Ok(id)
        }
        Err(err) => Err(error(err.to_string())),
    }
}

/// The servers of `--nats-url`: one URL, or a comma-separated list of a cluster's nodes (the
/// client picks one and fails over to the others).
fn server_addrs(url: &str) -> Result<Vec<async_nats::ServerAddr>, AppError> {
    url.split(',')
        .map(str::trim)
        .filter(|u| !u.is_empty())
        .map(str::parse)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|source| AppError::NatsUrl {
            url: url.to_string(),
            source,
        })
}

/// Credentials and trusted CA for an external server. The CA file is checked here so that a
/// wrong path is reported as such, not as a failed handshake.
async fn external_options(
    options: async_nats::ConnectOptions,
    auth: &NatsAuth,
    tls_ca: Option<&Path>,
) -> Result<async_nats::ConnectOptions, AppError> {
    let options = match auth {
        NatsAuth::None => options,
        NatsAuth::Token(token) => options.token(token.0.clone()),
        NatsAuth::Creds(path) => {
            options
                .credentials_file(path)
                .await
                .map_err(|source| AppError::NatsFile {
                    what: "credentials file (--nats-creds)",
                    path: path.to_path_buf(),
                    source,
                })?
        }
    };
    let options = match tls_ca {
        Some(ca) => {
            std::fs::metadata(ca).map_err(|source| AppError::NatsFile {
                what: "TLS CA certificate (--nats-tls-ca)",
                path: ca.to_path_buf(),
                source,
            })?;
            options.add_root_certificates(ca.to_path_buf())
        }
        None => options,
    };
    Ok(options)
}

/// What to check when the initial connect fails, by the client's reason. An untrusted server
/// certificate surfaces as an I/O error, hence the TLS hint for any failure of a TLS connect.
fn connect_hint(kind: async_nats::ConnectErrorKind, tls: bool) -> &'static str {
    use async_nats::ConnectErrorKind as Kind;
    match kind {
        Kind::AuthorizationViolation | Kind::Authentication => {
            "the server refused our credentials; check --nats-token or --nats-creds"
        }
        _ if tls => {
            "check that the server runs with TLS, the URL is right and --nats-tls-ca is the CA \
             that signed the server's certificate"
        }
        _ => "check that the server runs and the URL is right",
    }
}

/// The upstream APIs, every call within one rate budget and its service's in-flight lane.
pub(super) struct Upstreams {
    pub limiter: Addr<RateLimiter>,
    pub in_flight: InFlight,
    pub opendota: OpenDota,
    pub dotabuff: Dotabuff,
}

/// Starts the supervised RateLimiter on `settings.clock` and the clients that wait on it, both
/// writing accepted answers to `recorder` when there is one.
/// With `--store nats` (`shared_budget`: the JetStream context and the shutdown signal), every
/// call is also counted against the budget every instance shares, which is returned too.
pub(super) async fn upstreams(
    settings: &Settings,
    recorder: Option<Recorder>,
    shared_budget: Option<(async_nats::jetstream::Context, watch::Receiver<bool>)>,
) -> Result<(Upstreams, Option<SharedBudget>), AppError> {
    let (limits, clock) = (settings.limits, settings.clock.clone());
    let limiter = Supervisor::start(move |_| RateLimiter::new(limits, clock.clone()));
    let local: Arc<dyn Budget> =
        Arc::new(LimiterBudget::new(limiter.clone(), settings.clock.clone()));
    let (budget, shared) = match shared_budget {
        Some((js, shutdown)) => {
            let config = SharedBudgetConfig {
                limits,
                identity: EgressIdentity::of_api_key(settings.opendota_api_key.as_ref()),
                instance_id: instance_id(&settings.data_dir)?,
                replicas: usize::from(settings.nats_replicas),
                clock: settings.clock.clone(),
            };
            let shared = SharedBudget::start(js, local, config, shutdown).await?;
            (Arc::new(shared.clone()) as Arc<dyn Budget>, Some(shared))
        }
        None => (local, None),
    };
    let in_flight = InFlight::new(settings.max_in_flight, limits.opendota_per_minute);
    let client =
        UpstreamClient::new(budget, in_flight.clone()).map_err(AppError::UpstreamClient)?;
    let upstreams = Upstreams {
        limiter,
        in_flight,
        opendota: OpenDota::new(
            client.clone(),
            &settings.opendota_url,
            settings.opendota_api_key.clone(),
        )
        .recording(recorder.clone()),
        dotabuff: Dotabuff::new(client, &settings.dotabuff_url).recording(recorder),
    };
    Ok((upstreams, shared))
}

/// Addresses of the supervised fetchers; dropping them lets the actors stop at shutdown.
pub(super) struct Fetchers {
    pub matches: Addr<MatchFetcher>,
    pub players: Addr<PlayerFetcher>,
    pub player_stats: Addr<PlayerStatsFetcher>,
    pub leagues: Addr<LeagueFetcher>,
    pub teams: Addr<TeamImporter>,
}

fn fetcher<J: FetchJobs>(
    jobs: J,
    pipeline: &Pipeline,
    lane: &Arc<Lane>,
    spare: &SpareBudget,
    shutdown: &watch::Receiver<bool>,
) -> Addr<Fetcher<J>> {
    let (pipeline, lane, spare, shutdown) = (
        pipeline.clone(),
        lane.clone(),
        spare.clone(),
        shutdown.clone(),
    );
    Supervisor::start(move |_| Fetcher::new(jobs, pipeline, lane.clone(), spare.clone(), shutdown))
}

/// Calls a service's budget can grant right now: none while it is paused, else what is left
/// of both its minute and its day.
fn grantable(budget: &BudgetSnapshot) -> u32 {
    if budget.paused_for_ms > 0 {
        return 0;
    }
    budget
        .remaining_minute
        .min(budget.remaining_day.unwrap_or(u32::MAX))
}

/// Starts one supervised fetcher per job kind, and the task that keeps the in-flight limits
/// in step with the rate limiter until shutdown. The OpenDota kinds share the OpenDota lane;
/// team imports have a fixed lane of `--workers`. Scheduled jobs start while `spare` is open.
pub(super) fn fetchers(
    settings: &Settings,
    upstreams: &Upstreams,
    pipeline: &Pipeline,
    spare: &SpareBudget,
    shutdown: &watch::Receiver<bool>,
) -> Fetchers {
    let limiter = upstreams.limiter.clone();
    tokio::spawn(upstreams.in_flight.clone().refresh(
        move || {
            let limiter = limiter.clone();
            async move {
                let budgets = limiter.send(Snapshot).await.ok()?;
                Some(budgets.iter().map(|b| (b.service, grantable(b))).collect())
            }
        },
        shutdown.clone(),
    ));
    let lane = upstreams.in_flight.lane(crate::domain::Service::OpenDota);
    let opendota = &upstreams.opendota;
    let teams = TeamJobs {
        dotabuff: upstreams.dotabuff.clone(),
        opendota: opendota.clone(),
        store: pipeline.store.clone(),
        keeper: pipeline.keeper.clone(),
        source: settings.team_source,
        sides: settings.team_players,
        page_ttl: settings.ttls.teams,
    };
    let opendota = || opendota.clone();
    Fetchers {
        matches: fetcher(
            MatchJobs {
                opendota: opendota(),
            },
            pipeline,
            lane,
            spare,
            shutdown,
        ),
        players: fetcher(
            PlayerJobs {
                opendota: opendota(),
            },
            pipeline,
            lane,
            spare,
            shutdown,
        ),
        player_stats: fetcher(
            PlayerStatsJobs {
                opendota: opendota(),
            },
            pipeline,
            lane,
            spare,
            shutdown,
        ),
        leagues: fetcher(
            LeagueJobs {
                opendota: opendota(),
            },
            pipeline,
            lane,
            spare,
            shutdown,
        ),
        // Their Dotabuff pages go one at a time anyway (its steady spacing); their OpenDota
        // calls take OpenDota call slots.
        teams: fetcher(
            teams,
            pipeline,
            &Lane::fixed(settings.workers),
            spare,
            shutdown,
        ),
    }
}

/// With `--store nats`: refuses a server older than 2.12 (naming the version found), then
/// opens the shared buckets. `None` with `--store redb`.
pub(super) async fn shared_store(
    settings: &Settings,
    nats: &async_nats::Client,
    url: &str,
) -> Result<Option<SharedStore>, AppError> {
    if settings.store != StoreBackend::Nats {
        return Ok(None);
    }
    settings.validate()?;
    crate::shared::check_server(nats, url)?;
    let shared = SharedStore::open(
        async_nats::jetstream::new(nats.clone()),
        usize::from(settings.nats_replicas),
        instance_id(&settings.data_dir)?,
        settings
            .shared_tuning
            .with_lease_secs(settings.claim_lease_secs),
    )
    .await?;
    tracing::info!(
        replicas = settings.nats_replicas,
        instance = shared.instance(),
        "shared store on JetStream"
    );
    Ok(Some(shared))
}

/// With `--store nats`: starts the watch that keeps redb a replica of the shared store, and
/// the task that renews this instance's claims.
pub(super) fn replicate(
    shared: SharedStore,
    pipeline: &Pipeline,
    shutdown: &watch::Receiver<bool>,
) -> Vec<JoinHandle<()>> {
    let mirror = Mirror {
        shared: shared.clone(),
        keeper: pipeline.keeper.clone(),
        store: pipeline.store.clone(),
    };
    vec![
        tokio::spawn(mirror.run(shutdown.clone())),
        tokio::spawn(shared.keep_leases(shutdown.clone())),
    ]
}

/// Re-queues every claim found in the database under a new generation (see [`RequeueAll`]),
/// so work queued before a stop or crash is done now, not after JetStream's ack wait. The queue
/// is private to this instance (the embedded server's, or its own on a shared server), so the
/// old queue is purged first: see `JobQueue::discard_all`.
///
/// With `--store nats` the queue and the claims are shared: nothing is purged or re-queued
/// (queued jobs wait in the replicated stream; jobs this instance held are redelivered after
/// the ack wait, and their claims taken over by whoever runs them). The replica's claims are
/// forgotten; the claims watch replays the live ones.
/// The durable event stream `DOTA_EVENTS`, then the webhook endpoints and their delivery.
/// Webhooks need a KV bucket that nats-server 2.9 (Debian's, enough for one node otherwise)
/// cannot give this client: on a server older than 2.12 the service runs without them, says
/// so, and the webhook API answers 503.
pub(super) async fn events(
    settings: &Settings,
    nats: &async_nats::Client,
    replicas: usize,
    shutdown: &watch::Receiver<bool>,
) -> Result<(Option<crate::webhooks::Webhooks>, Vec<JoinHandle<()>>), AppError> {
    let js = async_nats::jetstream::new(nats.clone());
    let retention = crate::events::Retention {
        max_age: settings.events.retention,
        max_bytes: settings.events.max_bytes,
    };
    crate::events::stream::setup(&js, retention, replicas).await?;
    match crate::webhooks::Webhooks::start(nats, &settings.events, replicas, shutdown).await {
        Ok((hooks, tasks)) => Ok((Some(hooks), tasks)),
        Err(err) => {
            tracing::error!(%err, "webhooks are off");
            Ok((None, Vec::new()))
        }
    }
}

pub(super) async fn recover_claims(pipeline: &Pipeline) -> Result<(), AppError> {
    if pipeline.shared.is_some() {
        pipeline.keeper.send(ForgetClaims).await??;
        return Ok(());
    }
    pipeline.queue.discard_all().await?;
    let jobs = pipeline.keeper.send(RequeueAll).await??;
    if !jobs.is_empty() {
        tracing::info!(count = jobs.len(), "re-queuing work left from the last run");
    }
    pipeline
        .publish_claimed(jobs)
        .await
        .map_err(AppError::Requeue)
}

/// The running HTTP server and the handles that stop it.
pub(super) struct Http {
    pub addr: SocketAddr,
    pub stop: oneshot::Sender<()>,
    /// Turns true just before the HTTP drain, so event streams end instead of holding it up.
    pub closing: watch::Sender<bool>,
    pub task: JoinHandle<()>,
    /// Refreshes the queue status snapshot (and the queue gauges) until shutdown.
    pub queue_status: JoinHandle<()>,
    /// Refreshes the NATS and store gauges until shutdown.
    pub gauges: JoinHandle<()>,
}

/// Takes the first queue status snapshot, then binds `addr` (port 0: any free port) and serves
/// the API on it.
pub(super) async fn http(
    addr: SocketAddr,
    queue: QueueCollector,
    state: impl FnOnce(watch::Receiver<bool>, QueueSnapshots) -> ApiState,
    shutdown: &watch::Receiver<bool>,
) -> Result<Http, AppError> {
    let (closing, closing_rx) = watch::channel(false);
    let (snapshots, queue_status) = queue.start(shutdown.clone()).await;
    let state = state(closing_rx, snapshots);
    let gauges = tokio::spawn(http::status::refresh_gauges(
        state.clone(),
        shutdown.clone(),
    ));
    let bind_error = |source| AppError::Bind { addr, source };
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(bind_error)?;
    let local = listener.local_addr().map_err(bind_error)?;
    let (stop, stop_rx) = oneshot::channel::<()>();
    let server = warp::serve(http::request_id::with_request_id(http::routes(state)))
        .incoming(listener)
        .graceful(async move {
            let _ = stop_rx.await;
        });
    Ok(Http {
        addr: local,
        stop,
        closing,
        task: tokio::spawn(server.run()),
        queue_status,
        gauges,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_instance_id_is_made_once_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let id = instance_id(dir.path()).unwrap();
        assert_eq!(id.len(), 12);
        assert_eq!(
            instance_id(dir.path()).unwrap(),
            id,
            "the same across restarts"
        );
        std::fs::write(dir.path().join(INSTANCE_ID_FILE), "Not/Valid\n").unwrap();
        let err = instance_id(dir.path()).unwrap_err().to_string();
        assert!(
            err.contains("instance-id") && err.contains("remove the file"),
            "{err}"
        );
    }

    #[test]
    fn a_nats_url_may_list_several_nodes() {
        let addrs =
            server_addrs("nats://127.0.0.1:4222, nats://127.0.0.1:4223,127.0.0.1:4224").unwrap();
        let ports: Vec<u16> = addrs.iter().map(|a| a.port()).collect();
        assert_eq!(ports, [4222, 4223, 4224]);
        assert_eq!(server_addrs("tls://nats.example:4443").unwrap().len(), 1);
        let err = server_addrs("nats://127.0.0.1:4222,http://[::1").unwrap_err();
        assert!(err.to_string().contains("invalid --nats-url"), "{err}");
    }
}
