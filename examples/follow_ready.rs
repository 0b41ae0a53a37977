//! Follows dota-orchestrator's ready events through a durable JetStream consumer on the
//! `DOTA_EVENTS` stream: stop it, start it again, and it receives what happened meanwhile (the
//! server remembers how far the consumer `--durable` got). Each event is printed as one line:
//! its CloudEvents type and ID (from the NATS headers) and the event JSON, then acked.
//!
//! ```sh
//! cargo run --example follow_ready -- --nats-url nats://127.0.0.1:4223 --durable my-bot
//! ```
//!
//! `--count N` exits after N events and `--idle-secs S` after S seconds without one (CI uses
//! both); `--subject` narrows the events (default `dota.ready.>`).

use std::time::Duration;

use async_nats::jetstream::{self, consumer};
use futures::StreamExt;

struct Args {
    nats_url: String,
    durable: String,
    subject: String,
    count: Option<usize>,
    idle: Option<Duration>,
}

fn args() -> Result<Args, String> {
    let mut args = Args {
        nats_url: "nats://127.0.0.1:4223".to_string(),
        durable: "follow-ready".to_string(),
        subject: "dota.ready.>".to_string(),
        count: None,
        idle: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--nats-url" => args.nats_url = value()?,
            "--durable" => args.durable = value()?,
            "--subject" => args.subject = value()?,
            "--count" => args.count = Some(value()?.parse().map_err(|e| format!("--count: {e}"))?),
            "--idle-secs" => {
                let secs: u64 = value()?.parse().map_err(|e| format!("--idle-secs: {e}"))?;
                args.idle = Some(Duration::from_secs(secs));
            }
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(args)
}

fn header(message: &async_nats::Message, name: &str) -> String {
    message
        .headers
        .as_ref()
        .and_then(|h| h.get(name))
        .map(|v| v.as_str().to_string())
        .unwrap_or_default()
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let args = args()?;
    let nats = async_nats::connect(&args.nats_url).await?;
    let js = jetstream::new(nats);
    let stream = js.get_stream("DOTA_EVENTS").await?;
    // Durable: the server keeps this consumer's position while the program is away. A new one
    // starts with the events still in the stream (`DeliverPolicy::All`).
    let follower = stream
        .get_or_create_consumer(
            &args.durable,
            consumer::pull::Config {
                durable_name: Some(args.durable.clone()),
                filter_subject: args.subject.clone(),
                deliver_policy: consumer::DeliverPolicy::All,
                ack_policy: consumer::AckPolicy::Explicit,
                ..Default::default()
            },
        )
        .await?;
    let mut messages = follower.messages().await?;
    let mut seen = 0;
    loop {
        let next = match args.idle {
            Some(idle) => match tokio::time::timeout(idle, messages.next()).await {
                Ok(next) => next,
                Err(_) => break,
            },
            None => messages.next().await,
        };
        let Some(message) = next else { break };
        let message = message?;
        println!(
            "{} {} {}",
            header(&message, "ce-type"),
            header(&message, "ce-id"),
            String::from_utf8_lossy(&message.payload)
        );
        message.ack().await?;
        seen += 1;
        if args.count.is_some_and(|n| seen >= n) {
            break;
        }
    }
    eprintln!("{seen} events");
    Ok(())
}
