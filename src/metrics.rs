//! Every metric name the service exports, in one place, with the recorder set-up.
//! Names follow Prometheus conventions: `dota_` prefix, `_total` counters, base units
//! (`_seconds`, `_bytes`); labels come from small fixed sets (kind, priority, service,
//! status class, route template), never IDs or error text.

use std::sync::OnceLock;

use metrics::Counter;
use metrics_exporter_prometheus::{BuildError, Matcher, PrometheusBuilder, PrometheusHandle};

use crate::domain::ResourceKind;

/// Jobs published to the queue. Labels: kind, priority.
pub const JOBS_QUEUED: &str = "dota_jobs_queued_total";
/// Jobs taken from the queue by a worker (each delivery). Labels: kind, priority.
pub const JOBS_STARTED: &str = "dota_jobs_started_total";
/// Jobs that ended with data stored. Labels: kind, priority.
pub const JOBS_COMPLETED: &str = "dota_jobs_completed_total";
/// Jobs that ended in a permanent failure. Labels: kind, priority.
pub const JOBS_FAILED: &str = "dota_jobs_failed_total";
/// Transient failures that were scheduled for another attempt. Labels: kind.
pub const JOB_RETRIES: &str = "dota_job_retries_total";
/// Jobs waiting in JetStream. Labels: service, priority.
pub const QUEUE_DEPTH: &str = "dota_queue_depth";
/// Jobs delivered and not yet acked. Labels: service.
pub const QUEUE_IN_FLIGHT: &str = "dota_queue_in_flight";
/// Upstream HTTP requests. Labels: service, status_class (2xx, 4xx, 429, 5xx, error).
pub const UPSTREAM_REQUESTS: &str = "dota_upstream_requests_total";
/// Upstream request latency. Labels: service.
pub const UPSTREAM_LATENCY: &str = "dota_upstream_request_duration_seconds";
/// Upstream calls in flight (waiting for budget or on the wire). Labels: service.
pub const UPSTREAM_IN_FLIGHT: &str = "dota_upstream_in_flight";
/// The adaptive limit on jobs (and so calls) in flight. Labels: service.
pub const UPSTREAM_IN_FLIGHT_LIMIT: &str = "dota_upstream_in_flight_limit";
/// Times a call had to wait for rate budget. Labels: service.
pub const RATE_LIMIT_WAITS: &str = "dota_rate_limit_waits_total";
/// How long each upstream call waited for rate budget (0 when it went at once); `_sum` is the
/// total time spent waiting. Labels: service.
pub const RATE_LIMIT_WAIT_SECONDS: &str = "dota_rate_limit_wait_seconds";
/// Budget left in the current window. Labels: service, window (second, minute, hour, day).
pub const RATE_LIMIT_REMAINING: &str = "dota_rate_limit_remaining";
/// Upstream calls granted by the shared (all-instance) budget. Labels: service.
pub const SHARED_BUDGET_GRANTS: &str = "dota_shared_budget_grants_total";
/// Times a call was told to wait for the next window by the shared budget. Labels: service,
/// window (minute, day).
pub const SHARED_BUDGET_WAITS: &str = "dota_shared_budget_waits_total";
/// Calls granted on this instance's fallback share (limit ÷ live instances) because the shared
/// counters could not be reached. Labels: service.
pub const SHARED_BUDGET_FALLBACKS: &str = "dota_shared_budget_fallbacks_total";
/// Records of the shared data bucket the replica's watch read (`--store nats`). Labels: phase
/// (replay: catching up at start or after the watch was opened again; live: after that;
/// reconcile: resources a full replay dropped from the replica because the bucket no longer
/// holds them, their removal's marker expired while the replica was away).
pub const REPLICA_CHANGES: &str = "dota_replica_changes_total";
/// Matches and players of a tracked, incomplete team import that stayed pending with no job
/// and were queued again by TeamWatch (work lost somewhere: see `actors::team_watch`).
/// Labels: kind.
pub const IMPORT_REPAIRS: &str = "dota_import_repairs_total";
/// Cache lookups from the API. Labels: kind, result (hit, miss, expired).
pub const CACHE_LOOKUPS: &str = "dota_cache_lookups_total";
/// Bytes of ready responses held by the in-memory hot cache (bodies and their encodings).
pub const HOT_CACHE_BYTES: &str = "dota_hot_cache_bytes";
/// The hot cache's bound (`--hot-cache-mb`), in bytes.
pub const HOT_CACHE_CAPACITY_BYTES: &str = "dota_hot_cache_capacity_bytes";
/// redb's page cache (`--store-cache-mb`), in bytes.
pub const STORE_CACHE_CAPACITY_BYTES: &str = "dota_store_cache_capacity_bytes";
/// Resources and views held by the hot cache.
pub const HOT_CACHE_ENTRIES: &str = "dota_hot_cache_entries";
/// Reads of fresh resources through the hot cache. Labels: result (hit: served from memory;
/// miss: read from redb and kept). Not counted while the cache is off (`--hot-cache-mb 0`).
pub const HOT_CACHE_LOOKUPS: &str = "dota_hot_cache_lookups_total";
/// Requests answered 304 Not Modified (the client's `If-None-Match` was current).
pub const NOT_MODIFIED: &str = "dota_http_not_modified_total";
/// HTTP requests served. Labels: route, method, status.
pub const HTTP_REQUESTS: &str = "dota_http_requests_total";
/// HTTP request latency. Labels: route, method.
pub const HTTP_LATENCY: &str = "dota_http_request_duration_seconds";
/// 1 when the NATS client is connected, else 0.
pub const NATS_CONNECTED: &str = "dota_nats_connected";
/// Restarts of the embedded nats-server after it died.
pub const NATS_SERVER_RESTARTS: &str = "dota_nats_server_restarts_total";
/// redb write transactions. Labels: result (ok, error). Reads of fresh data never write.
pub const STORE_WRITES: &str = "dota_store_writes_total";
/// Bytes the redb file takes on disk (its allocated blocks, not its length).
pub const STORE_SIZE_BYTES: &str = "dota_store_size_bytes";
pub const STORE_DEGRADED: &str = "dota_store_degraded";
/// Bytes the store takes. Labels: store (redb: the file; shared: the data bucket's stream
/// plus the bodies object store, with `--store nats`).
pub const STORE_BYTES: &str = "dota_store_bytes";
/// Resources removed by the store's upkeep. Labels: reason ([`EVICTION_REASONS`]).
pub const STORE_EVICTIONS: &str = "dota_store_evictions_total";
/// `reason` values of [`STORE_EVICTIONS`]: over `--store-max-gb`, older than
/// `--retention-days`, or (shared store) outlived every TTL by the margin.
pub const EVICTION_REASONS: [&str; 3] = ["size", "retention", "expired"];
/// Background tasks that panicked (a restartable one is started again after a pause). Labels:
/// task ([`TaskName`]).
pub const TASK_PANICS: &str = "dota_task_panics_total";
/// Ready/failed events published. Labels: outcome (ready, failed), result (stored, duplicate:
/// another instance stored it first, core_only: the stream was unreachable).
pub const EVENTS_PUBLISHED: &str = "dota_events_published_total";
/// Webhook delivery attempts. Labels: outcome (delivered, retrying, exhausted, gone, refused,
/// dropped).
pub const WEBHOOK_DELIVERIES: &str = "dota_webhook_deliveries_total";
/// Duration of one webhook delivery attempt (the HTTP call).
pub const WEBHOOK_ATTEMPT_SECONDS: &str = "dota_webhook_attempt_duration_seconds";
/// From an event's time (fetch or failure) to its successful delivery to an endpoint.
pub const WEBHOOK_LATENCY_SECONDS: &str = "dota_webhook_delivery_latency_seconds";
/// Webhook endpoints registered, and those disabled (410 or 5 days of failures).
pub const WEBHOOK_ENDPOINTS: &str = "dota_webhook_endpoints";
pub const WEBHOOK_ENDPOINTS_DISABLED: &str = "dota_webhook_endpoints_disabled";
/// `outcome` values of [`WEBHOOK_DELIVERIES`].
pub const WEBHOOK_OUTCOMES: [&str; 6] = [
    "delivered",
    "retrying",
    "exhausted",
    "gone",
    "refused",
    "dropped",
];

