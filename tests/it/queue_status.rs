//! `/api/queue/status` is served from a snapshot the service refreshes in the background:
//! every body says when its snapshot was taken (`asOf`) and is never much older than the
//! answer; the body has the shape the replaced system's dashboard reads (`activeSignatures` a
//! count, the list in `activeSignaturesList`, `length`, `processing`); posted work shows up in
//! a later snapshot, a running import (and a job waiting to be retried) shows as processing
//! and a drained queue as idle; when JetStream cannot be read the route turns 503 rather than
//! serve old numbers, and recovers.

use crate::common;

use std::cell::RefCell;
use std::process::Command;
use std::time::Duration;

use chrono::{DateTime, Utc};
use common::fixtures::{row, ten_players};
use common::queue::as_of;
use common::{Fixtures, TestApp, WAIT, spawn_app, spawn_app_with, wait_for};
use dota_orchestrator::fixture_upstream::FixtureConfig;
use serde_json::Value;

/// How old a snapshot may be relative to the answer carrying it: the "at most 1 s",
/// plus a margin for a loaded test machine. A freshness property, not a benchmark.
const MAX_AGE: chrono::TimeDelta = chrono::TimeDelta::milliseconds(1000 + 1000);

fn timestamp(status: &Value) -> DateTime<Utc> {
    let raw = status["timestamp"].as_str().expect("timestamp string");
    DateTime::parse_from_rfc3339(raw)
        .expect("timestamp is RFC 3339")
        .with_timezone(&Utc)
}

/// `asOf` is RFC 3339 in UTC with milliseconds, and at most [`MAX_AGE`] before `timestamp`.
fn assert_fresh(status: &Value) -> DateTime<Utc> {
    let raw = status["asOf"]
        .as_str()
        .unwrap_or_else(|| panic!("asOf: {status}"));
    let format = chrono::NaiveDateTime::parse_from_str(raw, "%Y-%m-%dT%H:%M:%S%.3fZ");
    assert!(
        format.is_ok() && raw.len() == "2026-11-05T10:00:00.123Z".len(),
        "asOf is not RFC 3339 UTC with millis: {raw}"
    );
    let (taken, answered) = (as_of(status).expect("asOf parses"), timestamp(status));
    assert!(taken <= answered, "asOf after the answer: {status}");
    assert!(
        answered - taken <= MAX_AGE,
        "snapshot {} ms old: {status}",
        (answered - taken).num_milliseconds()
    );
    taken
}

/// Per service: `activeSignatures` counts `activeSignaturesList` (and equals `inFlight`),
/// `length` is `queued`, `processing` is "in flight or unacked".
fn assert_consistent(status: &Value) {
    let services = status["services"].as_object().expect("services");
    // OpenDota, Dotabuff, Steam, STRATZ.
    assert_eq!(services.len(), 4, "{status}");
    for (name, s) in services {
        let count = s["activeSignatures"]
            .as_u64()
            .unwrap_or_else(|| panic!("{name}.activeSignatures is a number: {status}"));
        let list = s["activeSignaturesList"]
            .as_array()
            .unwrap_or_else(|| panic!("{name}.activeSignaturesList: {status}"));
        assert_eq!(count, list.len() as u64, "{name}: {status}");
        assert_eq!(s["inFlight"], count, "{name}: {status}");
        let length = s["length"].as_u64().expect("length is a number");
        assert_eq!(s["queued"], length, "{name}: {status}");
        let busy = count > 0 || s["unacked"].as_u64().expect("unacked") > 0;
        assert_eq!(s["processing"], busy, "{name}: {status}");
    }
}

async fn status(t: &TestApp) -> Value {
    let resp = t.get("/api/queue/status").await;
    assert_eq!(resp.status(), 200);
    resp.json().await.expect("status JSON")
}

