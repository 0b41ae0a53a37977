//! A slow parse never delays an HTTP answer or another fetch (issue 9): the upstream answers
//! one player with ~19 MB of JSON, seconds of parsing in a debug build, and while that body is
//! being parsed three other players are fetched and stored one after another, and `/healthz`, a
//! stored player and the queue status answer. (A player body is parsed whole; a match body is
//! parsed only for its head since issue 19, which skims 19 MB too fast to test this with.)
//!
//! The app runs as `main` runs it: actors on the actix System thread over a multi-thread tokio
//! runtime. The HTTP client runs on a tokio worker, like any outside client, so that it is not
//! itself held up by what holds up the System thread.
//!
//! The test asserts order, never durations. The first player is posted only once the fixture
//! has answered the slow one, and the slow one is still unanswered (202) after the third player
//! is stored. With the parse on the System thread (as it was), the players' worker loops and the
//! rate limiter, which live there too, wait until the parse ends, and the slow player fails
//! before the first player is stored: the test fails (checked by moving the parse back).
//!
//! What is left to chance, and how far from the edge (debug build, measured on 2 busy cores):
//! after the fixture answers, the 19 MB body still crosses the loopback before the parse
//! starts (~80 ms), and three players, each polled every 50 ms, cannot all be stored in that
//! time (they took 250-310 ms). And they must be stored before the parse (~1.8 s) ends. The
//! margins are those of the debug build the suite runs in; a release build parses ~8x faster.

use std::sync::Arc;

use serde_json::Value;

use crate::common::{Fixtures, WAIT, spawn_app_with, wait_for};
use dota_orchestrator::fixture_upstream::FixtureConfig;

/// The player whose body is slow to parse.
const SLOW_PLAYER: u64 = 7_100_000_001;
/// Entries of the body: ~19 MB in all, under the client's 32 MB cap.
const LOG_ENTRIES: usize = 440_000;

/// A body of purchase-log entries, ~19 MB of JSON. It is an array, not the object a player
/// body is, so the check that follows the parse rejects it: storing 19 MB (and compressing it)
/// would only slow the test down, and the parse, the subject here, runs in full either way.
fn slow_player_body() -> String {
    let log: Vec<String> = (0..LOG_ENTRIES)
        .map(|i| {
            format!(
                r#"{{"time":{i},"key":"item_{}","charges":{}}}"#,
                i % 200,
                i % 3
            )
        })
        .collect();
    format!("[{}]", log.join(","))
}

#[test]
fn a_slow_parse_delays_neither_other_fetches_nor_http_answers() {
    let system = actix_rt::System::with_tokio_rt(|| {
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .expect("tokio runtime")
    });
    system.block_on(async {
        let fx = Fixtures::new();
        let body = slow_player_body();
        assert!(body.len() > 15_000_000, "{} bytes", body.len());
        fx.raw(&format!("opendota/players/{SLOW_PLAYER}.json"), body);
        let players = [
            7_200_000_001u64,
            7_200_000_002,
            7_200_000_003,
            7_200_000_004,
        ];
        for p in players {
            fx.player(p);
        }
        // One attempt: the rejected body fails the match at once instead of being refetched.
        let t = spawn_app_with(fx, FixtureConfig::default(), |s| s.retry.max_attempts = 1).await;
        let t = Arc::new(t);
        let client = Arc::clone(&t);
        let checks = tokio::spawn(async move {
            let t = client;
            let stored = format!("/api/players/{}/data", players[0]);
            t.get_when_ready(&stored).await;

            let slow = format!("/api/players/{SLOW_PLAYER}/data");
            assert_eq!(t.post(&slow).await.status(), 202);
            let upstream_path = format!("/opendota/players/{SLOW_PLAYER}");
            let answered = wait_for(WAIT, || async {
                (t.upstream_requests(&upstream_path).await > 0).then_some(())
            })
            .await;
            assert!(
                answered.is_some(),
                "the fixture never answered the slow player"
            );

            // The body is on its way and then parsed; meanwhile:
            for p in &players[1..] {
                let path = format!("/api/players/{p}/data");
                assert_eq!(t.post(&path).await.status(), 202);
                let player = t.get_when_ready(&path).await;
                assert_eq!(player["profile"]["account_id"], *p);
                assert_eq!(t.get("/healthz").await.status(), 200);
                assert_eq!(t.get(&stored).await.status(), 200);
                assert_eq!(t.get("/api/queue/status").await.status(), 200);
            }
            let during = t.get(&slow).await;
            let status = during.status();
            let text = during.text().await.unwrap_or_default();
            assert_eq!(
                status, 202,
                "the slow player's parse ended before three players were fetched: {text}"
            );

            // The parse does end, with the verdict of the check that follows it.
            let failed: Value = t.wait_status(&slow, 502).await;
            let error = failed["error"].as_str().unwrap_or_default();
            assert!(error.contains("not an object"), "{failed}");
        });
        let outcome = checks.await;
        let t = Arc::into_inner(t).expect("the checks let go of the app");
        t.shutdown().await;
        match outcome {
            Ok(()) => {}
            Err(err) if err.is_panic() => std::panic::resume_unwind(err.into_panic()),
            Err(err) => panic!("the checks did not finish: {err}"),
        }
    });
}
