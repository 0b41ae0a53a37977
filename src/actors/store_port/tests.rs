//! The local backend against a real CacheKeeper on a temporary redb. Its one write is the
//! commit point, so a failed write leaves nothing half done, and the retry the caller makes
//! finds the state it needs. The shared backend's order (shared first, then the replica) is
//! tested on a real cluster: see `tests/it/scale_out.rs`,
//! `a_write_whose_replica_half_fails_is_seen_everywhere_and_healed_by_the_mirror`.

use actix::SyncArbiter;

use super::*;
use crate::actors::cache_keeper::{Prepare, RequeueAll};
use crate::config::Ttls;
use crate::domain::{Fanout, LeagueId, MatchId, PlayerId, Priority};

struct Local {
    _dir: tempfile::TempDir,
    store: Store,
    keeper: Addr<CacheKeeper>,
    port: StorePort,
}

fn local() -> Local {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("t.redb"), Ttls::default()).unwrap();
    let keeper_store = store.clone();
    let keeper = SyncArbiter::start(1, move || CacheKeeper::new(keeper_store.clone()));
    Local {
        port: StorePort::new(keeper.clone(), store.clone(), None),
        _dir: dir,
        store,
        keeper,
    }
}

impl Local {
    /// Claims `sig` as a request would.
    async fn claim(&self, sig: Signature) -> Job {
        let prepare = Prepare {
            signature: sig,
            force: false,
            retry_failed: true,
            priority: Priority::Interactive,
            fanout: Fanout::All,
        };
        let prepared = self.keeper.send(prepare).await.unwrap().unwrap();
        prepared.claimed.expect("claimed")
    }

    fn fail_writes(&self, fail: bool) {
        self.store.health().set_fail_writes(fail);
    }
}

fn a_match() -> Signature {
    Signature::Match(MatchId::new(7).unwrap())
}

fn an_import() -> Signature {
    Signature::Team(TeamId::new(9).unwrap(), LeagueId::new(16435).unwrap())
}

fn entry(children: Vec<Child>) -> Entry {
    Entry {
        stored: crate::encoding::Encoded::of(br#"{"match_id":7}"#).unwrap(),
        summary: None,
        children,
    }
}

fn failure() -> Failure {
    Failure {
        reason: "gone".into(),
        not_found: true,
        failed_at_ms: 1,
        attempts: 1,
    }
}

#[actix_rt::test]
async fn a_result_whose_write_fails_keeps_its_claim_so_the_retry_stores_it() {
    let t = local();
    let sig = a_match();
    let job = t.claim(sig).await;
    assert!(t.port.confirm_claim(&job).await.unwrap());
    assert!(t.port.take_over(&job, 1).await.unwrap());
    let child = Child::new(Signature::Player(PlayerId::new(5).unwrap()));

    t.fail_writes(true);
    assert!(t.port.store(&job, entry(vec![child])).await.is_err());
    assert_eq!(t.store.meta(&sig).unwrap(), None, "nothing written");
    t.fail_writes(false);

    // The job is handed back and delivered again: still current, it runs and stores.
    assert!(t.port.take_over(&job, 2).await.unwrap());
    let completed = t.port.store(&job, entry(vec![child])).await.unwrap();
    let completed = completed.expect("stored");
    assert_eq!(
        completed.children.len(),
        1,
        "its fan-out is claimed with it"
    );
    assert!(t.store.meta(&sig).unwrap().is_some());
    assert!(
        !t.port.take_over(&job, 3).await.unwrap(),
        "its claim ended in the transaction that stored it"
    );
}

#[actix_rt::test]
async fn a_failure_whose_write_fails_is_recorded_on_the_retry() {
    let t = local();
    let sig = a_match();
    let job = t.claim(sig).await;
    t.fail_writes(true);
    assert!(t.port.fail(&job, failure()).await.is_err());
    t.fail_writes(false);
    assert_eq!(t.store.failure(&sig).unwrap(), None);
    assert!(t.port.take_over(&job, 2).await.unwrap());
    assert!(t.port.fail(&job, failure()).await.unwrap());
    assert_eq!(t.store.failure(&sig).unwrap(), Some(failure()));
}

#[actix_rt::test]
async fn a_superseded_job_writes_nothing() {
    let t = local();
    let sig = a_match();
    let job = t.claim(sig).await;
    // A restart gives every claim a new generation: this job is stale now.
    t.keeper.send(RequeueAll).await.unwrap().unwrap();
    assert!(!t.port.take_over(&job, 2).await.unwrap());
    assert!(
        t.port
            .store(&job, entry(Vec::new()))
            .await
            .unwrap()
            .is_none()
    );
    assert!(!t.port.fail(&job, failure()).await.unwrap());
    assert_eq!(t.store.meta(&sig).unwrap(), None);
    assert_eq!(t.store.failure(&sig).unwrap(), None);
}

#[actix_rt::test]
async fn tracking_is_written_once_and_a_later_request_outlives_an_expiry() {
    let t = local();
    let import = an_import();
    t.port.track(import, 1_000).await.unwrap();
    assert_eq!(t.store.tracked_at(&import).unwrap(), Some(1_000));
    t.port.track(import, 2_000).await.unwrap();
    assert!(!t.port.expire_tracked(import, 1_000).await.unwrap());
    assert_eq!(t.store.tracked_at(&import).unwrap(), Some(2_000));
    assert!(t.port.expire_tracked(import, 2_000).await.unwrap());
    assert_eq!(t.store.tracked_at(&import).unwrap(), None);

    t.port.track(import, 3_000).await.unwrap();
    assert!(t.port.untrack(import).await.unwrap());
    assert!(!t.port.untrack(import).await.unwrap(), "no longer tracked");

    t.fail_writes(true);
    assert!(t.port.track(import, 4_000).await.is_err());
    t.fail_writes(false);
    assert_eq!(t.store.tracked_at(&import).unwrap(), None);
}

#[actix_rt::test]
async fn an_invalidation_marks_the_stored_copy_and_a_failed_one_leaves_it() {
    let t = local();
    let sig = a_match();
    let job = t.claim(sig).await;
    t.port.store(&job, entry(Vec::new())).await.unwrap();

    t.fail_writes(true);
    assert!(t.port.invalidate(vec![sig], Vec::new()).await.is_err());
    t.fail_writes(false);
    assert!(!t.store.meta(&sig).unwrap().unwrap().invalidated);

    let done = t.port.invalidate(vec![sig], Vec::new()).await.unwrap();
    assert_eq!(done.signatures, vec![(sig, true)]);
    assert!(t.store.meta(&sig).unwrap().unwrap().invalidated);
}

#[actix_rt::test]
async fn with_one_store_this_instance_announces_every_completion() {
    let t = local();
    let import = an_import();
    assert!(t.port.mark_announced(import, 10).await.unwrap());
    assert_eq!(t.store.announced(&import).unwrap(), Some(10));
    t.fail_writes(true);
    assert!(t.port.mark_announced(import, 20).await.is_err());
    t.fail_writes(false);
    assert_eq!(
        t.store.announced(&import).unwrap(),
        Some(10),
        "announced on the next try"
    );
}
