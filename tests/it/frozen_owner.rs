//! The chaos soak's lost work (bench/soak.sh, issue 19), each on a real 3-node JetStream
//! cluster with `--store nats`: a claim that outlives what its owner does with it must never
//! leave a resource unfetched. An instance frozen (SIGSTOP) past its claims' lease goes on
//! with its jobs when it wakes, and stores what they fetch; a forced refresh that meets a
//! claim whose job already stored the resource before the force refetches it all the same.

use std::time::Duration;

use crate::common;

use common::fleet::{Fleet, LEASE_SECS, REPLICAS};
use common::{Fixtures, wait_for};
use dota_orchestrator::config::Settings;
use dota_orchestrator::domain::{Fanout, Job, MatchId, Priority, Signature};
use dota_orchestrator::fixture_upstream::FixtureConfig;
use dota_orchestrator::shared::{Claim, SharedStore, SharedTuning};
use serde_json::Value;

const TEAM: u64 = 9517508;
const LEAGUE: u64 = 16435;
const FIRST_MATCH: u64 = 8_200_000_000;
const FIRST_PLAYER: u64 = 430_000_000;

fn team_fixtures(matches: u64) -> Fixtures {
    let fx = Fixtures::new();
    fx.league_team(
        TEAM,
        "Maple Syrup",
        LEAGUE,
        matches,
        4,
        (FIRST_MATCH, FIRST_PLAYER),
    );
    fx
}

fn team_path() -> String {
    format!("/api/teams/{TEAM}/matches?leagueId={LEAGUE}")
}

fn progress_path() -> String {
    format!("{}&include=progress", team_path())
}

fn no_tweak(_: &mut Settings) {}

async fn complete_at(base: &str, limit: Duration) -> Option<Value> {
    wait_for(limit, || async {
        let resp = reqwest::get(format!("{base}{}", progress_path()))
            .await
            .ok()?;
        common::import_complete(resp).await
    })
    .await
}

async fn progress_at(base: &str) -> Value {
    let resp = reqwest::get(format!("{base}{}", progress_path()))
        .await
        .expect("GET progress");
    resp.json::<Value>().await.expect("JSON")["progress"].clone()
}

/// The only worker is frozen mid-import for three leases: every claim it holds lapses while
/// its jobs are in hand. Woken, it finishes them: the import completes, each resource fetched
/// once. (Before: each job whose claim had lapsed dropped its result and was acked, and the
/// import stayed incomplete for good.)
#[actix_rt::test]
async fn an_instance_frozen_past_its_leases_still_stores_what_its_jobs_fetch() {
    let slow = FixtureConfig {
        latency: Duration::from_millis(400),
        ..FixtureConfig::default()
    };
    let fleet = Fleet::start(0, team_fixtures(6), slow, no_tweak).await;
    let worker = fleet.spawn_process().await;
    let resp = fleet
        .http
        .post(format!("{}{}", worker.base, team_path()))
        .send()
        .await
        .expect("POST");
    assert_eq!(resp.status(), 202);
    // Freeze it with jobs in hand: the team page and some matches fetched, players under way.
    wait_for(common::WAIT, || async {
        let total = fleet.upstream_stats().await["total"].as_u64()?;
        (total >= 10).then_some(())
    })
    .await
    .expect("the import starts");
    worker.freeze(true);
    // The freeze itself is what is tested: no condition to wait on but time passing.
    tokio::time::sleep(Duration::from_secs(3 * LEASE_SECS)).await;
    worker.freeze(false);
    let done = complete_at(&worker.base, Duration::from_secs(60)).await;
    let stats = fleet.upstream_stats().await;
    assert!(
        done.is_some(),
        "the import completes after the freeze: {} {stats}",
        progress_at(&worker.base).await
    );
    assert_eq!(done.unwrap()["progress"]["playersTotal"], 60);
    let repeated = fleet.repeated_requests().await;
    assert!(repeated.is_empty(), "fetched more than once: {repeated:?}");
}

/// A claim on a match held by an instance whose job stored the match before a forced refresh
/// of its team, and that has not ended it yet (frozen between its store and its release). The
/// replicas copy that claim within milliseconds (their mirror follows the claims bucket). The
/// forced refresh refetches the match all the same, and every instance sees the team complete
/// before that claim's lease would have ended. (Before: the match was marked invalidated and
/// no job queued, on every instance for good; or, on an instance whose replica had copied the
/// claim, invalidated there only.)
#[actix_rt::test]
async fn a_forced_refresh_refetches_a_match_whose_claim_outlived_its_store() {
    let fleet = Fleet::start(2, team_fixtures(4), FixtureConfig::default(), no_tweak).await;
    assert_eq!(fleet.post(0, &team_path()).await.status(), 202);
    for i in 0..2 {
        let done = complete_at(fleet.base(i), common::WAIT).await;
        assert!(done.is_some(), "the import completes on instance {i}");
    }
    let held = Signature::Match(MatchId::new(FIRST_MATCH).expect("match id"));
    let path = format!("/opendota/matches/{FIRST_MATCH}");
    assert_eq!(fleet.requests(&path).await, 1);

    // The frozen owner: its job was queued before the match was stored, and its claim lives
    // a minute (longer than this test waits) since nobody renews or ends it.
    let client = async_nats::connect(fleet.cluster.node_url(0))
        .await
        .expect("connect to the cluster");
    let owner = SharedStore::open(
        async_nats::jetstream::new(client),
        usize::from(REPLICAS),
        "frozen-owner".to_string(),
        SharedTuning::default().with_lease_secs(60),
    )
    .await
    .expect("open the shared store");
    let job = Job {
        signature: held,
        generation: 1,
        priority: Priority::Bulk,
        forced_at_ms: None,
        fanout: Fanout::All,
        queued_at_ms: 0,
    };
    assert_eq!(owner.claim(&job).await.expect("claim"), Claim::Made);
    let force = format!("{}&force=true", team_path());
    assert_eq!(fleet.post(1, &force).await.status(), 202);
    let refetched = wait_for(Duration::from_secs(40), || async {
        (fleet.requests(&path).await >= 2).then_some(())
    })
    .await;
    assert!(
        refetched.is_some(),
        "the force refetches the match: {}",
        progress_at(fleet.base(1)).await
    );
    for i in 0..2 {
        let done = complete_at(fleet.base(i), common::WAIT).await;
        assert!(
            done.is_some(),
            "the forced refresh completes on instance {i}: {}",
            progress_at(fleet.base(i)).await
        );
    }
    assert_eq!(
        fleet.requests(&path).await,
        2,
        "refetched once by the force"
    );
}
