//! A bounded shared store (`--store nats`): two instances on a real 3-node cluster with a small
//! `--store-max-gb` and more data than fits. One instance decides for the cluster (only it runs
//! the shared pass), the least recently requested resource goes from the shared store and from
//! both replicas, a tracked import is untouched, and the evicted resource is fetched again on
//! request. Entries past twice their kind's TTL go too (reason `expired`).

use crate::common;

use std::time::Duration;

use async_nats::jetstream::{self, kv};
use common::fixtures::{padded_match, ten_players};
use common::fleet::Fleet;
use common::{Fixtures, WAIT, wait_for};
use dota_orchestrator::app::DB_FILE;
use dota_orchestrator::config::{Settings, TeamSource, Ttls};
use dota_orchestrator::domain::{MatchId, Signature};
use dota_orchestrator::fixture_upstream::FixtureConfig;
use dota_orchestrator::store::Store;
use serde_json::Value;

const LEAGUE: u64 = 16435;
const TEAM: u64 = 9517508;
/// The tracked import's matches.
const TEAM_MATCHES: [u64; 2] = [7_100_001, 7_100_002];
/// Matches requested on their own, each with a large body.
const BIG_FIRST: u64 = 8_100_000;
const BIG_COUNT: u64 = 24;
/// Bytes of each big body: hex, so its stored (gzip) form is still about half of it.
const BIG_BYTES: usize = 250_000;
/// The bound: 24 bodies of ~135 KB stored are ~3.2 MB; 2 MB cannot hold them.
const MAX_BYTES: u64 = 2_000_000;

fn import_path() -> String {
    format!("/api/teams/{TEAM}/matches?leagueId={LEAGUE}")
}

fn big_match(id: u64) -> String {
    padded_match(id, BIG_BYTES)
}

fn fixtures() -> Fixtures {
    let fx = Fixtures::new();
    fx.opendota_team(TEAM, "Maple Syrup", &TEAM_MATCHES.map(|m| (m, LEAGUE)));
    for (i, m) in TEAM_MATCHES.iter().enumerate() {
        fx.match_with_players(*m, &ten_players(320_000_000 + i as u64 * 10));
    }
    for id in BIG_FIRST..BIG_FIRST + BIG_COUNT {
        fx.raw(&format!("opendota/matches/{id}.json"), big_match(id));
    }
    fx
}

fn bounded(s: &mut Settings) {
    s.team_source = Some(TeamSource::Opendota);
    s.bounds.upkeep_secs = 1;
    s.bounds.max_gb = Some(MAX_BYTES as f64 / 1e9);
}

fn short_match_ttl(s: &mut Settings) {
    s.team_source = Some(TeamSource::Opendota);
    s.bounds.upkeep_secs = 1;
    s.ttls.matches = Duration::from_secs(2);
}

fn sig(id: u64) -> Signature {
    Signature::Match(MatchId::new(id).unwrap())
}

async fn store_status(fleet: &Fleet, i: usize) -> Value {
    let resp = fleet.get(i, "/api/store").await;
    assert_eq!(resp.status(), 200);
    resp.json().await.unwrap()
}

/// GETs `path` on instance `i` until it answers 200.
async fn ready(fleet: &Fleet, i: usize, path: &str) -> Value {
    wait_for(WAIT, || async {
        let r = fleet.get(i, path).await;
        if r.status() != 200 {
            return None;
        }
        r.json::<Value>().await.ok()
    })
    .await
    .unwrap_or_else(|| panic!("{path} is served by instance {i}"))
}

/// Imports the tracked team through instance 0; returns every upstream path of it.
async fn import(fleet: &Fleet) -> Vec<String> {
    assert_eq!(fleet.post(0, &import_path()).await.status(), 202);
    let view = wait_for(WAIT, || async {
        common::import_complete(fleet.get(0, &import_path()).await).await
    })
    .await
    .expect("the import completes");
    let mut paths: Vec<String> = TEAM_MATCHES
        .iter()
        .map(|m| format!("/opendota/matches/{m}"))
        .collect();
    for p in view["players"].as_array().unwrap() {
        paths.push(format!(
            "/opendota/players/{}",
            p["accountId"].as_str().unwrap()
        ));
    }
    assert_eq!(paths.len(), 2 + 20);
    paths
}

