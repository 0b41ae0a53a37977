//! Joining an external NATS server that wants a token over TLS: the test starts a real
//! nats-server with `authorization { token }` and a certificate from a CA it makes itself
//! (rcgen). With the right token and `--nats-tls-ca` the service fetches through its JetStream
//! queue; a wrong token or an untrusted certificate fails start-up at once, with an error that
//! names the URL and never shows the token.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{Fixtures, WAIT, test_settings, wait_for};
use dota_orchestrator::app::Application;
use dota_orchestrator::config::{NatsAuth, NatsMode, NatsToken};
use dota_orchestrator::fixture_upstream::FixtureConfig;
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};

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

/// A nats-server with JetStream, a token and TLS, on a free loopback port; killed on drop.
struct NatsServer {
    child: Child,
    url: String,
}

impl NatsServer {
    async fn start(dir: &Path, pki: &Pki) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let conf = dir.join("nats.conf");
        std::fs::write(
            &conf,
            format!(
                "listen: \"127.0.0.1:{port}\"\n\
                 jetstream {{ store_dir: {store:?} }}\n\
                 authorization {{ token: \"{TOKEN}\" }}\n\
                 tls {{ cert_file: {cert:?}, key_file: {key:?} }}\n",
                store = dir.join("store"),
                cert = pki.cert,
                key = pki.key,
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
            url: format!("tls://127.0.0.1:{port}"),
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
    let built = tokio::time::timeout(FAIL_WITHIN, Application::build(settings))
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
    let nats = NatsServer::start(dir.path(), &pki).await;
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
    let app = Application::build(settings)
        .await
        .expect("starts with the right token and CA");
    assert_eq!(app.nats_url(), nats.url);
    assert_eq!(app.embedded_nats_pid(), None);
    let http = reqwest::Client::new();
    let url = format!("http://{}/api/matches/601", app.http_addr());
    assert_eq!(http.post(&url).send().await.unwrap().status(), 202);
    wait_for(WAIT, || async {
        let r = http.get(&url).send().await.ok()?;
        (r.status() == 200).then_some(())
    })
    .await
    .expect("the job went through JetStream on the TLS server");
    app.stop().await;
}
