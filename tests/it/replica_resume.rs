//! With `--store nats`, an instance's redb replica resumes its watch of the shared data bucket
//! after the last revision it applied: an instance that holds 10,000 resources and is
//! restarted reads only the records changed while it was down (counted on its `/metrics` as
//! `dota_replica_changes_total{phase="replay"}`), and serves the changed data. An eviction's
//! markers expire (`--data-marker-ttl-secs`): a replica away for longer replays the whole
//! bucket and drops what was evicted meanwhile (`phase="reconcile"`), and the bucket's
//! message count drops back. The instance runs as a child process of the real binary on a
//! real 3-node JetStream cluster, so its `/metrics` are its own; the shared store is written
//! through the crate's `SharedStore`, as other instances would.

use std::time::Duration;

use crate::common;

use async_nats::jetstream::kv;
use common::Fixtures;
use common::fleet::{Fleet, ProcessMember, REPLICAS};
use dota_orchestrator::domain::{PlayerId, Signature};
use dota_orchestrator::fixture_upstream::FixtureConfig;
use dota_orchestrator::shared::{SharedStore, SharedTuning};
use dota_orchestrator::store::{EntryMeta, Failure};
use futures::StreamExt;

/// Resources in the shared store before the first start.
const STORED: u64 = 10_000;
pub(crate) const FIRST_PLAYER: u64 = 510_000_000;
const REPLAY: &str = "dota_replica_changes_total{phase=\"replay\"}";
const RECONCILED: &str = "dota_replica_changes_total{phase=\"reconcile\"}";
/// The marker TTL of the expiry test: a replica last current 9 s ago or less resumes.
pub(crate) const MARKER_TTL_SECS: u64 = 10;
/// A full replay of 10,000 records (a body read each) on a loaded machine.
const FULL_REPLAY: Duration = Duration::from_secs(120);

pub(crate) fn player(i: u64) -> Signature {
    Signature::Player(PlayerId::new(FIRST_PLAYER + i).expect("player id"))
}

fn body(i: u64, version: u32) -> Vec<u8> {
    format!(
        r#"{{"profile":{{"account_id":{}}},"version":{version}}}"#,
        FIRST_PLAYER + i
    )
    .into_bytes()
}

pub(crate) fn now_ms() -> i64 {
    dota_orchestrator::store::now_ms()
}

/// Stores player `i`'s body `version` in the shared store, fetched now. A write JetStream
/// turns away for a moment (a publish with no responder, seen with the machine loaded by a
/// parallel build) is tried again, as the job pipeline does.
async fn store(shared: &SharedStore, i: u64, version: u32) {
    // The one stored form (gzip), as an instance makes it.
    let stored = dota_orchestrator::encoding::Encoded::of(&body(i, version)).expect("gzip");
    let meta = EntryMeta {
        fetched_at_ms: now_ms(),
        invalidated: false,
        bytes: stored.plain_len,
        tag: Some(stored.tag),
    };
    let mut attempt = 0;
    loop {
        attempt += 1;
        match shared.put_entry(&player(i), meta, &stored.gzip, None).await {
            Ok(_) => return,
            Err(err) if attempt < 5 => {
                eprintln!("storing player {i} failed (attempt {attempt}): {err}; trying again");
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            }
            Err(err) => panic!("store an entry: {err:?}"),
        }
    }
}

/// A handle on the fleet's shared store, as another instance holds it.
async fn writer(fleet: &Fleet) -> SharedStore {
    writer_with(fleet, SharedTuning::default()).await
}

pub(crate) async fn writer_with(fleet: &Fleet, tuning: SharedTuning) -> SharedStore {
    SharedStore::open(
        jetstream(fleet).await,
        usize::from(REPLICAS),
        "test-writer".to_string(),
        tuning,
    )
    .await
    .expect("open the shared store")
}

