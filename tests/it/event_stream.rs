//! Durable, self-describing events: every ready/failed event is stored in `DOTA_EVENTS` with
//! its CloudEvents headers; a durable consumer that was away during an import gets every event
//! of it when it comes back; live events match the AsyncAPI document the service serves; with
//! three instances on a cluster each event is stored once and each webhook delivery made once.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::common;

use async_nats::jetstream::{self, consumer};
use common::fixtures::row;
use common::fleet::Fleet;
use common::receiver::Receiver;
use common::{Fixtures, spawn_app};
use dota_orchestrator::config::Settings;
use dota_orchestrator::fixture_upstream::FixtureConfig;
use futures::StreamExt;
use serde_json::{Value, json};

const TEAM: u64 = 9_517_508;
const LEAGUE: u64 = 16_435;
const FIRST_MATCH: u64 = 8_200_000_000;
const MISSING_MATCH: u64 = 8_299_999_999;

/// A team with `matches` matches, each with two players of its own: `1 + 3 * matches` ready
/// events for a whole import.
fn team(matches: u64) -> Fixtures {
    let fx = Fixtures::new();
    let rows = (0..matches).map(|i| row(FIRST_MATCH + i, LEAGUE)).collect();
    fx.dotabuff_team(TEAM, "Maple Syrup", &[rows]);
    for i in 0..matches {
        let p = 500_000_000 + i * 2;
        fx.match_with_players(FIRST_MATCH + i, &[Some(p), Some(p + 1)]);
    }
    fx
}

fn import_path() -> String {
    format!("/api/teams/{TEAM}/matches?leagueId={LEAGUE}")
}

/// Every message a consumer gets within `quiet` of the last one.
async fn drain(consumer: &consumer::PullConsumer, quiet: Duration) -> Vec<jetstream::Message> {
    let mut out = Vec::new();
    let mut messages = consumer.messages().await.expect("pull");
    while let Ok(Some(Ok(message))) = tokio::time::timeout(quiet, messages.next()).await {
        message.ack().await.expect("ack");
        out.push(message);
    }
    out
}

fn header(message: &async_nats::Message, name: &str) -> String {
    message
        .headers
        .as_ref()
        .and_then(|h| h.get(name))
        .map(|v| v.as_str().to_string())
        .unwrap_or_default()
}

#[actix_rt::test]
async fn a_durable_consumer_stopped_during_an_import_receives_every_event_of_it() {
    let t = spawn_app(team(3)).await;
    let nats = async_nats::connect(t.app().nats_url()).await.unwrap();
    let js = jetstream::new(nats);
    let stream = js
        .get_stream("DOTA_EVENTS")
        .await
        .expect("DOTA_EVENTS exists");
    let config = consumer::pull::Config {
        durable_name: Some("test-follower".to_string()),
        deliver_policy: consumer::DeliverPolicy::New,
        ..Default::default()
    };
    // Created, then away (nothing pulls) for the whole import.
    let follower = stream.create_consumer(config).await.unwrap();
    t.post(&import_path()).await;
    t.post(&format!("/api/matches/{MISSING_MATCH}")).await;
    t.wait_import_complete(&format!("{}&include=progress", import_path()))
        .await;
    t.wait_status(&format!("/api/matches/{MISSING_MATCH}"), 404)
        .await;
    // Back: everything that happened meanwhile, once, with its envelope.
    let got = drain(&follower, Duration::from_secs(2)).await;
    let mut ids = BTreeMap::new();
    for m in &got {
        *ids.entry(header(m, "ce-id")).or_insert(0) += 1;
        assert_eq!(header(m, "ce-specversion"), "1.0");
        assert_eq!(header(m, "content-type"), "application/json");
        assert_eq!(header(m, "Nats-Msg-Id"), header(m, "ce-id"));
    }
    assert!(ids.values().all(|n| *n == 1), "{ids:?}");
    let types: Vec<String> = got.iter().map(|m| header(m, "ce-type")).collect();
    let count = |t: &str| types.iter().filter(|x| *x == t).count();
    assert_eq!(count("com.dota-orchestrator.team.ready"), 1, "{types:?}");
    assert_eq!(count("com.dota-orchestrator.match.ready"), 3, "{types:?}");
    assert_eq!(count("com.dota-orchestrator.player.ready"), 6, "{types:?}");
    assert_eq!(count("com.dota-orchestrator.match.failed"), 1, "{types:?}");
    let failed = got
        .iter()
        .find(|m| m.subject.as_str() == format!("dota.failed.match.{MISSING_MATCH}"))
        .expect("the failure is stored");
    assert_eq!(
        header(failed, "ce-subject"),
        format!("match:{MISSING_MATCH}")
    );
    t.shutdown().await;
}

/// Validates `instance` against the schema at `pointer` in `doc` (refs resolve in `doc`).
fn check(doc: &Value, pointer: &str, instance: &Value) -> Result<(), String> {
    let mut schema = doc.clone();
    schema["$ref"] = json!(format!("#{pointer}"));
    let validator = jsonschema::validator_for(&schema).map_err(|e| e.to_string())?;
    let errors: Vec<String> = validator
        .iter_errors(instance)
        .map(|e| e.to_string())
        .collect();
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors.join("; "))
    }
}

