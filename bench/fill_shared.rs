//! Fills the shared store (`--store nats`) with small synthetic player resources, written
//! exactly as an instance stores them (`SharedStore::put_entry`: the body under `b.<sig>`, then
//! the record under `m.<sig>`), for the replica start-up benchmark (`bench/replica_restart.sh`).
//! Players `--first`.. `--first + --count - 1` get the body
//! `{"profile":{"account_id":ID},"version":V,"pad":"..."}` of about `--body-bytes` bytes,
//! fetched now; running it again with another `--version` over some of them makes that many
//! changes.
//!
//! ```sh
//! cargo build --release --example fill_shared
//! target/release/examples/fill_shared --nats-url nats://127.0.0.1:4222 --replicas 3 \
//!     --count 100000 --version 1
//! ```

use std::time::Instant;

use dota_orchestrator::domain::{PlayerId, Signature};
use dota_orchestrator::shared::{SharedStore, SharedTuning};
use dota_orchestrator::store::EntryMeta;
use futures::StreamExt;

struct Args {
    nats_url: String,
    replicas: usize,
    first: u64,
    count: u64,
    version: u32,
    body_bytes: usize,
    concurrency: usize,
}

fn args() -> Result<Args, String> {
    let mut args = Args {
        nats_url: "nats://127.0.0.1:4222".to_string(),
        replicas: 1,
        first: 600_000_000,
        count: 10_000,
        version: 1,
        body_bytes: 200,
        concurrency: 256,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().ok_or(format!("{flag} needs a value"))?;
        let number = |v: &str| v.parse::<u64>().map_err(|e| format!("{flag}: {e}"));
        match flag.as_str() {
            "--nats-url" => args.nats_url = value,
            "--replicas" => args.replicas = number(&value)? as usize,
            "--first" => args.first = number(&value)?,
            "--count" => args.count = number(&value)?,
            "--version" => args.version = number(&value)? as u32,
            "--body-bytes" => args.body_bytes = number(&value)? as usize,
            "--concurrency" => args.concurrency = number(&value)?.max(1) as usize,
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(args)
}

fn body(id: u64, version: u32, bytes: usize) -> Vec<u8> {
    let head = format!(r#"{{"profile":{{"account_id":{id}}},"version":{version},"pad":""#);
    let pad = "x".repeat(bytes.saturating_sub(head.len() + 2));
    format!("{head}{pad}\"}}").into_bytes()
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let args = args()?;
    let nats = async_nats::connect(args.nats_url.split(',').next().unwrap_or_default()).await?;
    let shared = SharedStore::open(
        async_nats::jetstream::new(nats),
        args.replicas,
        "fill-shared".to_string(),
        SharedTuning::default(),
    )
    .await?;
    let started = Instant::now();
    let now_ms = dota_orchestrator::store::now_ms();
    let written = futures::stream::iter(args.first..args.first + args.count)
        .map(|id| {
            let shared = &shared;
            let body = body(id, args.version, args.body_bytes);
            async move {
                let sig = Signature::Player(PlayerId::new(id).ok_or("player id 0")?);
                // The one stored form, as an instance makes it.
                let stored = dota_orchestrator::encoding::Encoded::of(&body)?;
                let meta = EntryMeta {
                    fetched_at_ms: now_ms,
                    invalidated: false,
                    bytes: stored.plain_len,
                    tag: Some(stored.tag),
                };
                shared.put_entry(&sig, meta, &stored.gzip, None).await?;
                Ok::<_, Box<dyn std::error::Error + Send + Sync>>(())
            }
        })
        .buffer_unordered(args.concurrency)
        .fold(Ok(0u64), |n, r| async move { r.and(n.map(|n| n + 1)) })
        .await?;
    let secs = started.elapsed().as_secs_f64();
    println!(
        "{{\"written\":{written},\"seconds\":{secs:.2},\"perSecond\":{:.0}}}",
        written as f64 / secs
    );
    Ok(())
}
