//! Store failures degrade, they do not stop the service: while redb writes fail, stored data is
//! still served, a GET of anything else is fetched straight from the upstream (one call for
//! concurrent GETs, `X-Cache-Status: bypass`, nothing stored), `/readyz` and `/metrics` say the
//! store is degraded, and the service heals by itself once writes work again. Once with the
//! store's injected write fault, once (when this process may mount) with a full file system.

use crate::common;

use std::path::Path;
use std::time::Duration;

use common::fixtures::row;
use common::{Fixtures, TestApp, spawn_app_with, wait_for};
use dota_orchestrator::app::DB_FILE;
use dota_orchestrator::fixture_upstream::FixtureConfig;
use serde_json::Value;

/// Long enough that concurrent GETs overlap in one upstream call.
const UPSTREAM_LATENCY: Duration = Duration::from_millis(300);
/// How long the full file system gets to make a write fail.
const WAIT: Duration = Duration::from_secs(20);

fn fixtures(ids: &[u64]) -> Fixtures {
    let fixtures = Fixtures::new();
    for id in ids {
        // Anonymous players only: no fan-out, so the matches are all the work there is.
        fixtures.match_with_players(*id, &[None; 10]);
    }
    fixtures
}

async fn spawn(
    ids: &[u64],
    tweak: impl FnOnce(&mut dota_orchestrator::config::Settings),
) -> TestApp {
    let config = FixtureConfig {
        latency: UPSTREAM_LATENCY,
        ..FixtureConfig::default()
    };
    spawn_app_with(fixtures(ids), config, tweak).await
}

async fn readyz(t: &TestApp) -> (u16, Value) {
    let resp = t.get("/readyz").await;
    let status = resp.status().as_u16();
    (status, resp.json().await.expect("readyz JSON"))
}

async fn degraded_gauge(t: &TestApp) -> Option<String> {
    let text = t.get("/metrics").await.text().await.expect("metrics text");
    text.lines()
        .find(|l| l.starts_with("dota_store_degraded "))
        .map(|l| l.trim_start_matches("dota_store_degraded ").to_string())
}

/// Everything a degraded instance must still do: `stored` was ready before writes failed,
/// `unstored` never was.
async fn serves_while_degraded(t: &TestApp, stored: u64, unstored: u64) {
    // Concurrent GETs of a match never stored: the match itself, fetched once, not stored.
    let path = format!("/api/matches/{unstored}");
    let gets = (0..5).map(|_| t.get(&path));
    for resp in futures::future::join_all(gets).await {
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.headers()["x-cache-status"], "bypass");
        let body: Value = resp.json().await.expect("match JSON");
        assert_eq!(body["match_id"], unstored, "{body}");
    }
    let upstream_path = format!("/opendota/matches/{unstored}");
    assert_eq!(t.upstream_requests(&upstream_path).await, 1);

    // Ready data is still served.
    let resp = t.get(&format!("/api/matches/{stored}")).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["x-cache-status"], "fresh");
    let body: Value = resp.json().await.expect("match JSON");
    assert_eq!(body["match_id"], stored, "{body}");

    // A degraded instance still serves, so it stays ready, and says why it is degraded.
    let (status, body) = readyz(t).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "degraded", "{body}");
    assert_eq!(body["storeDegraded"], true, "{body}");
    assert_eq!(degraded_gauge(t).await.as_deref(), Some("1"));
}

/// Writes work again: the bypassed `unstored` was never stored, and `later` is stored as
/// usual.
async fn is_healthy_again(t: &TestApp, unstored: u64, later: u64) {
    let resp = t.get(&format!("/api/matches/{unstored}")).await;
    let status = resp.status();
    let cache = resp.headers().get("x-cache-status").cloned();
    assert_eq!(status, 202, "the bypassed match was not stored ({cache:?})");

    let path = format!("/api/matches/{later}");
    let resp = t.post(&path).await;
    assert_eq!(resp.status(), 202, "a POST queues again");
    let body = t.get_when_ready(&path).await;
    assert_eq!(body["match_id"], later, "{body}");
    let resp = t.get(&path).await;
    assert_eq!(
        resp.headers()["x-cache-status"],
        "fresh",
        "stored, not bypassed"
    );
    let (status, body) = readyz(t).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "ready", "{body}");
    assert_eq!(body["storeDegraded"], false, "{body}");
    assert_eq!(degraded_gauge(t).await.as_deref(), Some("0"));
}

#[actix_rt::test]
async fn a_failing_store_serves_stored_data_bypasses_misses_and_heals() {
    let t = spawn(&[9101, 9102, 9103], |_| {}).await;
    t.post("/api/matches/9101").await;
    t.get_when_ready("/api/matches/9101").await;
    t.wait_drained().await;

    let health = t.app().store_health().clone();
    health.set_fail_writes(true);
    serves_while_degraded(&t, 9101, 9102).await;
    let resp = t.post("/api/matches/9102").await;
    assert_eq!(
        resp.status(),
        503,
        "nothing can be queued while writes fail"
    );

    health.set_fail_writes(false);
    is_healthy_again(&t, 9102, 9103).await;
    t.shutdown().await;
}

