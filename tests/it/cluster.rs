//! The cluster harness ([`common::cluster::NatsCluster`]) gives what the shared store will rely
//! on: a 3-node cluster forms, an R3 KV bucket written through one node is read through
//! another, writes go on after a node is SIGKILLed, and the server has counters
//! (`Nats-Incr`, 2.12+) that hand out every value exactly once under concurrency.

use crate::common;

use std::time::{Duration, Instant};

use async_nats::HeaderMap;
use async_nats::jetstream::{self, kv, stream};
use bytes::Bytes;
use common::cluster::{NatsCluster, wait_stream_leader};
use common::wait_for;
use dota_orchestrator::bus::server_version::MIN_SHARED_STORE;

/// A write after the stream leader died waits for an election; 4-8 s were seen on loopback.
const ELECTION_WAIT: Duration = Duration::from_secs(15);

/// A JetStream context on node `i` alone.
async fn jetstream_on(cluster: &NatsCluster, i: usize) -> jetstream::Context {
    let client = async_nats::connect(cluster.node_url(i))
        .await
        .unwrap_or_else(|err| panic!("connect to node {i}: {err}"));
    jetstream::new(client)
}

#[tokio::test]
async fn an_r3_bucket_is_read_through_another_node_and_written_after_a_node_dies() {
    let mut cluster = NatsCluster::start(3).await;
    assert!(
        cluster.version() >= MIN_SHARED_STORE,
        "{}",
        cluster.version()
    );
    assert_eq!(cluster.url().split(',').count(), 3);

    let js0 = jetstream_on(&cluster, 0).await;
    let kv0 = js0
        .create_key_value(kv::Config {
            bucket: "harness_r3".into(),
            history: 1,
            num_replicas: 3,
            ..Default::default()
        })
        .await
        .expect("R3 bucket created on node 0");
    wait_stream_leader(&js0, "KV_harness_r3").await;
    // Retried: node 0 may not yet know over its routes where the new stream listens.
    let put = wait_for(Duration::from_secs(10), || async {
        kv0.put("k", Bytes::from_static(b"v1")).await.ok()
    })
    .await;
    assert!(put.is_some(), "put through node 0");

    let js2 = jetstream_on(&cluster, 2).await;
    let kv2 = js2.get_key_value("harness_r3").await.expect("bucket seen");
    let read = wait_for(Duration::from_secs(10), || async {
        kv2.get("k").await.ok().flatten()
    })
    .await;
    assert_eq!(
        read.as_deref(),
        Some(&b"v1"[..]),
        "node 2 reads node 0's write"
    );

    drop(kv0);
    drop(js0);
    cluster.kill(0);

    // A short request timeout: a write that went to the dead leader is retried soon rather
    // than after the 5 s default.
    let mut js1 = jetstream_on(&cluster, 1).await;
    js1.set_timeout(Duration::from_secs(2));
    let started = Instant::now();
    let written = wait_for(ELECTION_WAIT, || async {
        let kv1 = js1.get_key_value("harness_r3").await.ok()?;
        kv1.put("k", Bytes::from_static(b"v2")).await.ok()
    })
    .await;
    assert!(
        written.is_some(),
        "no write through node 1 within {}s of node 0's death",
        ELECTION_WAIT.as_secs()
    );
    tracing::info!(elapsed = ?started.elapsed(), "first write after the kill");
    let read = kv2.get("k").await.expect("read through node 2");
    assert_eq!(read.as_deref(), Some(&b"v2"[..]));

    // The killed node comes back on its store and catches up.
    cluster.restart(0).await;
    let kv0 = jetstream_on(&cluster, 0)
        .await
        .get_key_value("harness_r3")
        .await
        .expect("bucket seen after restart");
    let caught_up = wait_for(Duration::from_secs(10), || async {
        (kv0.get("k").await.ok().flatten()? == "v2").then_some(())
    })
    .await;
    assert!(
        caught_up.is_some(),
        "restarted node 0 serves the latest value"
    );
}

#[tokio::test]
async fn counter_increments_from_concurrent_clients_each_get_a_distinct_total() {
    const CLIENTS: u64 = 6;
    const PER_CLIENT: u64 = 100;
    let cluster = NatsCluster::start(3).await;
    let js = jetstream_on(&cluster, 0).await;
    js.create_stream(stream::Config {
        name: "HARNESS_COUNTERS".into(),
        subjects: vec!["harness.counter.>".into()],
        num_replicas: 3,
        allow_message_counter: true,
        ..Default::default()
    })
    .await
    .expect("R3 counter stream");
    wait_stream_leader(&js, "HARNESS_COUNTERS").await;

    let mut tasks = Vec::new();
    for c in 0..CLIENTS {
        let js = jetstream_on(&cluster, (c as usize) % cluster.len()).await;
        tasks.push(tokio::spawn(async move {
            let mut values = Vec::new();
            for _ in 0..PER_CLIENT {
                let ack = increment(&js).await;
                let value = ack.value.expect("a counter stream acks with the total");
                values.push(value.parse::<u64>().expect("an integer total"));
            }
            values
        }));
    }
    let mut totals = Vec::new();
    for task in tasks {
        totals.extend(task.await.expect("client task"));
    }
    totals.sort_unstable();
    let expected: Vec<u64> = (1..=CLIENTS * PER_CLIENT).collect();
    if totals != expected {
        let mut repeated = totals.clone();
        repeated.dedup();
        let missing: Vec<u64> = expected
            .iter()
            .filter(|v| totals.binary_search(v).is_err())
            .copied()
            .collect();
        panic!(
            "{} totals, {} distinct, range {:?}..={:?}; missing {:?}",
            totals.len(),
            repeated.len(),
            totals.first(),
            totals.last(),
            &missing[..missing.len().min(20)]
        );
    }
}

/// Attempts of one increment that found no stream: see [`increment`].
const NO_STREAM_ATTEMPTS: u32 = 50;

/// Adds 1 to the counter. A node that has not yet learned of a new stream's subjects over the
/// routes answers "no responders" (async-nats: `StreamNotFound`) for a moment after the stream
/// has a leader: nothing was stored, so trying again cannot count twice. Any other error
/// (a timeout above all: the increment may have landed) fails the test.
async fn increment(js: &jetstream::Context) -> jetstream::publish::PublishAck {
    let mut attempt = 0;
    loop {
        attempt += 1;
        let mut headers = HeaderMap::new();
        headers.insert("Nats-Incr", "1");
        let sent = js
            .publish_with_headers("harness.counter.calls", headers, Bytes::new())
            .await
            .expect("publish");
        match sent.await {
            Ok(ack) => return ack,
            Err(err)
                if err.kind() == jetstream::context::PublishErrorKind::StreamNotFound
                    && attempt < NO_STREAM_ATTEMPTS =>
            {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(err) => panic!("increment failed after {attempt} attempts: {err}"),
        }
    }
}