/// Whether the shared data bucket holds a live record of match `id`.
async fn shared_has(fleet: &Fleet, id: u64) -> bool {
    live_key(fleet, "dota_data", format!("m.match.{id}")).await
}

/// Whether the shared access bucket holds a request time of match `id`.
async fn access_has(fleet: &Fleet, id: u64) -> bool {
    live_key(fleet, "dota_access", format!("match.{id}")).await
}

async fn live_key(fleet: &Fleet, bucket: &str, key: String) -> bool {
    let client = async_nats::connect(fleet.cluster.node_url(0))
        .await
        .unwrap();
    let kv = jetstream::new(client).get_key_value(bucket).await.unwrap();
    let entry = kv.entry(key).await.unwrap();
    entry.is_some_and(|e| e.operation == kv::Operation::Put)
}

/// The instance whose `shared.upkeep` shows passes that evicted for `reason`, once one does;
/// asserts no other instance ran a shared pass.
async fn the_one_that_evicted(fleet: &Fleet, reason: &str) -> usize {
    let leader = wait_for(Duration::from_secs(90), || async {
        for i in 0..2 {
            let s = store_status(fleet, i).await;
            let evicted = s["shared"]["upkeep"]["evictedTotal"][reason]
                .as_u64()
                .unwrap_or(0);
            if evicted > 0 {
                return Some(i);
            }
        }
        None
    })
    .await
    .unwrap_or_else(|| panic!("the shared store's upkeep evicts for {reason}"));
    let other = store_status(fleet, 1 - leader).await;
    assert_eq!(
        other["shared"]["upkeep"]["lastPass"],
        Value::Null,
        "{other}"
    );
    assert_eq!(other["shared"]["leader"], false);
    assert_eq!(store_status(fleet, leader).await["shared"]["leader"], true);
    leader
}

/// Stops both instances, then whether each replica file holds match `id`.
async fn in_replicas(fleet: &mut Fleet, id: u64) -> [bool; 2] {
    fleet.stop(0).await;
    fleet.stop(1).await;
    [0, 1].map(|i| {
        let path = fleet.members[i].data_dir.path().join(DB_FILE);
        let store = Store::open(&path, Ttls::default()).expect("the replica opens");
        store.meta(&sig(id)).expect("read").is_some()
    })
}

#[actix_rt::test]
async fn a_small_store_max_gb_is_kept_by_one_instance_for_the_cluster() {
    let mut fleet = Fleet::start(2, fixtures(), FixtureConfig::default(), bounded).await;
    let tracked = import(&fleet).await;
    // Request times as an instance shares them (unix ms): the first big match was last asked
    // for an hour ago, the last one now.
    let last = BIG_FIRST + BIG_COUNT - 1;
    let client = async_nats::connect(fleet.cluster.node_url(0))
        .await
        .unwrap();
    let access = jetstream::new(client)
        .get_key_value("dota_access")
        .await
        .unwrap();
    let now_ms = chrono::Utc::now().timestamp_millis();
    for (id, at) in [(BIG_FIRST, now_ms - 3_600_000), (last, now_ms)] {
        let key = format!("match.{id}");
        access.put(key, at.to_string().into()).await.unwrap();
    }
    for (n, id) in (BIG_FIRST..BIG_FIRST + BIG_COUNT).enumerate() {
        let i = n % 2;
        let path = format!("/api/matches/{id}");
        fleet.post(i, &path).await;
        ready(&fleet, i, &path).await;
    }
    let leader = the_one_that_evicted(&fleet, "size").await;
    let status = wait_for(Duration::from_secs(60), || async {
        let s = store_status(&fleet, leader).await;
        (s["shared"]["bytes"].as_u64().unwrap() <= MAX_BYTES).then_some(s)
    })
    .await
    .expect("the shared store is brought within its bound");
    assert_eq!(status["backend"], "nats");
    assert_eq!(status["shared"]["maxBytes"], MAX_BYTES);

    // The first big match (stored first, not requested since) left the shared store; the
    // last one, requested most recently, is still there.
    assert!(
        !shared_has(&fleet, BIG_FIRST).await,
        "evicted from the shared store"
    );
    assert!(shared_has(&fleet, last).await);
    // Its request time went with it; the last one's is kept.
    assert!(!access_has(&fleet, BIG_FIRST).await, "request time evicted");
    assert!(access_has(&fleet, last).await);
    // Both replicas dropped it too (their watches deliver the removal within milliseconds),
    // and kept the last one.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(in_replicas(&mut fleet, BIG_FIRST).await, [false, false]);
    assert_eq!(in_replicas(&mut fleet, last).await, [true, true]);

    fleet.restart(0, false, bounded).await;
    fleet.restart(1, false, bounded).await;
    // The tracked import was not touched: its view is whole, nothing of it fetched again.
    let view = wait_for(WAIT, || async {
        common::import_complete(fleet.get(1, &import_path()).await).await
    })
    .await
    .expect("the import is whole");
    assert_eq!(view["progress"]["matchesReady"], 2);
    for path in &tracked {
        assert_eq!(fleet.requests(path).await, 1, "{path} fetched once");
    }
    // The evicted match is fetched again on request.
    let first = format!("/api/matches/{BIG_FIRST}");
    assert_eq!(fleet.get(1, &first).await.status(), 202, "evicted");
    assert_eq!(ready(&fleet, 1, &first).await["match_id"], BIG_FIRST);
    assert_eq!(
        fleet
            .requests(&format!("/opendota/matches/{BIG_FIRST}"))
            .await,
        2
    );
}

