//! Joining an external NATS server that wants a token over TLS: the test starts a real
//! nats-server with `authorization { token }` and a certificate from a CA it makes itself
//! (rcgen). With the right token and `--nats-tls-ca` the service fetches through its JetStream
//! queue; a wrong token or an untrusted certificate fails start-up at once, with an error that
//! names the URL and never shows the token. A second server runs in operator mode (JWTs
//! signed in the test with `nkeys`) and admits the service by its `--nats-creds` file.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::{Fixtures, WAIT, test_settings, wait_for};
use dota_orchestrator::app::{Application, Hooks};
use dota_orchestrator::config::{NatsAuth, NatsMode, NatsToken};
use dota_orchestrator::fixture_upstream::FixtureConfig;
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use serde_json::{Value, json};

const TOKEN: &str = "nats-token-8d2e71";
const WRONG_TOKEN: &str = "wrong-token-3b9a05";
/// A refused login must end start-up well before anyone would call it a hang.
const FAIL_WITHIN: Duration = Duration::from_secs(10);

/// A CA and a server certificate for 127.0.0.1 signed by it, written as PEM files.
struct Pki {
    ca: PathBuf,
    cert: PathBuf,
    key: PathBuf,
}

fn make_pki(dir: &Path) -> Pki {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])
        .unwrap()
        .signed_by(&key, &ca)
        .unwrap();
    let pki = Pki {
        ca: dir.join("ca.pem"),
        cert: dir.join("server.pem"),
        key: dir.join("server-key.pem"),
    };
    std::fs::write(&pki.ca, ca.pem()).unwrap();
    std::fs::write(&pki.cert, cert.pem()).unwrap();
    std::fs::write(&pki.key, key.serialize_pem()).unwrap();
    pki
}

/// A nats-server with JetStream on a free loopback port; killed on drop.
struct NatsServer {
    child: Child,
    url: String,
}

impl NatsServer {
    /// With a token and TLS.
    async fn with_token_and_tls(dir: &Path, pki: &Pki) -> Self {
        let conf = format!(
            "authorization {{ token: \"{TOKEN}\" }}\n\
             tls {{ cert_file: {cert:?}, key_file: {key:?} }}\n",
            cert = pki.cert,
            key = pki.key,
        );
        Self::start(dir, &conf, "tls").await
    }