/// `status_class` values of [`UPSTREAM_REQUESTS`].
pub const STATUS_2XX: &str = "2xx";
pub const STATUS_4XX: &str = "4xx";
pub const STATUS_429: &str = "429";
pub const STATUS_5XX: &str = "5xx";
/// No HTTP answer (connect, timeout, cut body) or an unusable one (too large).
pub const STATUS_ERROR: &str = "error";
const STATUS_CLASSES: [&str; 5] = [STATUS_2XX, STATUS_4XX, STATUS_429, STATUS_5XX, STATUS_ERROR];
/// `result` values of [`CACHE_LOOKUPS`].
const CACHE_RESULTS: [&str; 3] = [CACHE_HIT, CACHE_MISS, CACHE_EXPIRED];
pub const CACHE_HIT: &str = "hit";
pub const CACHE_MISS: &str = "miss";
pub const CACHE_EXPIRED: &str = "expired";
/// `result` values of [`HOT_CACHE_LOOKUPS`].
pub const HOT_HIT: &str = "hit";
pub const HOT_MISS: &str = "miss";

/// `task` values of [`TASK_PANICS`]: every background task the supervisor (`crate::tasks`)
/// runs. Declared here, with the metric, so the label set stays small and fixed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TaskName {
    /// The warp server.
    Http,
    /// The queue status snapshot (and queue gauges).
    QueueStatus,
    /// The NATS and store gauges.
    Gauges,
    /// Team import completion.
    TeamWatch,
    /// The scheduled-work gate (`--refresh-reserve`).
    Reserve,
    /// With `--auto-refresh`, the refresh scheduler.
    RefreshScheduler,
    /// The last ready/failed events for pages that open.
    RecentEvents,
    /// The in-flight limits following the rate budget.
    InFlight,
    /// With `--store nats`: the replica's watch.
    Mirror,
    /// With `--store nats`: claim lease renewal.
    Leases,
    /// With `--store nats`: the shared budget's heartbeat.
    BudgetHeartbeat,
    /// The store's upkeep: access times, size bound, retention.
    StoreUpkeep,
    /// Handing free heap pages back to the OS (`app::memory`).
    MallocTrim,
    /// The webhook endpoints' KV watch.
    WebhookRegistry,
    /// Events to webhook deliveries.
    WebhookDispatch,
    /// The webhook delivery consumer.
    WebhookDelivery,
    /// One webhook delivery attempt.
    WebhookAttempt,
}

