//! Integration tests of the fixture upstream: a real server on 127.0.0.1:0 over a temp data
//! directory, driven with reqwest exactly like the service's upstream clients drive it.

use std::path::Path;
use std::time::{Duration, Instant};

use dota_orchestrator::fixture_upstream::{FixtureConfig, FixtureError, FixtureUpstream};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tempfile::TempDir;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const MATCH_123: &str = r#"{"match_id":123,"radiant_win":true}"#;

/// A running fixture over its own temp dir; both are cleaned up on drop.
struct TestFixture {
    upstream: FixtureUpstream,
    client: reqwest::Client,
    /// Holds the data dir (`root/data`) and a file outside it (`root/secret.json`).
    _root: TempDir,
}

impl TestFixture {
    fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.upstream.addr(), path)
    }

    async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(self.url(path))
            .send()
            .await
            .expect("request reaches the fixture")
    }

    /// GET `path` and its whole body; `Err` when the connection dies before the body is whole.
    async fn whole_body(&self, path: &str) -> reqwest::Result<String> {
        self.client.get(self.url(path)).send().await?.text().await
    }

    async fn stats(&self) -> Value {
        self.get("/_stats").await.json().await.expect("stats JSON")
    }

    async fn add_fault(&self, fault: Value) {
        let response = self
            .client
            .post(self.url("/_faults"))
            .json(&fault)
            .send()
            .await
            .expect("fault request");
        assert_eq!(
            response.status(),
            StatusCode::CREATED,
            "fault {fault} accepted"
        );
    }
}

fn write(root: &Path, relative: &str, body: &str) {
    let path = root.join(relative);
    std::fs::create_dir_all(path.parent().expect("file has a parent")).expect("mkdir");
    std::fs::write(path, body).expect("write fixture file");
}

async fn spawn_fixture(configure: impl FnOnce(&mut FixtureConfig)) -> TestFixture {
    let root = tempfile::tempdir().expect("temp dir");
    let data = root.path().join("data");
    write(&data, "opendota/matches/123.json", MATCH_123);
    write(&data, "opendota/players/5/wl.json", r#"{"win":3,"lose":2}"#);
    write(
        &data,
        "dotabuff/esports/teams/5/matches.html",
        "<h1>page one</h1>",
    );
    write(
        &data,
        "dotabuff/esports/teams/5/matches.page-2.html",
        "<h1>page two</h1>",
    );
    write(
        &data,
        "dotabuff/numbered/list.page-1.html",
        "<p>numbered one</p>",
    );
    write(&data, "dotabuff/numbered/list.html", "<p>bare</p>");
    write(root.path(), "secret.json", r#"{"secret":true}"#);

    let mut config = FixtureConfig {
        dir: data,
        ..FixtureConfig::default()
    };
    configure(&mut config);
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let upstream = FixtureUpstream::start(config, listener)
        .await
        .expect("fixture starts");
    TestFixture {
        upstream,
        client: http_client(),
        _root: root,
    }
}

/// reqwest is built with `rustls-no-provider`: even a plain-http client needs a crypto provider
/// installed first. `Err` only means another test already installed it.
fn http_client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::new()
}

fn header(response: &reqwest::Response, name: &str) -> Option<i64> {
    response
        .headers()
        .get(name)
        .map(|v| v.to_str().expect("ascii").parse().expect("number"))
}

fn current_minute() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs()
        / 60
}

#[tokio::test]
async fn opendota_file_is_served_as_json_and_query_is_ignored() {
    let fx = spawn_fixture(|_| {}).await;
    let response = fx.get("/opendota/matches/123?api_key=secret").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "application/json");
    assert_eq!(response.text().await.expect("body"), MATCH_123);

    let nested = fx.get("/opendota/players/5/wl").await;
    assert_eq!(nested.status(), StatusCode::OK);
    assert_eq!(
        nested.json::<Value>().await.expect("json"),
        json!({"win":3,"lose":2})
    );
    assert!(fx.upstream.opendota_url().ends_with("/opendota"));
    assert!(fx.upstream.dotabuff_url().ends_with("/dotabuff"));
}

