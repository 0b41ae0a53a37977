//! The embedded nats-server is supervised: when it dies it is restarted on the same port and
//! store, the service reconnects, and queued work survives; a taken port is a clear error.
//! `--nats-server-bin` picks the binary, and a missing one is named.

use crate::common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::fixtures::ten_players;
use common::{Fixtures, spawn_app, test_settings, wait_for};
use dota_orchestrator::app::{Application, Hooks};
use dota_orchestrator::bus::embedded::{EmbeddedNats, EmbeddedNatsConfig};
use dota_orchestrator::config::NatsMode;

#[actix_rt::test]
async fn a_killed_nats_server_is_restarted_and_work_goes_on() {
    let fx = Fixtures::new();
    fx.match_with_players(1101, &ten_players(110_000));
    fx.match_with_players(1102, &[None; 10]);
    let t = spawn_app(fx).await;
    t.post("/api/matches/1101").await;
    t.get_when_ready("/api/matches/1101").await;

    let pid = t.app().embedded_nats_pid().expect("embedded server");
    assert!(
        Command::new("kill")
            .args(["-KILL", &pid.to_string()])
            .status()
            .unwrap()
            .success()
    );
    let restarted = wait_for(Duration::from_secs(30), || async {
        t.app().embedded_nats_pid().filter(|p| *p != pid)
    })
    .await;
    assert!(restarted.is_some(), "nats-server restarted");
    wait_for(Duration::from_secs(30), || async {
        (t.get("/readyz").await.status() == 200).then_some(())
    })
    .await
    .expect("reconnected");
    let metrics = t.get("/metrics").await.text().await.unwrap();
    assert!(
        metrics.contains("dota_nats_server_restarts_total 1"),
        "{metrics}"
    );

    // Work queued after the restart is done, and the players queued before it were kept.
    t.post("/api/matches/1102").await;
    t.get_when_ready("/api/matches/1102").await;
    for p in 110_000..110_010 {
        t.get_when_ready(&format!("/api/players/{p}/data")).await;
    }
    t.shutdown().await;
}

#[actix_rt::test]
async fn a_taken_nats_port_is_a_clear_error() {
    common::init_tracing();
    let fx = Fixtures::new();
    let upstream = common::start_upstream(&fx, Default::default()).await;
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let data = tempfile::tempdir().unwrap();
    let mut settings = test_settings(data.path(), &upstream);
    settings.nats = NatsMode::Embedded {
        conf: common::repo_path("nats.conf"),
        port,
    };
    let err = match Application::build(settings, Hooks::default()).await {
        Ok(_) => panic!("must not start on a taken port"),
        Err(err) => err.to_string(),
    };
    assert!(
        err.contains(&port.to_string()) && err.contains("taken"),
        "{err}"
    );
}

#[actix_rt::test]
async fn an_explicit_server_bin_is_the_one_run_and_a_missing_one_is_named() {
    // Installs the TLS provider reqwest needs, whichever test runs first.
    common::init_tracing();
    let dir = tempfile::tempdir().unwrap();
    let config = EmbeddedNatsConfig {
        conf: common::repo_path("nats.conf"),
        store_dir: dir.path().join("nats"),
        port: 0,
    };
    let missing = Path::new("/nonexistent/nats-server");
    let err = match EmbeddedNats::start_with_server_bin(config.clone(), Some(missing)).await {
        Ok(_) => panic!("a missing --nats-server-bin must not start"),
        Err(err) => err.to_string(),
    };
    assert!(
        err.contains("--nats-server-bin /nonexistent/nats-server"),
        "{err}"
    );
    assert!(err.contains("--nats-url"), "{err}");

    // Debian's 2.9 is new enough for the embedded mode, and is run even when the project
    // venv holds a newer one.
    let debian = Path::new("/usr/sbin/nats-server");
    let server = EmbeddedNats::start_with_server_bin(config, Some(debian))
        .await
        .expect("starts on Debian's nats-server");
    let exe = std::fs::read_link(format!("/proc/{}/exe", server.pid())).unwrap();
    assert_eq!(exe, debian);
    server.stop().await;
}