impl TaskName {
    pub const ALL: [TaskName; 17] = [
        TaskName::Http,
        TaskName::QueueStatus,
        TaskName::Gauges,
        TaskName::TeamWatch,
        TaskName::Reserve,
        TaskName::RefreshScheduler,
        TaskName::RecentEvents,
        TaskName::InFlight,
        TaskName::Mirror,
        TaskName::Leases,
        TaskName::BudgetHeartbeat,
        TaskName::StoreUpkeep,
        TaskName::MallocTrim,
        TaskName::WebhookRegistry,
        TaskName::WebhookDispatch,
        TaskName::WebhookDelivery,
        TaskName::WebhookAttempt,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            TaskName::Http => "http",
            TaskName::QueueStatus => "queue_status",
            TaskName::Gauges => "gauges",
            TaskName::TeamWatch => "team_watch",
            TaskName::Reserve => "reserve",
            TaskName::RefreshScheduler => "refresh_scheduler",
            TaskName::RecentEvents => "recent_events",
            TaskName::InFlight => "in_flight",
            TaskName::Mirror => "mirror",
            TaskName::Leases => "leases",
            TaskName::BudgetHeartbeat => "budget_heartbeat",
            TaskName::StoreUpkeep => "store_upkeep",
            TaskName::MallocTrim => "malloc_trim",
            TaskName::WebhookRegistry => "webhook_registry",
            TaskName::WebhookDispatch => "webhook_dispatch",
            TaskName::WebhookDelivery => "webhook_delivery",
            TaskName::WebhookAttempt => "webhook_attempt",
        }
    }
}