pub(crate) async fn jetstream(fleet: &Fleet) -> async_nats::jetstream::Context {
    let client = async_nats::connect(fleet.cluster.node_url(0))
        .await
        .expect("connect to the cluster");
    async_nats::jetstream::new(client)
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

/// The data bucket's stream as the server reports it now.
pub(crate) async fn data_stream(
    js: &async_nats::jetstream::Context,
) -> async_nats::jetstream::stream::Info {
    js.get_stream("KV_dota_data")
        .await
        .expect("the data bucket's stream")
        .info()
        .await
        .expect("its info")
        .clone()
}

/// The data bucket's entry of player `i`'s record: a value, a marker, or `None` (no message).
async fn record_entry(js: &async_nats::jetstream::Context, i: u64) -> Option<kv::Entry> {
    data_entry(js, &format!("m.player.{}", FIRST_PLAYER + i)).await
}

/// The data bucket as a version before marker TTLs made it. Resolves once the bucket's stream has a leader: a put into a new R3 stream before that is
/// turned away ("no stream found"), as seen with the machine loaded.
pub(crate) async fn old_data_bucket(js: &async_nats::jetstream::Context) -> kv::Store {
    let bucket = js
        .create_key_value(kv::Config {
            bucket: "dota_data".to_string(),
            history: 1,
            num_replicas: usize::from(REPLICAS),
            ..Default::default()
        })
        .await
        .expect("the old data bucket");
    dota_orchestrator::bus::setup::wait_for_leader(js, "KV_dota_data").await;
    bucket
}

/// The data bucket's entry of `key`: a value, a marker, or `None` (no message).
pub(crate) async fn data_entry(
    js: &async_nats::jetstream::Context,
    key: &str,
) -> Option<kv::Entry> {
    js.get_key_value("dota_data")
        .await
        .expect("the data bucket")
        .entry(key)
        .await
        .expect("read the key")
}

#[actix_rt::test]
async fn a_replica_away_longer_than_eviction_markers_live_replays_and_drops_what_went() {
    let fixtures = Fixtures::new();
    fixtures.player(FIRST_PLAYER + 1);
    let fleet = Fleet::start(0, fixtures, FixtureConfig::default(), |_| {}).await;
    let js = jetstream(&fleet).await;

    // A data bucket made before its markers had a TTL (as an older version made it), with a
    // key in it: opening the shared store updates it in place.
    let old = old_data_bucket(&js).await;
    old.put("x.before", "kept".into()).await.expect("put");
    assert!(!data_stream(&js).await.config.allow_message_ttl);
    let ttl = Duration::from_secs(MARKER_TTL_SECS);
    let shared = writer_with(
        &fleet,
        SharedTuning::default().with_data_marker_ttl_secs(MARKER_TTL_SECS),
    )
    .await;
    let config = data_stream(&js).await.config;
    assert!(
        config.allow_message_ttl,
        "the bucket takes per-message TTLs"
    );
    assert_eq!(config.subject_delete_marker_ttl, Some(ttl));
    let kept = old.get("x.before").await.expect("read");
    assert_eq!(kept.as_deref(), Some(&b"kept"[..]), "its data is kept");

    for i in 0..3 {
        store(&shared, i, 1).await;
    }
    let ttl_flag = ["--data-marker-ttl-secs", "10"];
    let data_dir = tempfile::tempdir().expect("temp data dir");
    let mut b = fleet.spawn_process_with(data_dir.path(), &ttl_flag).await;
    wait_replayed(&b, 3.0, common::WAIT).await;
    let (status, cache, _) = get(&b, 1).await;
    assert_eq!((status, cache.as_deref()), (200, Some("fresh")));

    // Away for less than the TTL: the restart resumes after its position. A change it applies
    // just before it stops makes it current then.
    store(&shared, 0, 2).await;
    common::wait_for(common::WAIT, || async {
        (get(&b, 0).await.2 == body(0, 2)).then_some(())
    })
    .await
    .expect("the replica applies the change");
    b.stop().await;
    store(&shared, 2, 2).await;
    let mut b = fleet.spawn_process_with(data_dir.path(), &ttl_flag).await;
    wait_replayed(&b, 1.0, common::WAIT).await;
    assert_eq!(get(&b, 2).await.2, body(2, 2));
    assert_eq!(b.metric(REPLAY).await, 1.0, "resumed: read only the change");
    assert_eq!(b.metric(RECONCILED).await, 0.0);

    // Away for longer: player 1 is evicted meanwhile, and its markers expire.
    b.stop().await;
    let before = data_stream(&js).await.state.messages;
    assert!(shared.evict(&player(1)).await.expect("evict"), "evicted");
    let marker = record_entry(&js, 1).await.expect("a purge marker");
    assert_eq!(marker.operation, kv::Operation::Purge);
    assert_eq!(
        data_stream(&js).await.state.messages,
        before,
        "the markers replace the record and the body"
    );
    let gone = common::wait_for(ttl + Duration::from_secs(20), || async {
        let state = data_stream(&js).await.state;
        (record_entry(&js, 1).await.is_none() && state.messages == before - 2).then_some(())
    })
    .await;
    assert!(
        gone.is_some(),
        "the markers expire: {} messages of {before}",
        data_stream(&js).await.state.messages
    );
    // A replica resuming after its position would not see the removal now: the expired
    // markers sat between its position and the bucket's end, which moved neither end.
    let state = data_stream(&js).await.state;
    assert!(
        state.first_sequence <= 2,
        "first sequence {}",
        state.first_sequence
    );

    let b = fleet.spawn_process_with(data_dir.path(), &ttl_flag).await;
    let reconciled = common::wait_for(common::WAIT, || async {
        (b.metric(RECONCILED).await >= 1.0).then_some(())
    })
    .await;
    assert!(reconciled.is_some(), "the replay drops the evicted player");
    assert_eq!(b.metric(RECONCILED).await, 1.0);
    assert_eq!(
        b.metric(REPLAY).await,
        2.0,
        "a full replay of the 2 records left"
    );
    let (status, _, _) = get(&b, 1).await;
    assert_eq!(status, 202, "not served from the replica: queued as a miss");
    let (status, cache, served) = get(&b, 0).await;
    assert_eq!((status, cache.as_deref()), (200, Some("fresh")));
    assert_eq!(served, body(0, 2), "the others are kept");
    // Fetched again from the upstream.
    let resp = reqwest::Client::new()
        .post(format!("{}/api/players/{}/data", b.base, FIRST_PLAYER + 1))
        .send()
        .await
        .expect("POST");
    assert!(resp.status().is_success(), "{}", resp.status());
    let fetched = common::wait_for(common::WAIT, || async {
        let (status, _, served) = get(&b, 1).await;
        (status == 200).then_some(served)
    })
    .await
    .expect("fetched again");
    let fetched: serde_json::Value = serde_json::from_slice(&fetched).expect("JSON");
    assert_eq!(fetched["profile"]["account_id"], FIRST_PLAYER + 1);
    assert_eq!(
        fleet
            .requests(&format!("/opendota/players/{}", FIRST_PLAYER + 1))
            .await,
        1
    );
}