    /// Runs nats-server on `conf` (auth settings) plus a listener and a JetStream store.
    async fn start(dir: &Path, auth: &str, scheme: &str) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let conf = dir.join("nats.conf");
        std::fs::write(
            &conf,
            format!(
                "listen: \"127.0.0.1:{port}\"\njetstream {{ store_dir: {store:?} }}\n{auth}",
                store = dir.join("store"),
            ),
        )
        .unwrap();
        let child = Command::new("/usr/sbin/nats-server")
            .arg("-c")
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nats-server starts");
        wait_for(WAIT, || async {
            tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .ok()
        })
        .await
        .expect("nats-server listens");
        Self {
            child,
            url: format!("{scheme}://127.0.0.1:{port}"),
        }
    }

    fn mode(&self, token: &str, tls_ca: Option<&Path>) -> NatsMode {
        NatsMode::External {
            url: self.url.clone(),
            auth: NatsAuth::Token(token.parse::<NatsToken>().unwrap()),
            tls_ca: tls_ca.map(Path::to_path_buf),
        }
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A JWT as nats-server reads it: `claims` (with `nats`) for `subject`, signed by `issuer`.
fn jwt(issuer: &nkeys::KeyPair, subject: &str, nats: Value) -> String {
    let header = json!({"typ": "JWT", "alg": "ed25519-nkey"});
    let claims = json!({
        "jti": uuid::Uuid::new_v4().simple().to_string().to_uppercase(),
        "iat": chrono::Utc::now().timestamp(),
        "iss": issuer.public_key(),
        "sub": subject,
        "name": subject,
        "nats": nats,
    });
    let signed = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let signature = issuer.sign(signed.as_bytes()).unwrap();
    format!("{signed}.{}", URL_SAFE_NO_PAD.encode(signature))
}

/// Operator-mode server config admitting one account with JetStream, and a creds file for a
/// user of that account.
fn operator_mode(dir: &Path) -> (String, PathBuf) {
    let operator = nkeys::KeyPair::new_operator();
    let account = nkeys::KeyPair::new_account();
    let user = nkeys::KeyPair::new_user();
    let operator_jwt = jwt(
        &operator,
        &operator.public_key(),
        json!({"type": "operator", "version": 2}),
    );
    let unlimited = json!({
        "subs": -1, "data": -1, "payload": -1, "imports": -1, "exports": -1,
        "wildcards": true, "conn": -1, "leaf": -1,
        "mem_storage": -1, "disk_storage": -1, "streams": -1, "consumer": -1,
    });
    let account_jwt = jwt(
        &operator,
        &account.public_key(),
        json!({"limits": unlimited, "type": "account", "version": 2}),
    );
    // JetStream needs a system account in operator mode.
    let system = nkeys::KeyPair::new_account();
    let system_jwt = jwt(
        &operator,
        &system.public_key(),
        json!({"limits": {"conn": -1}, "type": "account", "version": 2}),
    );
    let user_jwt = jwt(
        &account,
        &user.public_key(),
        json!({"pub": {}, "sub": {}, "subs": -1, "data": -1, "payload": -1,
               "type": "user", "version": 2}),
    );
    let conf = format!(
        "operator: {operator_jwt}\nsystem_account: {sys}\nresolver: MEMORY\n\
         resolver_preload: {{ {sys}: {system_jwt}, {}: {account_jwt} }}\n",
        account.public_key(),
        sys = system.public_key(),
    );
    let creds = dir.join("user.creds");
    std::fs::write(
        &creds,
        format!(
            "-----BEGIN NATS USER JWT-----\n{user_jwt}\n------END NATS USER JWT------\n\n\
             -----BEGIN USER NKEY SEED-----\n{}\n------END USER NKEY SEED------\n",
            user.seed().unwrap()
        ),
    )
    .unwrap();
    (conf, creds)
}

/// Asks `app` for match `id`, waits until it is stored (the job went through JetStream on the
/// external server), then stops the app.
async fn fetch_then_stop(app: Application, id: u64) {
    let http = reqwest::Client::new();
    let url = format!("http://{}/api/matches/{id}", app.http_addr());
    assert_eq!(http.post(&url).send().await.unwrap().status(), 202);
    wait_for(WAIT, || async {
        let r = http.get(&url).send().await.ok()?;
        (r.status() == 200).then_some(())
    })
    .await
    .expect("the match is fetched through the external server's JetStream");
    app.stop().await;
}

/// Builds the app with `nats` and expects start-up to fail fast; returns the error text.
async fn start_up_error(
    data: &Path,
    upstream: &dota_orchestrator::fixture_upstream::FixtureUpstream,
    nats: NatsMode,
) -> String {
    let mut settings = test_settings(data, upstream);
    settings.nats = nats;
    assert!(
        !format!("{settings:?}").contains(TOKEN) && !format!("{settings:?}").contains(WRONG_TOKEN)
    );
    let began = Instant::now();
    let built = tokio::time::timeout(FAIL_WITHIN, Application::build(settings, Hooks::default()))
        .await
        .expect("start-up fails at once instead of hanging");
    let Err(err) = built else {
        panic!("start-up succeeded against a server that should refuse it");
    };
    assert!(began.elapsed() < FAIL_WITHIN);
    let text = format!("{err} {err:?}");
    assert!(
        !text.contains(TOKEN) && !text.contains(WRONG_TOKEN),
        "{text}"
    );
    text
}

#[actix_rt::test]
async fn token_over_tls_joins_and_a_wrong_token_or_unknown_ca_fails_naming_the_url() {
    common::init_tracing();
    let dir = tempfile::tempdir().unwrap();
    let pki = make_pki(dir.path());
    let nats = NatsServer::with_token_and_tls(dir.path(), &pki).await;
    let fx = Fixtures::new();
    fx.match_with_players(601, &[None; 10]);
    let upstream = common::start_upstream(&fx, FixtureConfig::default()).await;

    let data = tempfile::tempdir().unwrap();
    let err = start_up_error(
        data.path(),
        &upstream,
        nats.mode(WRONG_TOKEN, Some(&pki.ca)),
    )
    .await;
    assert!(err.contains(&nats.url), "names the URL: {err}");
    assert!(err.contains("authorization violation"), "{err}");
    assert!(err.contains("--nats-token"), "says what to check: {err}");

    // Without our CA the server's certificate is not trusted.
    let err = start_up_error(data.path(), &upstream, nats.mode(TOKEN, None)).await;
    assert!(err.contains(&nats.url), "names the URL: {err}");
    assert!(
        err.contains("certificate") && err.contains("--nats-tls-ca"),
        "{err}"
    );

    let mut settings = test_settings(data.path(), &upstream);
    settings.nats = nats.mode(TOKEN, Some(&pki.ca));
    let app = Application::build(settings, Hooks::default())
        .await
        .expect("starts with the right token and CA");
    assert_eq!(app.nats_url(), nats.url);
    assert_eq!(app.embedded_nats_pid(), None);
    fetch_then_stop(app, 601).await;
}

#[actix_rt::test]
async fn a_creds_file_logs_in_to_an_operator_mode_server() {
    common::init_tracing();
    let dir = tempfile::tempdir().unwrap();
    let (conf, creds) = operator_mode(dir.path());
    let nats = NatsServer::start(dir.path(), &conf, "nats").await;
    let fx = Fixtures::new();
    fx.match_with_players(602, &[None; 10]);
    let upstream = common::start_upstream(&fx, FixtureConfig::default()).await;
    let data = tempfile::tempdir().unwrap();

    // Without credentials the server refuses the service.
    let mut settings = test_settings(data.path(), &upstream);
    settings.nats = NatsMode::External {
        url: nats.url.clone(),
        auth: NatsAuth::None,
        tls_ca: None,
    };
    let refused = Application::build(settings, Hooks::default())
        .await
        .err()
        .expect("refused");
    assert!(refused.to_string().contains(&nats.url), "{refused}");

    let mut settings = test_settings(data.path(), &upstream);
    settings.nats = NatsMode::External {
        url: nats.url.clone(),
        auth: NatsAuth::Creds(creds),
        tls_ca: None,
    };
    let app = Application::build(settings, Hooks::default())
        .await
        .expect("starts with the creds file");
    fetch_then_stop(app, 602).await;
}

/// An external server at `url` that takes no credentials.
fn without_auth(url: String) -> NatsMode {
    NatsMode::External {
        url,
        auth: NatsAuth::None,
        tls_ca: None,
    }
}

/// `--nats-url` may list a cluster's nodes, comma-separated: the client connects to one that
/// answers (here the first is down) and the app works through it. A malformed entry is a
/// start-up error that names the flag.
#[actix_rt::test]
async fn a_nats_url_listing_several_nodes_joins_one_that_answers() {
    common::init_tracing();
    let dir = tempfile::tempdir().unwrap();
    let nats = NatsServer::start(dir.path(), "", "nats").await;
    let fx = Fixtures::new();
    fx.match_with_players(602, &[None; 10]);
    let upstream = common::start_upstream(&fx, FixtureConfig::default()).await;
    let data = tempfile::tempdir().unwrap();
    let down = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let down_url = format!("nats://{}", down.local_addr().unwrap());
    drop(down);

    let err = start_up_error(
        data.path(),
        &upstream,
        without_auth(format!("{},nats://[::1", nats.url)),
    )
    .await;
    assert!(err.contains("invalid --nats-url"), "{err}");

    let mut settings = test_settings(data.path(), &upstream);
    settings.nats = without_auth(format!("{down_url}, {}", nats.url));
    let app = Application::build(settings, Hooks::default())
        .await
        .expect("starts through the node that answers");
    assert_eq!(app.embedded_nats_pid(), None);
    fetch_then_stop(app, 602).await;
}

/// Two instances, each with its own redb file, on one NATS server: each works its own queue.
/// (Before, they shared one: an instance could take the other's job, find no claim for it in
/// its own store and drop it, leaving the other's request queued for good.)
#[actix_rt::test]
async fn instances_with_their_own_store_on_one_server_keep_their_queues_apart() {
    common::init_tracing();
    let dir = tempfile::tempdir().unwrap();
    let nats = NatsServer::start(dir.path(), "", "nats").await;
    let fx = Fixtures::new();
    let ids: Vec<u64> = (0..24).map(|i| 6100 + i).collect();
    for id in &ids {
        fx.match_with_players(*id, &[None; 10]);
    }
    let upstream = common::start_upstream(&fx, FixtureConfig::default()).await;
    let mut apps = Vec::new();
    let mut data_dirs = Vec::new();
    for _ in 0..2 {
        let data = tempfile::tempdir().unwrap();
        let mut settings = test_settings(data.path(), &upstream);
        settings.nats = without_auth(nats.url.clone());
        apps.push(
            Application::build(settings, Hooks::default())
                .await
                .expect("starts"),
        );
        data_dirs.push(data);
    }
    let http = reqwest::Client::new();
    // Half the matches asked of one instance while the other sits idle with its pulls open,
    // then the other half of the other one.
    for (n, half) in ids.chunks(ids.len() / 2).enumerate() {
        let url = |id: u64| format!("http://{}/api/matches/{id}", apps[n].http_addr());
        for id in half {
            assert_eq!(http.post(url(*id)).send().await.unwrap().status(), 202);
        }
        for id in half {
            let stored = wait_for(WAIT, || async {
                let r = http.get(url(*id)).send().await.ok()?;
                (r.status() == 200).then_some(())
            })
            .await;
            assert!(
                stored.is_some(),
                "match {id} asked of instance {n} was never stored"
            );
        }
    }
    for app in apps {
        app.stop().await;
    }
}

/// `--store nats` needs per-key TTL, counters and a correct compare-and-swap in clusters:
/// Debian's nats-server 2.9 has none of them, and start-up refuses it, naming the version it
/// found. Without `--nats-url` there is no cluster to share: that is refused too.
#[actix_rt::test]
async fn the_shared_store_refuses_a_server_older_than_2_12_naming_its_version() {
    common::init_tracing();
    let dir = tempfile::tempdir().unwrap();
    let nats = NatsServer::start(dir.path(), "", "nats").await;
    let version =
        dota_orchestrator::bus::server_bin::version_of(Path::new("/usr/sbin/nats-server"))
            .expect("Debian's nats-server reports its version");
    assert!(
        version < dota_orchestrator::bus::server_version::MIN_SHARED_STORE,
        "this test needs Debian's old nats-server, found {version}"
    );
    let fx = Fixtures::new();
    let upstream = common::start_upstream(&fx, FixtureConfig::default()).await;
    let data = tempfile::tempdir().unwrap();
    let mut settings = test_settings(data.path(), &upstream);
    settings.nats = without_auth(nats.url.clone());
    settings.store = dota_orchestrator::config::StoreBackend::Nats;
    let err = Application::build(settings, Hooks::default())
        .await
        .err()
        .expect("refused")
        .to_string();
    assert!(
        err.contains("2.12") && err.contains(&version.to_string()) && err.contains(&nats.url),
        "{err}"
    );

    let mut settings = test_settings(data.path(), &upstream);
    settings.store = dota_orchestrator::config::StoreBackend::Nats;
    let err = Application::build(settings, Hooks::default())
        .await
        .err()
        .expect("refused")
        .to_string();
    assert!(err.contains("--nats-url"), "{err}");
}