/// Latency buckets (seconds) shared by the HTTP and upstream histograms.
const LATENCY_BUCKETS: &[f64] = &[
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// Errors installing the recorder.
#[derive(Debug, thiserror::Error)]
#[error("metrics recorder: {0}")]
pub struct MetricsError(#[from] BuildError);

/// Installs the process-wide Prometheus recorder once and returns its render handle.
/// Later calls (several apps in one test process) get the same handle.
pub fn install() -> Result<PrometheusHandle, MetricsError> {
    static HANDLE: std::sync::Mutex<Option<PrometheusHandle>> = std::sync::Mutex::new(None);
    // Poisoned only if an install panicked; the slot then still says whether one succeeded.
    let mut slot = HANDLE
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(handle) = slot.as_ref() {
        return Ok(handle.clone());
    }
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_seconds".to_string()), LATENCY_BUCKETS)?
        .install_recorder()?;
    describe();
    describe_events();
    export_counters_at_zero();
    let _ = READ_PATH.set(ReadPathCounters::register());
    *slot = Some(handle.clone());
    Ok(handle)
}

/// The counters a read bumps on every request, registered once when the recorder is installed:
/// a poll then neither builds a label set nor looks its series up in the recorder's registry
/// (a hash, a shared lock and an allocation per call, measured in issue 19's profile).
struct ReadPathCounters {
    /// [`CACHE_LOOKUPS`] by the index of the kind in `ResourceKind::ALL`, then of the result
    /// in [`CACHE_RESULTS`].
    cache_lookups: [[Counter; CACHE_RESULTS.len()]; ResourceKind::ALL.len()],
    hot_hit: Counter,
    hot_miss: Counter,
    not_modified: Counter,
}

/// Set by [`install`]; empty before it (and in unit tests that install nothing), when the
/// functions below fall back to the macros, which then record nothing anyway.
static READ_PATH: OnceLock<ReadPathCounters> = OnceLock::new();

impl ReadPathCounters {
    fn register() -> Self {
        Self {
            cache_lookups: ResourceKind::ALL.map(|kind| {
                CACHE_RESULTS.map(|result| {
                    metrics::counter!(CACHE_LOOKUPS, "kind" => kind.as_str(), "result" => result)
                })
            }),
            hot_hit: metrics::counter!(HOT_CACHE_LOOKUPS, "result" => HOT_HIT),
            hot_miss: metrics::counter!(HOT_CACHE_LOOKUPS, "result" => HOT_MISS),
            not_modified: metrics::counter!(NOT_MODIFIED),
        }
    }
}

/// Counts one API cache lookup of `kind` with `result` ([`CACHE_HIT`], [`CACHE_MISS`] or
/// [`CACHE_EXPIRED`]) in [`CACHE_LOOKUPS`].
pub fn count_cache_lookup(kind: ResourceKind, result: &'static str) {
    let registered = READ_PATH.get().and_then(|c| {
        let k = ResourceKind::ALL.iter().position(|k| *k == kind)?;
        let r = CACHE_RESULTS.iter().position(|r| *r == result)?;
        Some(&c.cache_lookups[k][r])
    });
    match registered {
        Some(counter) => counter.increment(1),
        None => metrics::counter!(CACHE_LOOKUPS, "kind" => kind.as_str(), "result" => result)
            .increment(1),
    }
}

/// Counts one hot cache read in [`HOT_CACHE_LOOKUPS`]: a hit (memory) or a miss (redb).
pub fn count_hot_lookup(hit: bool) {
    match (READ_PATH.get(), hit) {
        (Some(c), true) => c.hot_hit.increment(1),
        (Some(c), false) => c.hot_miss.increment(1),
        (None, true) => metrics::counter!(HOT_CACHE_LOOKUPS, "result" => HOT_HIT).increment(1),
        (None, false) => metrics::counter!(HOT_CACHE_LOOKUPS, "result" => HOT_MISS).increment(1),
    }
}

/// Counts one request answered 304 in [`NOT_MODIFIED`].
pub fn count_not_modified() {
    match READ_PATH.get() {
        Some(c) => c.not_modified.increment(1),
        None => metrics::counter!(NOT_MODIFIED).increment(1),
    }
}

/// Gives every metric its `# HELP` line (the doc comments above, shortened); `promtool check
/// metrics` flags families without one.
pub fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram};
    describe_counter!(JOBS_QUEUED, "Jobs published to the queue.");
    describe_counter!(
        JOBS_STARTED,
        "Jobs taken from the queue by a worker, each delivery."
    );
    describe_counter!(JOBS_COMPLETED, "Jobs that ended with data stored.");
    describe_counter!(JOBS_FAILED, "Jobs that ended in a permanent failure.");
    describe_counter!(
        JOB_RETRIES,
        "Transient failures scheduled for another attempt."
    );
    describe_gauge!(QUEUE_DEPTH, "Jobs waiting in JetStream.");
    describe_gauge!(QUEUE_IN_FLIGHT, "Jobs delivered and not yet acked.");
    describe_counter!(UPSTREAM_REQUESTS, "Upstream HTTP requests by status class.");
    describe_histogram!(UPSTREAM_LATENCY, "Upstream request latency in seconds.");
    describe_gauge!(
        UPSTREAM_IN_FLIGHT,
        "Upstream calls in flight (waiting for budget or on the wire)."
    );
    describe_gauge!(
        UPSTREAM_IN_FLIGHT_LIMIT,
        "Adaptive limit on upstream calls in flight (budget left, rate x latency, --max-in-flight)."
    );
    describe_counter!(
        RATE_LIMIT_WAITS,
        "Times a call had to wait for rate budget."
    );
    describe_histogram!(
        RATE_LIMIT_WAIT_SECONDS,
        "Time each upstream call waited for rate budget, in seconds."
    );
    describe_gauge!(
        RATE_LIMIT_REMAINING,
        "Rate budget left in the current window."
    );
    describe_counter!(
        SHARED_BUDGET_GRANTS,
        "Upstream calls granted by the budget shared by every instance."
    );
    describe_counter!(
        SHARED_BUDGET_WAITS,
        "Times a call waited for the next window of the shared budget."
    );
    describe_counter!(
        SHARED_BUDGET_FALLBACKS,
        "Calls granted on this instance's share (limit / live instances) while the shared counters were unreachable."
    );
    describe_counter!(
        REPLICA_CHANGES,
        "Records of the shared data bucket read by the replica's watch: replay (catching up) or live; reconcile: resources a full replay dropped as no longer in the bucket."
    );
    describe_counter!(IMPORT_REPAIRS, "Stalled import children queued again.");
    describe_read_side();
}

