//! With `--store nats`, an instance's redb replica resumes its watch of the shared data bucket
//! after the last revision it applied: an instance that holds 10,000 resources and is
//! restarted reads only the records changed while it was down (counted on its `/metrics` as
//! `dota_replica_changes_total{phase="replay"}`), and serves the changed data. The instance
//! runs as a child process of the real binary on a real 3-node JetStream cluster, so its
//! `/metrics` are its own; the shared store is written through the crate's `SharedStore`, as
//! other instances would.

use std::time::Duration;

use crate::common;

use common::Fixtures;
use common::fleet::{Fleet, ProcessMember, REPLICAS};
use dota_orchestrator::domain::{PlayerId, Signature};
use dota_orchestrator::fixture_upstream::FixtureConfig;
use dota_orchestrator::shared::{SharedStore, SharedTuning};
use dota_orchestrator::store::{EntryMeta, Failure};
use futures::StreamExt;

/// Resources in the shared store before the first start.
const STORED: u64 = 10_000;
const FIRST_PLAYER: u64 = 510_000_000;
const REPLAY: &str = "dota_replica_changes_total{phase=\"replay\"}";
/// A full replay of 10,000 records (a body read each) on a loaded machine.
const FULL_REPLAY: Duration = Duration::from_secs(120);

fn player(i: u64) -> Signature {
    Signature::Player(PlayerId::new(FIRST_PLAYER + i).expect("player id"))
}

fn body(i: u64, version: u32) -> Vec<u8> {
    format!(
        r#"{{"profile":{{"account_id":{}}},"version":{version}}}"#,
        FIRST_PLAYER + i
    )
    .into_bytes()
}

fn now_ms() -> i64 {
    dota_orchestrator::store::now_ms()
}

/// Stores player `i`'s body `version` in the shared store, fetched now.
async fn store(shared: &SharedStore, i: u64, version: u32) {
    // The one stored form (gzip), as an instance makes it.
    let stored = dota_orchestrator::encoding::Encoded::of(&body(i, version)).expect("gzip");
    let meta = EntryMeta {
        fetched_at_ms: now_ms(),
        invalidated: false,
        bytes: stored.plain_len,
        tag: Some(stored.tag),
    };
    shared
        .put_entry(&player(i), meta, &stored.gzip, None)
        .await
        .expect("store an entry");
}

/// A handle on the fleet's shared store, as another instance holds it.
async fn writer(fleet: &Fleet) -> SharedStore {
    let client = async_nats::connect(fleet.cluster.node_url(0))
        .await
        .expect("connect to the cluster");
    SharedStore::open(
        async_nats::jetstream::new(client),
        usize::from(REPLICAS),
        "test-writer".to_string(),
        SharedTuning::default(),
    )
    .await
    .expect("open the shared store")
}

async fn wait_replayed(instance: &ProcessMember, records: f64, limit: Duration) {
    let replayed = common::wait_for(limit, || async {
        (instance.metric(REPLAY).await >= records).then_some(())
    })
    .await;
    let read = instance.metric(REPLAY).await;
    assert!(replayed.is_some(), "replayed {read} of {records} records");
}

async fn get(instance: &ProcessMember, i: u64) -> (u16, Option<String>, Vec<u8>) {
    let resp = reqwest::get(format!(
        "{}/api/players/{}/data",
        instance.base,
        FIRST_PLAYER + i
    ))
    .await
    .expect("GET");
    let status = resp.status().as_u16();
    let cache = resp
        .headers()
        .get("x-cache-status")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    (status, cache, resp.bytes().await.expect("body").to_vec())
}

#[actix_rt::test]
async fn a_restart_after_10k_changes_reads_only_what_changed_since_counted() {
    let fleet = Fleet::start(0, Fixtures::new(), FixtureConfig::default(), |_| {}).await;
    let shared = writer(&fleet).await;
    futures::stream::iter(0..STORED)
        .map(|i| store(&shared, i, 1))
        .buffer_unordered(64)
        .collect::<Vec<()>>()
        .await;
    let failed = Failure {
        reason: "gone upstream".to_string(),
        not_found: true,
        failed_at_ms: now_ms(),
        attempts: 1,
    };
    shared
        .put_failure(&player(STORED), &failed)
        .await
        .expect("record a failure");

    // First start, on an empty data dir: the replica has no position, so it replays every
    // record of the bucket (10,000 entries and the failure).
    let data_dir = tempfile::tempdir().expect("temp data dir");
    let mut first = fleet.spawn_process_in(data_dir.path()).await;
    wait_replayed(&first, (STORED + 1) as f64, FULL_REPLAY).await;
    assert_eq!(first.metric(REPLAY).await, (STORED + 1) as f64);
    let (status, cache, served) = get(&first, 7).await;
    assert_eq!((status, cache.as_deref()), (200, Some("fresh")));
    assert_eq!(served, body(7, 1));
    first.stop().await;

    // Meanwhile: one new resource, one refreshed, one invalidated, the failure cleared (a
    // delete marker).
    store(&shared, STORED + 1, 1).await;
    store(&shared, 3, 2).await;
    assert!(
        shared
            .invalidate(&player(5), None)
            .await
            .expect("invalidate")
    );
    shared
        .clear_failure(&player(STORED))
        .await
        .expect("clear the failure");

    // The restart reads those four records and nothing else.
    let second = fleet.spawn_process_in(data_dir.path()).await;
    wait_replayed(&second, 4.0, common::WAIT).await;
    let (status, _, served) = get(&second, STORED + 1).await;
    assert_eq!(
        (status, served),
        (200, body(STORED + 1, 1)),
        "the new resource"
    );
    let (status, _, served) = get(&second, 3).await;
    assert_eq!((status, served), (200, body(3, 2)), "the refreshed body");
    let (status, cache, served) = get(&second, 5).await;
    assert_eq!((status, served), (200, body(5, 1)), "the invalidated copy");
    let cache = cache.unwrap_or_default();
    assert!(cache.starts_with("stale"), "served as stale: {cache}");
    let (status, cache, _) = get(&second, 7).await;
    assert_eq!(
        (status, cache.as_deref()),
        (200, Some("fresh")),
        "unchanged"
    );
    assert_eq!(
        second.metric(REPLAY).await,
        4.0,
        "the restart read only the changes made while it was down"
    );
}