#[actix_rt::test]
async fn live_events_match_the_asyncapi_document() {
    let t = spawn_app(team(2)).await;
    let doc: Value = t.get("/api/asyncapi.json").await.json().await.unwrap();
    assert_eq!(doc["asyncapi"], "3.0.0");
    let nats = async_nats::connect(t.app().nats_url()).await.unwrap();
    let mut ready = nats.subscribe("dota.ready.>").await.unwrap();
    let mut failed = nats.subscribe("dota.failed.>").await.unwrap();
    t.post(&import_path()).await;
    t.post(&format!("/api/matches/{MISSING_MATCH}")).await;
    t.wait_import_complete(&format!("{}&include=progress", import_path()))
        .await;
    t.wait_status(&format!("/api/matches/{MISSING_MATCH}"), 404)
        .await;
    let mut seen = Vec::new();
    for sub in [&mut ready, &mut failed] {
        while let Ok(Some(m)) = tokio::time::timeout(Duration::from_millis(500), sub.next()).await {
            seen.push(m);
        }
    }
    assert_eq!(seen.len(), 1 + 2 + 4 + 1, "every event arrived");
    let channels = doc["channels"].as_object().unwrap();
    for m in &seen {
        // The channel whose address pattern matches the subject.
        let (key, _) = channels
            .iter()
            .find(|(_, c)| {
                let pattern = c["address"].as_str().unwrap();
                let parts: Vec<&str> = pattern.split('.').collect();
                let subject: Vec<&str> = m.subject.split('.').collect();
                parts.len() == subject.len()
                    && parts
                        .iter()
                        .zip(&subject)
                        .all(|(p, s)| p.starts_with('{') || p == s)
            })
            .unwrap_or_else(|| panic!("no channel for {}", m.subject));
        let payload: Value = serde_json::from_slice(&m.payload).unwrap();
        let headers: serde_json::Map<String, Value> = m
            .headers
            .as_ref()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.to_string(), json!(v[0].as_str())))
            .collect();
        let message = format!("/components/messages/{key}");
        check(&doc, &format!("{message}/payload"), &payload)
            .unwrap_or_else(|e| panic!("{} payload {payload}: {e}", m.subject));
        check(
            &doc,
            &format!("{message}/headers"),
            &Value::Object(headers.clone()),
        )
        .unwrap_or_else(|e| panic!("{} headers {headers:?}: {e}", m.subject));
    }
    t.shutdown().await;
}

fn allow_private(s: &mut Settings) {
    s.events.webhook_allow_private = true;
}

#[actix_rt::test]
async fn with_three_instances_each_event_is_stored_once_and_delivered_once() {
    let mut fleet = Fleet::start(3, team(3), FixtureConfig::default(), allow_private).await;
    let receiver = Receiver::start(&[]).await;
    let resp = fleet
        .http
        .post(format!("{}/api/webhooks", fleet.base(0)))
        .json(
            &json!({"url": receiver.url, "events": ["team.ready", "match.ready", "player.ready"]}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    // Every instance knows the endpoint before the import starts.
    common::wait_for(common::WAIT, || async {
        let mut all = true;
        for i in 0..3 {
            let v: Value = fleet.get(i, "/api/webhooks").await.json().await.ok()?;
            all &= v["webhooks"].as_array().is_some_and(|w| w.len() == 1);
        }
        all.then_some(())
    })
    .await
    .expect("every instance sees the endpoint");
    fleet.post(1, &import_path()).await;
    let expected = 1 + 3 + 6;
    let got = receiver.wait_for(expected, Duration::from_secs(60)).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let got = receiver.received().len().max(got.len());
    assert_eq!(got, expected, "each event delivered once");
    let mut ids = BTreeMap::new();
    for r in receiver.received() {
        *ids.entry(r.header("webhook-id").to_string()).or_insert(0) += 1;
    }
    assert!(ids.values().all(|n| *n == 1), "{ids:?}");
    // And stored once.
    let js = jetstream::new(
        async_nats::connect(fleet.cluster.node_url(0))
            .await
            .unwrap(),
    );
    let mut stream = js.get_stream("DOTA_EVENTS").await.unwrap();
    let info = stream.info().await.unwrap();
    assert_eq!(info.state.messages, expected as u64, "{:?}", info.state);
    for i in 0..3 {
        fleet.stop(i).await;
    }
}

#[test]
fn the_asyncapi_document_is_printed_by_the_cli_and_valid_for_the_asyncapi_parser() {
    let doc = dota_orchestrator::events::asyncapi::document();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_dota-orchestrator"))
        .arg("asyncapi")
        .output()
        .expect("run dota-orchestrator asyncapi");
    assert!(out.status.success());
    let printed: Value = serde_json::from_slice(&out.stdout).expect("JSON on stdout");
    assert_eq!(printed, doc);
    let parser = common::repo_path("tests/asyncapi");
    if !parser.join("node_modules/@asyncapi/parser").exists() {
        assert!(
            std::env::var_os("CI").is_none(),
            "@asyncapi/parser missing: run DOTA_WITH_TEST_DEPS=1 scripts/install-deps.sh"
        );
        eprintln!("skipping @asyncapi/parser: npm ci --prefix tests/asyncapi first");
        return;
    }
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), serde_json::to_vec_pretty(&doc).unwrap()).unwrap();
    let out = std::process::Command::new("node")
        .arg(parser.join("validate.mjs"))
        .arg(file.path())
        .output()
        .expect("run node");
    let report =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{report}");
}