/// The `# HELP` lines of the read side, the store and the service's own health.
/// The `# HELP` lines of the event and webhook metrics.
fn describe_events() {
    use metrics::{describe_counter, describe_gauge, describe_histogram};
    describe_counter!(
        EVENTS_PUBLISHED,
        "Ready/failed events published, by whether the stream stored them."
    );
    describe_counter!(WEBHOOK_DELIVERIES, "Webhook delivery attempts by outcome.");
    describe_histogram!(
        WEBHOOK_ATTEMPT_SECONDS,
        "Duration of one webhook delivery attempt in seconds."
    );
    describe_histogram!(
        WEBHOOK_LATENCY_SECONDS,
        "Seconds from an event's time to its delivery to an endpoint."
    );
    describe_gauge!(WEBHOOK_ENDPOINTS, "Webhook endpoints registered.");
    describe_gauge!(
        WEBHOOK_ENDPOINTS_DISABLED,
        "Webhook endpoints disabled (410 or 5 days of failures)."
    );
}

fn describe_read_side() {
    use metrics::{describe_counter, describe_gauge, describe_histogram};
    describe_counter!(CACHE_LOOKUPS, "Cache lookups from the API by result.");
    describe_gauge!(
        HOT_CACHE_BYTES,
        "Bytes of ready responses (stored bodies, plain bytes made for requests, team views) held in memory."
    );
    describe_gauge!(
        HOT_CACHE_CAPACITY_BYTES,
        "Bound of the hot cache in bytes (--hot-cache-mb)."
    );
    describe_gauge!(
        STORE_CACHE_CAPACITY_BYTES,
        "redb's page cache in bytes (--store-cache-mb)."
    );
    describe_gauge!(
        HOT_CACHE_ENTRIES,
        "Resources and team views held by the hot cache."
    );
    describe_counter!(
        HOT_CACHE_LOOKUPS,
        "Hot cache reads: hit (memory) or miss (redb)."
    );
    describe_counter!(
        NOT_MODIFIED,
        "Requests answered 304 because the client's copy was current."
    );
    describe_counter!(HTTP_REQUESTS, "HTTP requests served.");
    describe_histogram!(HTTP_LATENCY, "HTTP request latency in seconds.");
    describe_gauge!(
        NATS_CONNECTED,
        "1 when the NATS client is connected, else 0."
    );
    describe_counter!(
        NATS_SERVER_RESTARTS,
        "Restarts of the embedded nats-server after it died."
    );
    describe_gauge!(
        STORE_SIZE_BYTES,
        "Bytes the redb file takes on disk (its allocated blocks)."
    );
    describe_counter!(
        STORE_WRITES,
        "redb write transactions (claims, stores, failures, invalidations) by result."
    );
    describe_gauge!(
        STORE_DEGRADED,
        "1 while redb writes fail (reads served, misses bypass the store), else 0."
    );
    describe_gauge!(
        STORE_BYTES,
        "Bytes the store takes: the redb file, or the shared data bucket and object store."
    );
    describe_counter!(
        STORE_EVICTIONS,
        "Resources removed by the store's upkeep, by reason (size, retention, expired)."
    );
    describe_counter!(TASK_PANICS, "Background tasks that panicked, by task.");
}