#[actix_rt::test]
async fn every_body_carries_a_fresh_snapshot_that_is_refreshed_in_the_background() {
    let t = spawn_app(Fixtures::new()).await;
    // Three different snapshots without any request that could trigger one: the collector
    // refreshes by itself, and each answer is fresh relative to its own timestamp.
    let seen = RefCell::new(Vec::new());
    let refreshed = wait_for(WAIT, || async {
        let s = status(&t).await;
        let taken = assert_fresh(&s);
        assert_consistent(&s);
        let mut seen = seen.borrow_mut();
        if seen.last() != Some(&taken) {
            seen.push(taken);
        }
        (seen.len() >= 3).then_some(())
    })
    .await;
    let seen = seen.into_inner();
    assert!(refreshed.is_some(), "snapshots seen: {seen:?}");
    assert!(seen.is_sorted(), "asOf goes forward: {seen:?}");
    let idle = status(&t).await;
    for s in idle["services"].as_object().unwrap().values() {
        assert_eq!(s["activeSignatures"], 0, "{idle}");
        assert_eq!(s["activeSignaturesList"], serde_json::json!([]), "{idle}");
        assert_eq!(s["length"], 0, "{idle}");
        assert_eq!(s["processing"], false, "{idle}");
    }
    t.shutdown().await;
}

#[actix_rt::test]
async fn posted_work_shows_in_the_next_snapshot() {
    let fx = Fixtures::new();
    fx.match_with_players(7001, &[None; 10]);
    // Slow enough that the job is still queued or being fetched when the next snapshot is read.
    let upstream = FixtureConfig {
        latency: Duration::from_secs(3),
        ..Default::default()
    };
    let t = spawn_app_with(fx, upstream, |_| {}).await;
    let before = t.queue_status_now().await;
    assert_eq!(
        before["services"]["opendota"]["processing"], false,
        "{before}"
    );
    assert_eq!(t.post("/api/matches/7001").await.status(), 202);
    let after = t.queue_status_now().await;
    assert_fresh(&after);
    assert_consistent(&after);
    let od = &after["services"]["opendota"];
    let fetching = od["activeSignaturesList"] == serde_json::json!(["match:7001"]);
    assert!(
        od["length"] == 1 || fetching,
        "the posted match is queued or being fetched: {after}"
    );
    t.get_when_ready("/api/matches/7001").await;
    let done = t.queue_status_now().await;
    assert_eq!(done["services"]["opendota"]["completed"], 1, "{done}");
    t.shutdown().await;
}

#[actix_rt::test]
async fn a_running_import_shows_as_processing_and_a_drained_queue_as_idle() {
    const TEAM: u64 = 4711;
    const LEAGUE: u64 = 16435;
    let fx = Fixtures::new();
    let matches = [7101, 7102, 7103];
    fx.dotabuff_team(
        TEAM,
        "Slow Starters",
        &[matches.iter().map(|m| row(*m, LEAGUE)).collect()],
    );
    for (i, m) in matches.iter().enumerate() {
        fx.match_with_players(*m, &ten_players(71_000 + 100 * i as u64));
    }
    // Team page, then matches, then 30 players, each answer 500 ms late: the players go at
    // once (the in-flight limit is far above 30), so the work is three sequential round trips,
    // 1.5 s, three snapshot periods (`REFRESH`, 0.5 s) even when a loaded machine delays one.
    let upstream = FixtureConfig {
        latency: Duration::from_millis(500),
        ..Default::default()
    };
    let t = spawn_app_with(fx, upstream, |_| {}).await;
    let import = format!("/api/teams/{TEAM}/matches?leagueId={LEAGUE}");
    assert_eq!(t.post(&import).await.status(), 202);
    let busy = wait_for(WAIT, || async {
        let s = status(&t).await;
        assert_fresh(&s);
        assert_consistent(&s);
        let od = &s["services"]["opendota"];
        (od["processing"] == true && od["activeSignatures"].as_u64() > Some(0)).then_some(s)
    })
    .await
    .expect("some answer shows OpenDota work in progress");
    let od = &busy["services"]["opendota"];
    assert!(
        od["activeSignaturesList"]
            .as_array()
            .unwrap()
            .iter()
            .all(|sig| sig
                .as_str()
                .is_some_and(|s| s.starts_with("match:") || s.starts_with("player:"))),
        "{busy}"
    );

    t.wait_drained().await;
    let idle = t.queue_status_now().await;
    assert_fresh(&idle);
    assert_consistent(&idle);
    for (name, s) in idle["services"].as_object().unwrap() {
        assert_eq!(s["processing"], false, "{name}: {idle}");
        assert_eq!(s["length"], 0, "{name}: {idle}");
        assert_eq!(s["activeSignatures"], 0, "{name}: {idle}");
    }
    assert_eq!(
        idle["services"]["opendota"]["completed"], 33,
        "three matches and their thirty players: {idle}"
    );
    t.shutdown().await;
}

