//! `GET /api/openapi.json` against the running server: the document's operations are exactly
//! the routes the server mounts (`http::route_list`), every route answers (never the route-miss
//! 404) with a status the document lists for it, a documented path answers every other method
//! with 405, paths that do not exist are neither served nor documented, real response bodies
//! of every route and status a test can produce match the documented schemas, and the
//! document holds together (every `$ref` resolves, every operation has responses, every path
//! parameter is declared, and `openapi-spec-validator` accepts it).

use crate::common;

use std::collections::BTreeSet;

use common::{Fixtures, TestApp, WAIT, spawn_app, spawn_app_with, wait_for};
use dota_orchestrator::config::AdminToken;
use dota_orchestrator::fixture_upstream::FixtureConfig;
use dota_orchestrator::http::route_list;
use serde_json::{Value, json};

const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

/// `(METHOD, template)` of every operation in the document.
fn operations(doc: &Value) -> BTreeSet<(String, String)> {
    let mut ops = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths object") {
        for method in METHODS {
            if item.get(method).is_some() {
                ops.insert((method.to_uppercase(), path.clone()));
            }
        }
    }
    ops
}

fn routes() -> BTreeSet<(String, String)> {
    route_list().into_iter().collect()
}

/// Whether the concrete `path` (no query) matches the OpenAPI `template`.
fn template_matches(template: &str, path: &str) -> bool {
    let (t, p): (Vec<_>, Vec<_>) = (template.split('/').collect(), path.split('/').collect());
    t.len() == p.len()
        && t.iter()
            .zip(&p)
            .all(|(t, p)| (t.starts_with('{') && t.ends_with('}') && !p.is_empty()) || t == p)
}

/// Follows a `$ref` (if any) within `doc`.
fn deref<'a>(doc: &'a Value, v: &'a Value) -> &'a Value {
    match v.get("$ref").and_then(Value::as_str) {
        Some(r) => doc
            .pointer(r.strip_prefix('#').expect("local $ref"))
            .unwrap_or_else(|| panic!("unresolved {r}")),
        None => v,
    }
}

fn content_type(resp: &reqwest::Response) -> String {
    resp.headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string()
}

async fn fetch_document(t: &common::TestApp) -> Value {
    let resp = t.get("/api/openapi.json").await;
    assert_eq!(resp.status(), 200);
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    resp.json().await.expect("JSON document")
}