/// Exports every counter series at zero from the start, for every combination of its (small,
/// fixed) labels: a series that appears only on its first event reads "No data" on a
/// dashboard, and `increase()` misses that first event. HTTP route counters are left to the
/// routes, whose status label is open-ended.
fn export_counters_at_zero() {
    use crate::domain::{Priority, Service};
    for outcome in WEBHOOK_OUTCOMES {
        metrics::counter!(WEBHOOK_DELIVERIES, "outcome" => outcome).increment(0);
    }
    for outcome in ["ready", "failed"] {
        for result in ["stored", "duplicate", "core_only"] {
            metrics::counter!(EVENTS_PUBLISHED, "outcome" => outcome, "result" => result)
                .increment(0);
        }
    }
    metrics::gauge!(WEBHOOK_ENDPOINTS).set(0.0);
    // Registered, so their (empty) series are on /metrics before the first delivery.
    let _ = metrics::histogram!(WEBHOOK_ATTEMPT_SECONDS);
    let _ = metrics::histogram!(WEBHOOK_LATENCY_SECONDS);
    metrics::gauge!(WEBHOOK_ENDPOINTS_DISABLED).set(0.0);
    metrics::counter!(NATS_SERVER_RESTARTS).increment(0);
    metrics::counter!(NOT_MODIFIED).increment(0);
    for phase in ["replay", "live", "reconcile"] {
        metrics::counter!(REPLICA_CHANGES, "phase" => phase).increment(0);
    }
    for kind in ["match", "player"] {
        metrics::counter!(IMPORT_REPAIRS, "kind" => kind).increment(0);
    }
    for task in TaskName::ALL.map(TaskName::as_str) {
        metrics::counter!(TASK_PANICS, "task" => task).increment(0);
    }
    for result in ["ok", "error"] {
        metrics::counter!(STORE_WRITES, "result" => result).increment(0);
    }
    for reason in EVICTION_REASONS {
        metrics::counter!(STORE_EVICTIONS, "reason" => reason).increment(0);
    }
    for result in [HOT_HIT, HOT_MISS] {
        metrics::counter!(HOT_CACHE_LOOKUPS, "result" => result).increment(0);
    }
    for kind in ResourceKind::ALL.map(ResourceKind::as_str) {
        for priority in Priority::ALL.map(Priority::as_str) {
            for name in [JOBS_QUEUED, JOBS_STARTED, JOBS_COMPLETED, JOBS_FAILED] {
                metrics::counter!(name, "kind" => kind, "priority" => priority).increment(0);
            }
        }
        metrics::counter!(JOB_RETRIES, "kind" => kind).increment(0);
        for result in CACHE_RESULTS {
            metrics::counter!(CACHE_LOOKUPS, "kind" => kind, "result" => result).increment(0);
        }
    }
    for service in Service::ALL.map(Service::as_str) {
        metrics::counter!(RATE_LIMIT_WAITS, "service" => service).increment(0);
        metrics::counter!(SHARED_BUDGET_GRANTS, "service" => service).increment(0);
        metrics::counter!(SHARED_BUDGET_FALLBACKS, "service" => service).increment(0);
        for window in ["minute", "day"] {
            metrics::counter!(SHARED_BUDGET_WAITS, "service" => service, "window" => window)
                .increment(0);
        }
        // Gauges too: the lanes set their real values when the app builds.
        metrics::gauge!(UPSTREAM_IN_FLIGHT, "service" => service).set(0.0);
        metrics::gauge!(UPSTREAM_IN_FLIGHT_LIMIT, "service" => service).set(0.0);
        for class in STATUS_CLASSES {
            metrics::counter!(UPSTREAM_REQUESTS, "service" => service, "status_class" => class)
                .increment(0);
        }
    }
}
