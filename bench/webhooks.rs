//! Webhook delivery benchmark (issue 20): events per second through one endpoint, and the
//! latency the webhook path adds from an event's publication (ready) to its arrival at the
//! receiver. Starts the release binary (`serve --demo --webhook-allow-private`, its own
//! nats-server on a free port), a receiver in this process (warp, answers 200 at once), creates
//! one endpoint for `match.ready`, then publishes synthetic ready events into `DOTA_EVENTS`
//! exactly as the service does (same subjects, CloudEvents headers and `Nats-Msg-Id` from
//! `events::Envelope`):
//!
//! - **throughput**: `--burst N` events published back to back; first publish to last
//!   delivery;
//! - **latency**: `--paced N` events at `--rate` per second; per event, publish (after the
//!   stream's ack) to arrival; p50/p95/p99/max.
//!
//! ```sh
//! cargo build --release --bin dota-orchestrator --example webhook_bench
//! target/release/examples/webhook_bench --burst 5000 --paced 300 --rate 50
//! ```

use std::collections::HashMap;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use dota_orchestrator::domain::{MatchId, Signature};
use dota_orchestrator::events::{Envelope, Outcome};
use tokio::io::AsyncBufReadExt;
use warp::Filter;

type Arrivals = Arc<Mutex<HashMap<String, Instant>>>;

fn arg(name: &str, default: u64) -> u64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

async fn receiver(arrivals: Arrivals) -> String {
    let route = warp::post()
        .and(warp::header::<String>("webhook-id"))
        .map(move |id: String| {
            arrivals
                .lock()
                .unwrap()
                .entry(id)
                .or_insert_with(Instant::now);
            "ok"
        });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(warp::serve(route).incoming(listener).run());
    format!("http://{addr}/hook")
}

/// Publishes a ready event for match `id` as the service would; returns its ID once stored.
async fn publish(js: &async_nats::jetstream::Context, id: u64, base_ms: i64) -> String {
    let sig = Signature::Match(MatchId::new(id).expect("positive"));
    let envelope = Envelope::new(Outcome::Ready, sig, base_ms + id as i64);
    let body = serde_json::json!({"kind": "match", "id": id.to_string(),
        "signature": sig.to_string(), "fetchedAt": envelope.time});
    js.publish_with_headers(
        format!("dota.ready.match.{id}"),
        envelope.headers(),
        serde_json::to_vec(&body).unwrap().into(),
    )
    .await
    .expect("publish")
    .await
    .expect("stored");
    envelope.id
}

async fn wait_all(arrivals: &Arrivals, ids: &[String], limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        let done = {
            let got = arrivals.lock().unwrap();
            ids.iter().all(|id| got.contains_key(id))
        };
        if done {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    false
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

#[tokio::main]
async fn main() {
    // reqwest is built without a crypto provider; the service installs ring, and so do we.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let (burst, paced, rate) = (arg("--burst", 5000), arg("--paced", 300), arg("--rate", 50));
    let bin = std::env::var("BENCH_BINARY").unwrap_or("target/release/dota-orchestrator".into());
    let data = tempfile::tempdir().unwrap();
    let nats_port = free_port();
    let mut service = tokio::process::Command::new(&bin)
        .args([
            "serve",
            "--demo",
            "--webhook-allow-private",
            "--http-addr",
            "127.0.0.1:0",
        ])
        .arg("--data-dir")
        .arg(data.path())
        .args([
            "--nats-port",
            &nats_port.to_string(),
            "--nats-conf",
            "nats.conf",
        ])
        .args(["--demo-dir", "fixtures/demo"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("start the service");
    let mut lines = tokio::io::BufReader::new(service.stdout.take().unwrap()).lines();
    let line = lines.next_line().await.unwrap().expect("address line");
    let base = format!("http://{}", line.rsplit("http://").next().unwrap().trim());
    let arrivals = Arrivals::default();
    let url = receiver(arrivals.clone()).await;
    let http = reqwest::Client::new();
    let created = http
        .post(format!("{base}/api/webhooks"))
        .json(&serde_json::json!({"url": url, "events": ["match.ready"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let nats = async_nats::connect(format!("nats://127.0.0.1:{nats_port}"))
        .await
        .unwrap();
    let js = async_nats::jetstream::new(nats);
    let base_ms = chrono::Utc::now().timestamp_millis();

    // Throughput: publish concurrently (64 in flight), then wait for every delivery.
    let started = Instant::now();
    let mut ids = Vec::new();
    let mut next = 1u64;
    while next <= burst {
        let batch: Vec<_> = (next..(next + 64).min(burst + 1))
            .map(|id| publish(&js, id, base_ms))
            .collect();
        next += batch.len() as u64;
        ids.extend(futures::future::join_all(batch).await);
    }
    let published = started.elapsed();
    assert!(
        wait_all(&arrivals, &ids, Duration::from_secs(300)).await,
        "every burst event delivered"
    );
    let last = ids
        .iter()
        .filter_map(|id| arrivals.lock().unwrap().get(id).copied())
        .max()
        .unwrap();
    let took = last.duration_since(started);
    println!(
        "throughput: {burst} events published in {:.2} s, all delivered after {:.2} s: {:.0} events/s through one endpoint",
        published.as_secs_f64(),
        took.as_secs_f64(),
        burst as f64 / took.as_secs_f64()
    );

    // Latency: paced events, each measured from its stored publish to its arrival.
    let mut latencies = Vec::new();
    let gap = Duration::from_secs_f64(1.0 / rate as f64);
    for i in 0..paced {
        let id = 1_000_000 + i;
        let t0 = Instant::now();
        let event = publish(&js, id, base_ms).await;
        assert!(
            wait_all(
                &arrivals,
                std::slice::from_ref(&event),
                Duration::from_secs(30)
            )
            .await
        );
        let at = arrivals.lock().unwrap()[&event];
        latencies.push(at.duration_since(t0).as_secs_f64() * 1000.0);
        tokio::time::sleep(gap.saturating_sub(t0.elapsed())).await;
    }
    latencies.sort_by(f64::total_cmp);
    println!(
        "latency ready -> delivered over {paced} events at {rate}/s: p50 {:.1} ms, p95 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.95),
        percentile(&latencies, 0.99),
        latencies.last().copied().unwrap_or_default()
    );
    let _ = service.kill().await;
}