/// `dota-orchestrator openapi` prints the document the server serves, and nothing else on
/// stdout, without starting a service: the TypeScript client is generated from it
/// (`clients/typescript/scripts/generate.sh`).
#[actix_rt::test]
async fn the_openapi_subcommand_prints_the_served_document() {
    let t = spawn_app(Fixtures::new()).await;
    let served = fetch_document(&t).await;
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_dota-orchestrator"))
        .arg("openapi")
        .output()
        .expect("the binary runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed: Value =
        serde_json::from_slice(&out.stdout).expect("stdout is the JSON document only");
    assert_eq!(printed, served);
    t.shutdown().await;
}

#[actix_rt::test]
async fn document_operations_are_exactly_the_routes() {
    let t = spawn_app(Fixtures::new()).await;
    let doc = fetch_document(&t).await;
    assert!(
        doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.")),
        "{}",
        doc["openapi"]
    );
    let documented = operations(&doc);
    let routes = routes();
    assert_eq!(routes.len(), route_list().len(), "a route is mounted twice");
    let undocumented: Vec<_> = routes.difference(&documented).collect();
    let unrouted: Vec<_> = documented.difference(&routes).collect();
    assert!(undocumented.is_empty(), "not documented: {undocumented:?}");
    assert!(unrouted.is_empty(), "documented, not mounted: {unrouted:?}");
    t.shutdown().await;
}

#[actix_rt::test]
async fn every_route_answers_with_a_documented_status() {
    let t = spawn_app_with(Fixtures::new(), Default::default(), |s| {
        s.events.webhook_allow_private = true
    })
    .await;
    let doc = fetch_document(&t).await;
    let hook = json!({"url": "http://127.0.0.1:9/hook", "events": ["match.ready"]});
    let created: Value = t
        .http
        .post(format!("{}/api/webhooks", t.base))
        .json(&hook)
        .send()
        .await
        .expect("create a webhook")
        .json()
        .await
        .expect("JSON");
    let endpoint = created["id"].as_str().expect("endpoint id").to_string();
    for (method, template) in route_list() {
        let (method, template) = (method.as_str(), template.as_str());
        // SSE streams never end; tests/events.rs and tests/live.rs cover them against the
        // document's contract.
        if template == "/api/events" || template == "/api/queue/events" {
            continue;
        }
        let path = if template.starts_with("/api/webhooks/") {
            template.replace("{id}", &endpoint)
        } else {
            template.replace("{id}", "1")
        };
        let url = match (method, template) {
            // The GET and POST before it tracked this import: DELETE stops tracking it.
            ("DELETE", "/api/teams/{id}/matches") => {
                format!("{}{path}?leagueId=1&track=false", t.base)
            }
            (_, "/api/teams/{id}/matches") => format!("{}{path}?leagueId=1", t.base),
            _ => format!("{}{path}", t.base),
        };
        let req = match method {
            "GET" => t.http.get(&url),
            "POST" => t.http.post(&url),
            "DELETE" => t.http.delete(&url),
            other => panic!("unexpected method {other}"),
        };
        let req = match template {
            "/api/cache/invalidate" => req.json(&json!({"items": []})),
            "/api/webhooks" if method == "POST" => req.json(&hook),
            _ => req,
        };
        let resp = req.send().await.expect("request");
        let status = resp.status().as_u16();
        let content_type = content_type(&resp);
        let text = resp.text().await.expect("body");
        let what = format!("{method} {path}: {status} {text}");
        let body: Option<Value> = serde_json::from_str(&text).ok();

        assert!(
            !(status == 404 && body.as_ref().is_some_and(|b| b["error"] == "not found")),
            "route miss for {what}"
        );
        if method == "DELETE" {
            assert_eq!(status, 204, "{what}");
        } else if template.starts_with("/api/") && template.contains("{id}") {
            // The fixture dir is empty: jobs are queued, or (if a fetch already ran) failed.
            let failed = body.as_ref().is_some_and(|b| b["status"] == "failed");
            assert!(
                matches!(status, 200 | 202) || (matches!(status, 404 | 502) && failed),
                "{what}"
            );
        } else if template == "/api/ws" {
            // A plain GET of the WebSocket route (tests/live.rs covers the upgrade).
            assert_eq!(status, 426, "{what}");
        } else {
            assert!((200..300).contains(&status), "{what}");
        }

        let op = &doc["paths"][template][method.to_lowercase()];
        let documented = deref(&doc, &op["responses"][status.to_string()]);
        assert!(documented.is_object(), "status not documented: {what}");
        let media = content_type.split(';').next().unwrap_or_default().trim();
        assert!(
            status == 204 || documented["content"].get(media).is_some(),
            "content type {content_type:?} not documented: {what}"
        );
    }
    t.shutdown().await;
}

#[actix_rt::test]
async fn paths_that_do_not_exist_are_neither_served_nor_documented() {
    let t = spawn_app(Fixtures::new()).await;
    let doc = fetch_document(&t).await;
    let templates: Vec<&String> = doc["paths"].as_object().expect("paths").keys().collect();
    for path in ["/api/nothing", "/api/matches", "/api/players/1"] {
        let resp = t.get(path).await;
        assert_eq!(resp.status(), 404, "{path}");
        let body: Value = resp.json().await.expect("JSON error");
        assert_eq!(body["error"], "not found", "{path}");
        assert!(
            !templates.iter().any(|tpl| template_matches(tpl, path)),
            "{path} is documented"
        );
    }
    t.shutdown().await;
}

fn collect_refs<'a>(v: &'a Value, out: &mut Vec<&'a str>) {
    match v {
        Value::Object(map) => {
            if let Some(r) = map.get("$ref").and_then(Value::as_str) {
                out.push(r);
            }
            map.values().for_each(|v| collect_refs(v, out));
        }
        Value::Array(items) => items.iter().for_each(|v| collect_refs(v, out)),
        _ => {}
    }
}