#[actix_rt::test]
async fn a_stored_team_import_is_served_while_degraded_and_a_new_one_is_refused() {
    const TEAM: u64 = 9300;
    const LEAGUE: u64 = 16435;
    let fx = fixtures(&[9301]);
    fx.dotabuff_team(TEAM, "Degraded Five", &[vec![row(9301, LEAGUE)]]);
    let t = spawn_app_with(fx, FixtureConfig::default(), |_| {}).await;
    let path = format!("/api/teams/{TEAM}/matches?leagueId={LEAGUE}");
    t.post(&path).await;
    t.get_when_ready(&path).await;
    t.wait_drained().await;

    let health = t.app().store_health().clone();
    health.set_fail_writes(true);
    let resp = t.get(&path).await;
    assert_eq!(resp.status(), 200, "a stored import is served from reads");
    let view: Value = resp.json().await.expect("team view");
    assert_eq!(view["matchIds"], serde_json::json!(["9301"]), "{view}");
    let resp = t
        .post(&format!("/api/teams/{TEAM}/matches?leagueId=16500"))
        .await;
    assert_eq!(resp.status(), 503, "a new import cannot be queued");
    let body: Value = resp.json().await.expect("error body");
    assert!(
        body["error"].as_str().unwrap_or("").contains("degraded"),
        "{body}"
    );
    health.set_fail_writes(false);
    t.shutdown().await;
}

/// A direct fetch the upstream answers 404 keeps the normal path's answer: a 404 `failed` body
/// (with `retryAt` and `Retry-After`), not a 503 carrying the upstream's text. Nothing is
/// remembered while degraded: the next GET asks the upstream again.
#[actix_rt::test]
async fn a_bypassed_get_of_what_the_upstream_lacks_is_a_404_failed_body() {
    let t = spawn(&[9401], |_| {}).await;
    let health = t.app().store_health().clone();
    health.set_fail_writes(true);

    let path = "/api/matches/9499";
    let resp = t.get(path).await;
    assert_eq!(resp.status(), 404);
    assert!(resp.headers().contains_key("retry-after"), "{resp:?}");
    let body: Value = resp.json().await.expect("failed body");
    assert_eq!(body["status"], "failed", "{body}");
    assert_eq!(body["signature"], "match:9499", "{body}");
    assert!(body["retryAt"].is_string(), "{body}");
    assert!(
        body["error"].as_str().unwrap_or("").contains("404"),
        "{body}"
    );
    assert_eq!(t.get(path).await.status(), 404);
    assert_eq!(t.upstream_requests("/opendota/matches/9499").await, 2);

    // Found matches are still fetched around the store.
    let resp = t.get("/api/matches/9401").await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["x-cache-status"], "bypass");
    health.set_fail_writes(false);
    t.shutdown().await;
}

/// A 2 MiB tmpfs mounted for one test, unmounted on drop.
struct SmallFs {
    dir: tempfile::TempDir,
}

impl SmallFs {
    /// `None` when this process may not mount (not root, or in a container without the right).
    fn mount() -> Option<Self> {
        let dir = tempfile::tempdir().expect("mount point");
        let status = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=2m", "tmpfs"])
            .arg(dir.path())
            .stderr(std::process::Stdio::null())
            .status();
        matches!(status, Ok(s) if s.success()).then_some(Self { dir })
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Appends to a filler file until the file system is full (again: redb gives back the
    /// pages of a commit that failed).
    fn fill(&self) {
        use std::io::Write;
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.path().join("filler"))
            .expect("filler");
        let chunk = vec![0xa5u8; 4096];
        while file.write_all(&chunk).is_ok() {}
        let _ = file.sync_all();
    }

    fn free(&self) {
        std::fs::remove_file(self.path().join("filler")).expect("remove filler");
    }
}

impl Drop for SmallFs {
    fn drop(&mut self) {
        // Lazy: a failed test may still hold the redb file open.
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

#[actix_rt::test]
async fn a_full_file_system_degrades_the_store_and_freeing_it_heals() {
    let Some(fs) = SmallFs::mount() else {
        println!("note: skipped the full file system case, this process may not mount a tmpfs");
        return;
    };
    // Only the redb file lives on the small file system (nats-server keeps its own store).
    let target = fs.path().join(DB_FILE);
    let t = spawn(&[9201, 9202, 9203], |s| {
        std::os::unix::fs::symlink(&target, s.data_dir.join(DB_FILE)).expect("symlink");
    })
    .await;
    t.post("/api/matches/9201").await;
    t.get_when_ready("/api/matches/9201").await;
    t.wait_drained().await;

    fs.fill();
    // The next write that needs a new page fails; queue work for a match the upstream lacks
    // until one does, so the GETs below meet a store already known to be degraded.
    let (mut n, app, small) = (0u64, &t, &fs);
    let degraded = wait_for(WAIT, || {
        n += 1;
        let path = format!("/api/matches/{}", 9300 + n);
        async move {
            small.fill();
            app.post(&path).await;
            let (_, body) = readyz(app).await;
            (body["storeDegraded"] == true).then_some(())
        }
    })
    .await;
    assert!(degraded.is_some(), "a full file system degrades the store");
    fs.fill();
    serves_while_degraded(&t, 9201, 9202).await;

    fs.free();
    is_healthy_again(&t, 9202, 9203).await;
    t.shutdown().await;
}