#[actix_rt::test]
async fn a_job_waiting_to_be_retried_counts_as_processing() {
    let fx = Fixtures::new();
    fx.match_with_players(7201, &[None; 10]);
    // Retried after 1-3 s (the delay is jittered): a window in which the job is delivered and
    // not acked, yet nobody fetches it.
    let t = spawn_app_with(fx, FixtureConfig::default(), |s| {
        s.retry.base_delay = Duration::from_secs(2);
        s.retry.max_delay = Duration::from_secs(2);
    })
    .await;
    t.fault("/opendota/matches/7201", 500, Some(1), None).await;
    assert_eq!(t.post("/api/matches/7201").await.status(), 202);
    let waiting = wait_for(WAIT, || async {
        let s = status(&t).await;
        assert_consistent(&s);
        let od = &s["services"]["opendota"];
        (od["inFlight"] == 0 && od["unacked"] == 1).then_some(s)
    })
    .await
    .expect("a snapshot of the job waiting out its retry delay");
    assert_eq!(
        waiting["services"]["opendota"]["processing"], true,
        "{waiting}"
    );
    t.get_when_ready("/api/matches/7201").await;
    t.shutdown().await;
}

/// Sends SIGCONT to the process when dropped, so a failing test does not leave nats-server
/// stopped behind it.
struct Resume(u32);

impl Resume {
    fn now(&self) {
        signal(self.0, "-CONT");
    }
}

impl Drop for Resume {
    fn drop(&mut self) {
        // No assertion here: this may run while the test is already panicking.
        let _ = Command::new("kill")
            .args(["-CONT", &self.0.to_string()])
            .status();
    }
}

fn signal(pid: u32, sig: &str) {
    let status = Command::new("kill").args([sig, &pid.to_string()]).status();
    assert!(status.is_ok_and(|s| s.success()), "kill {sig} {pid}");
}

#[actix_rt::test]
async fn status_is_503_while_jetstream_cannot_be_read_and_recovers() {
    let t = spawn_app(Fixtures::new()).await;
    status(&t).await;
    let pid = t.app().embedded_nats_pid().expect("embedded server");
    // A stopped (not dead) server: requests hang, nothing restarts it.
    signal(pid, "-STOP");
    let resume = Resume(pid);
    let unavailable = wait_for(WAIT, || async {
        let resp = t.get("/api/queue/status").await;
        (resp.status() == 503).then_some(resp)
    })
    .await
    .expect("503 once the last snapshot is stale");
    let body: Value = unavailable.json().await.expect("JSON error body");
    let error = body["error"].as_str().expect("error message");
    assert!(error.contains("queue status unavailable"), "{body}");

    resume.now();
    let since = Utc::now();
    let back = wait_for(WAIT, || async {
        let resp = t.get("/api/queue/status").await;
        if resp.status() != 200 {
            return None;
        }
        let s: Value = resp.json().await.ok()?;
        (as_of(&s)? > since).then_some(s)
    })
    .await
    .expect("a new snapshot once JetStream answers again");
    assert_fresh(&back);
    drop(resume);
    t.shutdown().await;
}