#[actix_rt::test]
async fn shared_entries_past_twice_their_ttl_expire_and_a_tracked_import_stays() {
    let mut fleet = Fleet::start(2, fixtures(), FixtureConfig::default(), short_match_ttl).await;
    import(&fleet).await;
    let lone = format!("/api/matches/{BIG_FIRST}");
    fleet.post(1, &lone).await;
    ready(&fleet, 1, &lone).await;
    // Matches live 2 s: past 4 s an unprotected one goes.
    the_one_that_evicted(&fleet, "expired").await;
    wait_for(Duration::from_secs(30), || async {
        (!shared_has(&fleet, BIG_FIRST).await).then_some(())
    })
    .await
    .expect("the lone match expired from the shared store");
    // The tracked import's matches are older than that too, and stay.
    for m in TEAM_MATCHES {
        assert!(shared_has(&fleet, m).await, "tracked match {m} kept");
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(in_replicas(&mut fleet, BIG_FIRST).await, [false, false]);
    assert_eq!(in_replicas(&mut fleet, TEAM_MATCHES[0]).await, [true, true]);
    fleet.restart(0, false, short_match_ttl).await;
    assert_eq!(fleet.get(0, &lone).await.status(), 202, "expired");
    ready(&fleet, 0, &lone).await;
    assert_eq!(
        fleet
            .requests(&format!("/opendota/matches/{BIG_FIRST}"))
            .await,
        2
    );
}

#[actix_rt::test]
async fn an_instance_that_stops_hands_the_upkeep_lease_over_before_it_expires() {
    let mut fleet = Fleet::start(2, fixtures(), FixtureConfig::default(), bounded).await;
    let leader = wait_for(Duration::from_secs(30), || async {
        for i in 0..2 {
            if store_status(&fleet, i).await["shared"]["leader"] == true {
                return Some(i);
            }
        }
        None
    })
    .await
    .expect("one instance runs the shared upkeep");
    let other = 1 - leader;
    assert_eq!(store_status(&fleet, other).await["shared"]["leader"], false);
    let stopped = std::time::Instant::now();
    fleet.stop(leader).await;
    // The lease lives at least 10 s unless renewed; given back, the other instance takes it at
    // its next 1-second period.
    wait_for(Duration::from_secs(7), || async {
        (store_status(&fleet, other).await["shared"]["leader"] == true).then_some(())
    })
    .await
    .unwrap_or_else(|| {
        panic!(
            "the other instance leads {:?} after the leader stopped",
            stopped.elapsed()
        )
    });
}
