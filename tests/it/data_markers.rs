//! Markers in the shared data bucket expire (`--data-marker-ttl-secs`): a cleared failure's
//! and an untracked import's as an eviction's (see `replica_resume` for what a replica away
//! longer does), and those an older version wrote without a TTL are given one by the
//! store's upkeep. Real 3-node JetStream cluster; the shared store is written through the
//! crate's `SharedStore`, or by hand where an older version's bucket is the point; the
//! upkeep runs in the real binary.

use std::time::Duration;

use crate::common;
use crate::replica_resume::{
    FIRST_PLAYER, MARKER_TTL_SECS, data_entry, data_stream, jetstream, now_ms, old_data_bucket,
    player, writer_with,
};

use async_nats::jetstream::kv;
use common::fleet::Fleet;
use common::{Fixtures, wait_for};
use dota_orchestrator::domain::Signature;
use dota_orchestrator::fixture_upstream::FixtureConfig;
use dota_orchestrator::shared::SharedTuning;
use dota_orchestrator::store::Failure;

/// Waits for the markers of `keys` to be gone (no message left); then the data bucket's
/// message count. `None` if they outlived their TTL by 30 s.
async fn markers_expired(js: &async_nats::jetstream::Context, keys: &[String]) -> Option<u64> {
    let ttl = Duration::from_secs(MARKER_TTL_SECS);
    common::wait_for(ttl + Duration::from_secs(30), || async {
        for key in keys {
            if data_entry(js, key).await.is_some() {
                return None;
            }
        }
        Some(data_stream(js).await.state.messages)
    })
    .await
}

#[actix_rt::test]
async fn a_cleared_failure_and_an_untracked_import_leave_markers_that_expire() {
    let fleet = Fleet::start(0, Fixtures::new(), FixtureConfig::default(), |_| {}).await;
    let js = jetstream(&fleet).await;
    let shared = writer_with(
        &fleet,
        SharedTuning::default().with_data_marker_ttl_secs(MARKER_TTL_SECS),
    )
    .await;
    let failed = player(7);
    let failure = Failure {
        reason: "upstream answered 500".to_string(),
        not_found: false,
        failed_at_ms: now_ms(),
        attempts: 3,
    };
    shared.put_failure(&failed, &failure).await.expect("put");
    let dropped: Signature = "team:8100:15000".parse().expect("team signature");
    let expired: Signature = "team:8101:15000".parse().expect("team signature");
    shared.put_tracked(&dropped, 1_000).await.expect("track");
    shared.put_tracked(&expired, 2_000).await.expect("track");
    let before = data_stream(&js).await.state.messages;

    shared.clear_failure(&failed).await.expect("clear");
    assert!(shared.remove_tracked(&dropped).await.expect("untrack"));
    assert!(
        shared
            .expire_tracked(&expired, 2_000)
            .await
            .expect("expire")
    );
    let keys = [
        format!("f.player.{}", FIRST_PLAYER + 7),
        "t.team.8100.15000".to_string(),
        "t.team.8101.15000".to_string(),
    ];
    for key in &keys {
        let marker = data_entry(&js, key).await.expect("a marker");
        assert_ne!(marker.operation, kv::Operation::Put, "{key}");
    }
    // A direct get may be answered by a copy a moment behind.
    let cleared = wait_for(common::WAIT, || async {
        shared
            .failure(&failed)
            .await
            .expect("read")
            .is_none()
            .then_some(())
    })
    .await;
    assert!(cleared.is_some(), "the failure is cleared");
    assert_eq!(data_stream(&js).await.state.messages, before);

    let gone = markers_expired(&js, &keys).await;
    assert_eq!(gone, Some(before - 3), "the three markers expire");
}

#[actix_rt::test]
async fn the_upkeep_gives_an_older_versions_markers_a_ttl() {
    let fleet = Fleet::start(0, Fixtures::new(), FixtureConfig::default(), |_| {}).await;
    let js = jetstream(&fleet).await;
    // The data bucket as a version before marker TTLs made and left it: an evicted player's
    // record and body purged, a cleared failure deleted, and a failure still in force.
    let old = old_data_bucket(&js).await;
    let evicted = FIRST_PLAYER + 40;
    let markers = [
        format!("m.player.{evicted}"),
        format!("b.player.{evicted}"),
        format!("f.player.{}", FIRST_PLAYER + 41),
    ];
    for key in &markers {
        old.put(key, "x".into()).await.expect("put");
    }
    old.purge(&markers[0]).await.expect("purge");
    old.purge(&markers[1]).await.expect("purge");
    old.delete(&markers[2]).await.expect("delete");
    let kept = format!("f.player.{}", FIRST_PLAYER + 42);
    let failure = Failure {
        reason: "upstream answered 500".to_string(),
        not_found: false,
        failed_at_ms: now_ms(),
        attempts: 3,
    };
    old.put(&kept, serde_json::to_vec(&failure).expect("JSON").into())
        .await
        .expect("put");
    let before = data_stream(&js).await.state.messages;
    assert_eq!(before, 4, "three markers and a failure");

    // An instance of this version, its upkeep every second: it holds the lease alone.
    let ttl_flags = ["--data-marker-ttl-secs", "10", "--store-upkeep-secs", "1"];
    let data_dir = tempfile::tempdir().expect("temp data dir");
    let _instance = fleet.spawn_process_with(data_dir.path(), &ttl_flags).await;
    let gone = markers_expired(&js, &markers).await;
    assert_eq!(gone, Some(1), "the old markers expire; the failure stays");
    let left = data_entry(&js, &kept).await.expect("the failure");
    assert_eq!(left.operation, kv::Operation::Put);
}