#[tokio::test]
async fn missing_files_and_unknown_routes_answer_404_json() {
    let fx = spawn_fixture(|_| {}).await;
    for path in [
        "/opendota/matches/999",
        "/dotabuff/nothing",
        "/opendota/",
        "/elsewhere",
    ] {
        let response = fx.get(path).await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{path}");
        assert_eq!(response.headers()["content-type"], "application/json");
        let body: Value = response.json().await.expect("json");
        assert_eq!(body, json!({"error":"Not Found"}), "{path}");
    }
}

#[tokio::test]
async fn path_traversal_is_refused_with_404() {
    let fx = spawn_fixture(|_| {}).await;
    // reqwest normalizes `..` away, so speak HTTP by hand.
    for target in ["/opendota/../secret", "/opendota/matches/../../../secret"] {
        let mut stream = TcpStream::connect(fx.upstream.addr())
            .await
            .expect("connect");
        let request =
            format!("GET {target} HTTP/1.1\r\nHost: fixture\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.expect("send");
        let mut answer = String::new();
        stream.read_to_string(&mut answer).await.expect("read");
        assert!(answer.starts_with("HTTP/1.1 404"), "{target}: {answer}");
        assert!(!answer.contains("secret\":true"), "{target} leaked a file");
    }
}

#[tokio::test]
async fn dotabuff_page_query_maps_to_numbered_files() {
    let fx = spawn_fixture(|_| {}).await;
    let cases = [
        (
            "/dotabuff/esports/teams/5/matches",
            StatusCode::OK,
            "<h1>page one</h1>",
        ),
        (
            "/dotabuff/esports/teams/5/matches?page=1",
            StatusCode::OK,
            "<h1>page one</h1>",
        ),
        (
            "/dotabuff/esports/teams/5/matches?original_slug=x&page=2",
            StatusCode::OK,
            "<h1>page two</h1>",
        ),
        (
            "/dotabuff/numbered/list?page=1",
            StatusCode::OK,
            "<p>numbered one</p>",
        ),
        (
            "/dotabuff/esports/teams/5/matches?page=3",
            StatusCode::NOT_FOUND,
            r#"{"error":"Not Found"}"#,
        ),
    ];
    for (path, status, body) in cases {
        let response = fx.get(path).await;
        assert_eq!(response.status(), status, "{path}");
        if status == StatusCode::OK {
            assert_eq!(
                response.headers()["content-type"],
                "text/html; charset=utf-8"
            );
        }
        assert_eq!(response.text().await.expect("body"), body, "{path}");
    }
}

#[tokio::test]
async fn minute_limit_answers_429_after_budget_with_headers_counting_down() {
    // A calendar-minute boundary inside the test would refill the budget; retry on a fresh
    // fixture in that (rare) case instead of sleeping to a safe second.
    for _attempt in 0..3 {
        let minute = current_minute();
        let fx = spawn_fixture(|c| {
            c.rate_limit_per_min = Some(3);
            c.daily_limit = Some(100);
        })
        .await;
        let mut seen = Vec::new();
        for _ in 0..5 {
            let response = fx.get("/opendota/matches/123").await;
            let minute_left = header(&response, "x-rate-limit-remaining-minute");
            let day_left = header(&response, "x-rate-limit-remaining-day");
            let status = response.status();
            let body: Value = response.json().await.expect("json");
            seen.push((status, minute_left, day_left, body));
        }
        let dotabuff = fx.get("/dotabuff/esports/teams/5/matches").await;
        if current_minute() != minute {
            continue;
        }
        assert_eq!(
            dotabuff.status(),
            StatusCode::OK,
            "Dotabuff is not rate limited"
        );
        assert!(
            dotabuff
                .headers()
                .get("x-rate-limit-remaining-minute")
                .is_none()
        );
        let summary: Vec<_> = seen
            .iter()
            .map(|(s, m, d, _)| (s.as_u16(), *m, *d))
            .collect();
        assert_eq!(
            summary,
            [
                (200, Some(2), Some(99)),
                (200, Some(1), Some(98)),
                (200, Some(0), Some(97)),
                // Refused requests consume nothing.
                (429, Some(0), Some(97)),
                (429, Some(0), Some(97)),
            ]
        );
        assert_eq!(seen[3].3, json!({"error":"rate limit exceeded"}));
        let stats = fx.stats().await;
        assert_eq!(stats["rateLimited"], 2);
        assert_eq!(stats["paths"]["/opendota/matches/123"]["rateLimited"], 2);
        return;
    }
    panic!("three attempts straddled a minute boundary");
}

#[tokio::test]
async fn daily_limit_spans_minutes_and_unlimited_window_omits_its_header() {
    let fx = spawn_fixture(|c| c.daily_limit = Some(2)).await;
    let mut statuses = Vec::new();
    for _ in 0..3 {
        let response = fx.get("/opendota/does/not/exist").await;
        assert!(
            response
                .headers()
                .get("x-rate-limit-remaining-minute")
                .is_none()
        );
        statuses.push((
            response.status().as_u16(),
            header(&response, "x-rate-limit-remaining-day"),
        ));
    }
    // 404s are served answers and consume budget.
    assert_eq!(statuses, [(404, Some(1)), (404, Some(0)), (429, Some(0))]);
}

#[tokio::test]
async fn stats_count_requests_per_path_and_status_and_reset_clears_them() {
    let fx = spawn_fixture(|_| {}).await;
    fx.get("/opendota/matches/123?api_key=k").await;
    fx.get("/opendota/matches/123").await;
    fx.get("/opendota/matches/999").await;
    fx.get("/dotabuff/esports/teams/5/matches?page=2").await;
    fx.get("/dotabuff/esports/teams/5/matches").await;
    fx.get("/elsewhere").await;
    assert_eq!(
        fx.stats().await,
        json!({
            "total": 5, "rateLimited": 0, "failed": 0, "faulted": 0, "inFlightMax": 1,
            "paths": {
                "/opendota/matches/123": {"requests": 2, "rateLimited": 0, "faulted": 0, "status": {"200": 2}},
                "/opendota/matches/999": {"requests": 1, "rateLimited": 0, "faulted": 0, "status": {"404": 1}},
                "/dotabuff/esports/teams/5/matches?page=2": {"requests": 1, "rateLimited": 0, "faulted": 0, "status": {"200": 1}},
                "/dotabuff/esports/teams/5/matches": {"requests": 1, "rateLimited": 0, "faulted": 0, "status": {"200": 1}}
            }
        })
    );
    let reset = fx
        .client
        .post(fx.url("/_reset"))
        .send()
        .await
        .expect("reset");
    assert_eq!(reset.status(), StatusCode::OK);
    assert_eq!(
        fx.stats().await,
        json!({"total":0,"rateLimited":0,"failed":0,"faulted":0,"inFlightMax":0,"paths":{}})
    );
}

#[tokio::test]
async fn counted_faults_answer_before_files_then_files_return() {
    let fx = spawn_fixture(|_| {}).await;
    fx.add_fault(json!({"path":"/opendota/matches/123","status":500,"count":2}))
        .await;
    fx.add_fault(
        json!({"path":"/opendota/matches/123","status":503,"count":1,"body":"upstream down"}),
    )
    .await;
    let mut answers = Vec::new();
    for _ in 0..4 {
        let response = fx.get("/opendota/matches/123?api_key=k").await;
        answers.push((
            response.status().as_u16(),
            response.text().await.expect("body"),
        ));
    }
    assert_eq!(
        answers,
        [
            (500, r#"{"error":"Internal Server Error"}"#.to_owned()),
            (500, r#"{"error":"Internal Server Error"}"#.to_owned()),
            (503, "upstream down".to_owned()),
            (200, MATCH_123.to_owned()),
        ]
    );
    let stats = fx.stats().await;
    assert_eq!(stats["failed"], 3);
    assert_eq!(
        stats["paths"]["/opendota/matches/123"]["status"],
        json!({"200": 1, "500": 2, "503": 1})
    );
}

#[tokio::test]
async fn dotabuff_faults_match_path_with_or_without_query_and_delete_clears_them() {
    let fx = spawn_fixture(|_| {}).await;
    fx.add_fault(json!({"path":"/dotabuff/esports/teams/5/matches?page=2","status":429}))
        .await;
    fx.add_fault(json!({"path":"/dotabuff/esports/teams/5/matches","status":502,"count":1}))
        .await;

    let page2 = fx.get("/dotabuff/esports/teams/5/matches?page=2").await;
    assert_eq!(page2.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(
        page2.text().await.expect("body"),
        r#"{"error":"Too Many Requests"}"#
    );
    let page1 = fx.get("/dotabuff/esports/teams/5/matches").await;
    assert_eq!(page1.status(), StatusCode::BAD_GATEWAY);
    assert_eq!(
        fx.get("/dotabuff/esports/teams/5/matches").await.status(),
        StatusCode::OK
    );

    let cleared = fx
        .client
        .delete(fx.url("/_faults"))
        .send()
        .await
        .expect("delete");
    assert_eq!(cleared.status(), StatusCode::OK);
    let page2 = fx.get("/dotabuff/esports/teams/5/matches?page=2").await;
    assert_eq!(page2.status(), StatusCode::OK);
    assert_eq!(fx.stats().await["rateLimited"], 1);
}

#[tokio::test]
async fn truncate_and_html_faults_answer_200_with_a_broken_body_then_files_return() {
    let fx = spawn_fixture(|_| {}).await;
    fx.add_fault(json!({"path":"/opendota/matches/123","kind":"truncate","count":1}))
        .await;
    fx.add_fault(json!({"path":"/opendota/matches/123","kind":"html","count":1}))
        .await;

    let cut = fx.get("/opendota/matches/123").await;
    assert_eq!(cut.status(), StatusCode::OK);
    assert_eq!(
        cut.text().await.expect("a well-framed body"),
        MATCH_123[..MATCH_123.len() / 2]
    );
    let page = fx.get("/opendota/matches/123").await;
    assert_eq!(page.status(), StatusCode::OK);
    assert!(
        page.headers()["content-type"]
            .to_str()
            .expect("ascii")
            .starts_with("text/html")
    );
    assert!(
        page.text()
            .await
            .expect("body")
            .starts_with("<!DOCTYPE html>")
    );
    let file = fx.get("/opendota/matches/123").await;
    assert_eq!(file.text().await.expect("body"), MATCH_123);
    assert_eq!(
        fx.stats().await["paths"]["/opendota/matches/123"]["status"],
        json!({"200": 3})
    );
}

#[tokio::test]
async fn reset_and_hang_faults_cut_the_connection_without_a_body() {
    let fx = spawn_fixture(|_| {}).await;
    fx.add_fault(json!({"path":"/opendota/matches/123","kind":"reset","count":1}))
        .await;
    fx.add_fault(json!({"path":"/opendota/matches/123","kind":"hang","ms":300,"count":1}))
        .await;

    // A reset: no complete answer, whether the cut comes before or after the headers.
    assert!(
        fx.whole_body("/opendota/matches/123").await.is_err(),
        "a reset yields no body"
    );

    // A hang: nothing for the configured time, then the same cut.
    let started = Instant::now();
    assert!(
        fx.whole_body("/opendota/matches/123").await.is_err(),
        "a hang ends without a body"
    );
    assert!(started.elapsed() >= Duration::from_millis(300));

    assert_eq!(
        fx.get("/opendota/matches/123")
            .await
            .text()
            .await
            .expect("body"),
        MATCH_123
    );
}

#[tokio::test]
async fn opendota_faults_consume_budget_except_429_faults() {
    let fx = spawn_fixture(|c| c.rate_limit_per_min = Some(1000)).await;
    fx.add_fault(json!({"path":"/opendota/matches/123","status":429,"count":1}))
        .await;
    fx.add_fault(json!({"path":"/opendota/matches/123","status":500,"count":1}))
        .await;
    let limited = fx.get("/opendota/matches/123").await;
    let failed = fx.get("/opendota/matches/123").await;
    assert_eq!(limited.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(failed.status(), StatusCode::INTERNAL_SERVER_ERROR);
    // The 429 fault left the budget whole; the 500 fault took one unit (a minute boundary in
    // between would refill the window, which still leaves 999 after the 500).
    assert_eq!(
        header(&limited, "x-rate-limit-remaining-minute"),
        Some(1000)
    );
    assert_eq!(header(&failed, "x-rate-limit-remaining-minute"), Some(999));
}

#[tokio::test]
async fn invalid_fault_specs_are_refused_with_400() {
    let fx = spawn_fixture(|_| {}).await;
    for body in [
        json!({"path":"no-slash","status":500}),
        json!({"path":"/x","status":7}),
        json!({"status":500}),
        json!({"path":"/x"}),
        json!({"path":"/x","kind":"html","status":200}),
        json!({"path":"/x","kind":"reset","ms":10}),
        json!({"path":"/x","kind":"explode"}),
    ] {
        let response = fx
            .client
            .post(fx.url("/_faults"))
            .json(&body)
            .send()
            .await
            .expect("post");
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{body}");
        let error: Value = response.json().await.expect("json");
        assert!(error["error"].is_string());
    }
}

#[tokio::test]
async fn fail_rate_one_answers_every_upstream_request_500() {
    let fx = spawn_fixture(|c| c.fail_rate = 1.0).await;
    for path in [
        "/opendota/matches/123",
        "/dotabuff/esports/teams/5/matches",
        "/opendota/players/5/wl",
    ] {
        let response = fx.get(path).await;
        assert_eq!(
            response.status(),
            StatusCode::INTERNAL_SERVER_ERROR,
            "{path}"
        );
        let body: Value = response.json().await.expect("json");
        assert_eq!(body, json!({"error":"Internal Server Error"}));
    }
    let stats = fx.stats().await;
    assert_eq!(
        (stats["total"].clone(), stats["failed"].clone()),
        (json!(3), json!(3))
    );
}

#[tokio::test]
async fn latency_delays_upstream_answers() {
    let latency = Duration::from_millis(150);
    let fx = spawn_fixture(|c| c.latency = latency).await;
    let started = Instant::now();
    assert_eq!(
        fx.get("/opendota/matches/123").await.status(),
        StatusCode::OK
    );
    assert!(started.elapsed() >= latency);
}

#[tokio::test]
async fn stop_closes_the_listener() {
    let fx = spawn_fixture(|_| {}).await;
    let addr = fx.upstream.addr();
    assert_eq!(
        fx.get("/opendota/matches/123").await.status(),
        StatusCode::OK
    );
    let TestFixture {
        upstream, _root, ..
    } = fx;
    upstream.stop().await;
    assert!(
        TcpStream::connect(addr).await.is_err(),
        "listener still open after stop"
    );
}

#[tokio::test]
async fn start_rejects_bad_configuration() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let config = FixtureConfig {
        fail_rate: 1.5,
        ..FixtureConfig::default()
    };
    let err = FixtureUpstream::start(config, listener)
        .await
        .expect_err("fail_rate > 1");
    assert!(matches!(err, FixtureError::FailRate(_)));

    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let config = FixtureConfig {
        dir: "/nonexistent/fixture/dir".into(),
        ..FixtureConfig::default()
    };
    let err = FixtureUpstream::start(config, listener)
        .await
        .expect_err("missing dir");
    assert!(matches!(err, FixtureError::DataDir(_)));
}

/// Polls `cond` every 10 ms, at most 200 times (2 s), instead of sleeping a guessed duration.
async fn wait_until<F, Fut>(what: &str, mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..200 {
        if cond().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("timed out waiting until {what}");
}

#[tokio::test]
async fn stop_lets_in_flight_requests_finish() {
    let fx = spawn_fixture(|c| c.latency = Duration::from_millis(300)).await;
    let in_flight = tokio::spawn({
        let (client, url) = (fx.client.clone(), fx.url("/opendota/matches/123"));
        async move { client.get(url).send().await.map(|r| r.status()) }
    });
    // The request is counted before its latency elapses, so a count of 1 means "in flight".
    wait_until("the request is in flight", || async {
        fx.stats().await["total"] == 1
    })
    .await;
    let TestFixture {
        upstream, _root, ..
    } = fx;
    upstream.stop().await;
    let status = in_flight
        .await
        .expect("task")
        .expect("in-flight request answered");
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn dropping_the_handle_stops_the_server() {
    let fx = spawn_fixture(|_| {}).await;
    let addr = fx.upstream.addr();
    drop(fx);
    wait_until("the listener is closed", || async {
        TcpStream::connect(addr).await.is_err()
    })
    .await;
}