/// Names of the path parameters declared in `params` (a list of parameters or `$ref`s).
fn path_params(doc: &Value, params: &Value) -> BTreeSet<String> {
    params
        .as_array()
        .map(|ps| {
            ps.iter()
                .map(|p| deref(doc, p))
                .filter(|p| p["in"] == "path")
                .map(|p| {
                    assert_eq!(p["required"], true, "path parameter not required: {p}");
                    p["name"].as_str().expect("parameter name").to_string()
                })
                .collect()
        })
        .unwrap_or_default()
}

#[actix_rt::test]
async fn document_is_structurally_sound() {
    let t = spawn_app(Fixtures::new()).await;
    let doc = fetch_document(&t).await;
    t.shutdown().await;

    let mut refs = Vec::new();
    collect_refs(&doc, &mut refs);
    assert!(!refs.is_empty());
    for r in refs {
        let pointer = r
            .strip_prefix('#')
            .unwrap_or_else(|| panic!("non-local {r}"));
        assert!(doc.pointer(pointer).is_some(), "unresolved $ref {r}");
    }

    for (template, item) in doc["paths"].as_object().expect("paths") {
        let in_template: BTreeSet<String> = template
            .split('/')
            .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .map(str::to_string)
            .collect();
        let shared = path_params(&doc, &item["parameters"]);
        for method in METHODS {
            let Some(op) = item.get(method) else { continue };
            let responses = op["responses"].as_object();
            assert!(
                responses.is_some_and(|r| !r.is_empty()),
                "{method} {template} has no responses"
            );
            let mut declared = shared.clone();
            declared.extend(path_params(&doc, &op["parameters"]));
            assert_eq!(
                declared, in_template,
                "{method} {template}: declared path parameters differ from the template"
            );
        }
    }

    // The reference validator. Never skipped: scripts/install-deps.sh installs it
    // (DOTA_WITH_TEST_DEPS=1, as scripts/test.sh and CI run it).
    let file = tempfile::NamedTempFile::new().expect("temp file");
    std::fs::write(file.path(), doc.to_string()).expect("write document");
    let validator =
        std::env::var("OPENAPI_SPEC_VALIDATOR").unwrap_or("openapi-spec-validator".to_string());
    match std::process::Command::new(&validator)
        .arg(file.path())
        .output()
    {
        Ok(out) => assert!(
            out.status.success(),
            "openapi-spec-validator: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
        Err(e) => panic!(
            "could not run {validator}: {e}; install it with \
             DOTA_WITH_TEST_DEPS=1 scripts/install-deps.sh (or set OPENAPI_SPEC_VALIDATOR)"
        ),
    }
}

#[actix_rt::test]
async fn documented_paths_answer_other_methods_with_405() {
    let t = spawn_app(Fixtures::new()).await;
    let doc = fetch_document(&t).await;
    for (template, item) in doc["paths"].as_object().expect("paths") {
        let path = template.replace("{id}", "1");
        for method in ["get", "post", "put", "delete", "patch"] {
            if item.get(method).is_some() {
                continue;
            }
            let method = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let resp = t
                .http
                .request(method.clone(), format!("{}{path}", t.base))
                .send()
                .await
                .expect("request");
            assert_eq!(resp.status(), 405, "{method} {path}");
            let documented = &doc["components"]["responses"]["MethodNotAllowed"];
            check_body(&doc, documented, resp, &format!("{method} {path}")).await;
        }
    }
    t.shutdown().await;
}

/// Validates `instance` against `schema`, resolving its `$ref`s against the document's
/// components (a schema root that carries `components` makes `#/components/...` resolve).
fn schema_errors(doc: &Value, schema: &Value, instance: &Value) -> Vec<String> {
    let mut root = schema.as_object().cloned().expect("schema object");
    root.insert("components".to_string(), doc["components"].clone());
    let validator = jsonschema::draft202012::new(&Value::Object(root))
        .unwrap_or_else(|e| panic!("schema does not compile: {e}\n{schema}"));
    validator
        .iter_errors(instance)
        .map(|e| format!("{e} (at {})", e.instance_path()))
        .collect()
}

/// Checks a real response against a documented response object: its content type is listed,
/// and its body (a JSON string for non-JSON bodies) matches that content's schema.
async fn check_body(doc: &Value, documented: &Value, resp: reqwest::Response, what: &str) {
    let documented = deref(doc, documented);
    assert!(documented.is_object(), "not documented: {what}");
    let content_type = content_type(&resp);
    let media = content_type.split(';').next().unwrap_or_default().trim();
    let text = resp.text().await.expect("body");
    let schema = &documented["content"][media]["schema"];
    assert!(
        schema.is_object(),
        "content type {content_type:?} not documented: {what}"
    );
    let instance = match media {
        "application/json" => {
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{what}: not JSON ({e}): {text}"))
        }
        _ => Value::String(text),
    };
    let errors = schema_errors(doc, schema, &instance);
    assert!(
        errors.is_empty(),
        "{what}: the body does not match its schema: {errors:#?}\n{instance}"
    );
}

/// Sends `method path` (with `body` as JSON when given) and checks the answer against the
/// document: its status is `want`, documented for the operation at `template`, and its body
/// matches the schema.
async fn check(
    t: &TestApp,
    doc: &Value,
    (method, template, path): (&str, &str, &str),
    body: Option<Value>,
    want: u16,
) {
    let resp = send(t, method, path, body.clone(), None).await;
    let what = format!("{method} {path}");
    assert_eq!(resp.status().as_u16(), want, "{what}");
    let op = &doc["paths"][template][method.to_lowercase()];
    assert!(op.is_object(), "{method} {template} is not documented");
    check_body(doc, &op["responses"][want.to_string()], resp, &what).await;
}

async fn send(
    t: &TestApp,
    method: &str,
    path: &str,
    body: Option<Value>,
    token: Option<&str>,
) -> reqwest::Response {
    let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
    let mut req = t.http.request(method, format!("{}{path}", t.base));
    if let Some(body) = body {
        req = req.json(&body);
    }
    if let Some(token) = token {
        req = req.bearer_auth(token);
    }
    req.send().await.expect("request")
}

/// Polls GET `path` until it answers `want`.
async fn until(t: &TestApp, path: &str, want: u16) {
    wait_for(WAIT, || async {
        (t.get(path).await.status().as_u16() == want).then_some(())
    })
    .await
    .unwrap_or_else(|| panic!("{path} never answered {want}"));
}

/// The GET/POST statuses of a single-resource route: 202 queued, 200 the stored body, 200
/// ready, 400 bad ID, and 404 failed for `missing`.
async fn check_resource(t: &TestApp, doc: &Value, template: &str, id: u64, missing: u64) {
    let path = template.replace("{id}", &id.to_string());
    check(t, doc, ("POST", template, &path), None, 202).await;
    until(t, &path, 200).await;
    check(t, doc, ("GET", template, &path), None, 200).await;
    check(t, doc, ("POST", template, &path), None, 200).await;
    let bad = template.replace("{id}", "abc");
    check(t, doc, ("GET", template, &bad), None, 400).await;
    check(t, doc, ("POST", template, &bad), None, 400).await;
    let missing = template.replace("{id}", &missing.to_string());
    check(t, doc, ("GET", template, &missing), None, 202).await;
    until(t, &missing, 404).await;
    check(t, doc, ("GET", template, &missing), None, 404).await;
}

#[actix_rt::test]
async fn the_schema_check_rejects_a_wrong_body() {
    let t = spawn_app(Fixtures::new()).await;
    let doc = fetch_document(&t).await;
    t.shutdown().await;
    let queued = deref(
        &doc,
        &doc["paths"]["/api/matches/{id}"]["post"]["responses"]["202"],
    );
    let schema = &queued["content"]["application/json"]["schema"];
    let good = json!({"signature": "match:1", "status": "queued"});
    assert!(schema_errors(&doc, schema, &good).is_empty());
    for bad in [
        json!({"signature": "match:1", "status": "bogus"}),
        json!({"signature": "match:0", "status": "queued"}),
        json!({"status": "queued"}),
    ] {
        assert!(!schema_errors(&doc, schema, &bad).is_empty(), "{bad}");
    }
}

#[actix_rt::test]
async fn real_bodies_match_the_documented_schemas() {
    let fx = Fixtures::new();
    fx.match_with_players(101, &[None; 10]);
    fx.player(2001);
    fx.player_stats(3001);
    fx.league(16435, "RD2L Season 33", &[101]);
    fx.dotabuff_team(
        9517508,
        "Maple Syrup",
        &[vec![common::fixtures::row(101, 16435)]],
    );
    // Half a match: its fetch fails for good with 502.
    fx.raw("opendota/matches/555.json", "{\"match_id\": 5");
    let t = spawn_app(fx).await;
    let doc = fetch_document(&t).await;

    check_resource(&t, &doc, "/api/matches/{id}", 101, 999).await;
    check_resource(&t, &doc, "/api/players/{id}/data", 2001, 2999).await;
    check_resource(&t, &doc, "/api/players/{id}/stats", 3001, 3999).await;
    check_resource(&t, &doc, "/api/leagues/{id}", 16435, 999).await;
    let broken = "/api/matches/555";
    t.post(broken).await;
    until(&t, broken, 502).await;
    check(&t, &doc, ("GET", "/api/matches/{id}", broken), None, 502).await;

    let teams = "/api/teams/{id}/matches";
    let import = "/api/teams/9517508/matches?leagueId=16435";
    check(&t, &doc, ("POST", teams, import), None, 202).await;
    until(&t, import, 200).await;
    check(&t, &doc, ("GET", teams, import), None, 200).await;
    let progress = "/api/teams/9517508/matches?leagueId=16435&include=progress";
    check(&t, &doc, ("GET", teams, progress), None, 200).await;
    check(&t, &doc, ("POST", teams, import), None, 200).await;
    let no_league = "/api/teams/9517508/matches";
    check(&t, &doc, ("GET", teams, no_league), None, 400).await;
    let body = Some(json!({"leagueId": 16435}));
    check(&t, &doc, ("POST", teams, no_league), body, 200).await;

    let inv = "/api/cache/invalidate";
    let items = json!({"items": [{"type": "matches", "id": "101"}, {"type": "spells", "id": 1}]});
    check(&t, &doc, ("POST", inv, inv), Some(items), 200).await;
    check(&t, &doc, ("POST", inv, inv), Some(json!([1])), 400).await;

    for path in [
        "/api/queue/status",
        "/healthz",
        "/readyz",
        "/metrics",
        "/api/openapi.json",
        "/",
    ] {
        check(&t, &doc, ("GET", path, path), None, 200).await;
    }
    let events = "/api/events";
    check(
        &t,
        &doc,
        ("GET", events, "/api/events?kind=bogus"),
        None,
        400,
    )
    .await;
    // The stream itself never ends: only its status and content type are checked.
    let stream = t.get(events).await;
    assert_eq!(stream.status(), 200);
    let documented = &doc["paths"][events]["get"]["responses"]["200"]["content"];
    let content_type = stream.headers()["content-type"].to_str().unwrap();
    assert!(documented.get(content_type).is_some(), "{content_type}");
    drop(stream);

    let not_found = &doc["components"]["responses"]["NotFound"];
    check_body(
        &doc,
        not_found,
        t.get("/api/nothing").await,
        "GET /api/nothing",
    )
    .await;
    t.shutdown().await;
}

#[actix_rt::test]
async fn unauthorized_bodies_match_the_documented_schema() {
    let t = spawn_app_with(Fixtures::new(), FixtureConfig::default(), |s| {
        s.admin_token = AdminToken::new("s3cret".into());
    })
    .await;
    let doc = fetch_document(&t).await;
    let inv = "/api/cache/invalidate";
    let items = Some(json!({"items": []}));
    check(&t, &doc, ("POST", inv, inv), items, 401).await;
    let teams = "/api/teams/{id}/matches";
    let force = "/api/teams/5/matches?leagueId=6&force=true";
    check(&t, &doc, ("POST", teams, force), None, 401).await;
    check(&t, &doc, ("GET", teams, force), None, 401).await;
    let resp = send(&t, "POST", inv, Some(json!({"items": []})), Some("s3cret")).await;
    assert_eq!(resp.status(), 200);
    t.shutdown().await;
}
